/** On the wasm backend with @bevzoo/engine's training kernels (see the BEVDet tests). */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, get, parseSafetensors, resolveConfig } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { fitBatch, groundCloud, LSSInputError, rigBatch, sampleBoxes, withPrevFrame } from '@bevzoo/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { BEVDepth, bevdepthStudent, IMAGE_BRANCH_PREFIXES, type BEVDepthConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<BEVDepthConfig>(bevdepthStudent, { preset, overrides }).config;

describe('BEVDepth', () => {
  it('registers; every preset has the camera-aware depth net and depth supervision, the -4d ones the temporal fusion', () => {
    expect(get('student', 'bevdepth')).toBe(bevdepthStudent);
    for (const p of ['tiny', 'small', 'paper', 'tiny-4d', 'small-4d', 'paper-4d']) {
      const c = config(p);
      expect([c.viewTransform.depthNet.type, c.depthSupervision.weight, c.data.points, c.temporal.frames]).toEqual(['camera-aware', 3, true, p.endsWith('-4d') ? 2 : 1]);
    }
    expect(config('paper').viewTransform.depthNet).toEqual({ type: 'camera-aware', midChannels: 512, blocks: 3, aspp: true });
    const m = new BEVDepth(config('tiny'), { rng: createRng(0) });
    const keys = Object.keys(m.stateDict());
    expect(keys).toContain('img_view_transformer.depth_net.depth_mlp.fc1.weight');
    expect(keys).toContain('img_view_transformer.depth_net.context_se.conv_expand.weight');
    expect(keys.some((k) => k.startsWith('img_view_transformer.depthnet.'))).toBe(false);
    m.dispose();
  });

  it('trains with its depth loss: ten steps lower the loss, the depth part included; no tensor leaks; clear error without points', async () => {
    const cfg = config('tiny');
    const m = new BEVDepth(cfg, { rng: createRng(2) });
    const batch = rigBatch(cfg.data.imageSize, [sampleBoxes(3), sampleBoxes(4)], 5);
    const out = m.forward(batch, { training: false });
    expect(() => m.loss(out, batch)).toThrow(LSSInputError);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs)]);
    const withPoints = { ...batch, points: [groundCloud(), groundCloud()] };
    const { losses, counts, parts } = await fitBatch(m, withPoints, { steps: 10, lr: cfg.train.lr });
    expect(parts.depth).toBeGreaterThan(0);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]);
    m.dispose();
  });

  it('BEVDepth4D (tiny-4d) trains on two-frame batches', async () => {
    const cfg = config('tiny-4d');
    const m = new BEVDepth(cfg, { rng: createRng(3) });
    const batch = { ...withPrevFrame(rigBatch(cfg.data.imageSize, [sampleBoxes(1), sampleBoxes(2)], 7)), points: [groundCloud(), groundCloud()] };
    const { losses, counts } = await fitBatch(m, batch, { steps: 6, lr: cfg.train.lr });
    expect(losses[5]!).toBeLessThan(losses[0]!);
    expect(counts[5]).toBe(counts[1]);
    m.dispose();
  });

  it('ships starting weights for small and small-4d: the image backbone, FPN and depth net, shape for shape', () => {
    for (const preset of ['small', 'small-4d']) {
      const init = bevdepthStudent.initWeights!.find((w) => w.preset === preset)!;
      const { tensors } = parseSafetensors(readFileSync(init.file), init.file);
      const m = new BEVDepth(config(preset), { rng: createRng(0) });
      const expected = Object.entries(m.stateDict()).filter(([k]) => IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p)));
      expect(Object.keys(tensors).sort()).toEqual(expected.map(([k]) => k).sort());
      for (const [k, t] of expected) expect(tensors[k]!.shape, k).toEqual(t.shape);
      m.dispose();
    }
  });
});
