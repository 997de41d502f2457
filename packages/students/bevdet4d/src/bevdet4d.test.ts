/** On the wasm backend with @bevzoo/engine's training kernels (see the BEVDet tests). */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, get, parseSafetensors, resolveConfig } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { fitBatch, LSSInputError, rigBatch, sampleBoxes, withPrevFrame } from '@bevzoo/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { BEVDet4D, bevdet4dStudent, IMAGE_BRANCH_PREFIXES, type BEVDet4DConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<BEVDet4DConfig>(bevdet4dStudent, { preset, overrides }).config;

describe('BEVDet4D', () => {
  it('registers, fuses two frames in every preset, and needs batches with the previous keyframe', () => {
    expect(get('student', 'bevdet4d')).toBe(bevdet4dStudent);
    for (const p of ['tiny', 'small', 'paper']) {
      const c = config(p);
      expect([c.temporal.frames, c.data.withPrev]).toEqual([2, true]);
    }
    expect(() => config('tiny', { data: { withPrev: false } })).toThrow(/data\.withPrev/);
    const m = new BEVDet4D(config('tiny'), { rng: createRng(0) });
    expect(m.layout.bevChannels).toBe(16);
    const keys = Object.keys(m.stateDict());
    expect(keys).toContain('pre_process_net.layers.0.1.conv2.weight');
    expect(m.img_bev_encoder_backbone.layers.get(0).parameters()[0]!.shape).toEqual([3, 3, 16, 16]); // 2 × 8 context channels in
    const batch = rigBatch(m.layout.imageSize, [sampleBoxes(1)]);
    expect(() => m.forward(batch, { training: false })).toThrow(LSSInputError);
    expect(() => m.forward(batch, { training: false })).toThrow(/bevdet4d: batch\.prev: expected the previous keyframe/);
    m.dispose();
  });

  it('reads the previous frame: other previous images or another ego motion change the output', () => {
    const m = new BEVDet4D(config('tiny'), { rng: createRng(1) });
    const base = rigBatch(m.layout.imageSize, [sampleBoxes(1), sampleBoxes(2)]);
    const heat = (b: typeof base) => tf.tidy(() => {
      const out = m.forward(b, { training: false });
      return tf.clone(out.features.heatmap!);
    });
    const a = heat(withPrevFrame(base, 1));
    const again = heat(withPrevFrame(base, 1));
    const other = heat(withPrevFrame(base, 2));
    const moved = heat(withPrevFrame(base, 1, [1, 0, 0, -3.2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]));
    const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]!);
    expect(diff(a, again)).toBe(0);
    expect(diff(a, other)).toBeGreaterThan(1e-4);
    expect(diff(a, moved)).toBeGreaterThan(1e-4);
    tf.dispose([a, again, other, moved]);
    m.dispose();
  });

  it('trains: ten steps on a fixed two-frame batch lower the loss, and a step leaks no tensor', async () => {
    const cfg = config('tiny');
    const m = new BEVDet4D(cfg, { rng: createRng(2) });
    const batch = withPrevFrame(rigBatch(cfg.data.imageSize, [sampleBoxes(3), sampleBoxes(4)], 5), 6, [1, 0, 0, -1.5, 0, 1, 0, 0.3, 0, 0, 1, 0, 0, 0, 0, 1]);
    const { losses, counts } = await fitBatch(m, batch, { steps: 10, lr: cfg.train.lr });
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]);
    m.dispose();
  });

  it('ships starting weights for small that hold exactly its image branch, shape for shape', () => {
    const init = bevdet4dStudent.initWeights!.find((w) => w.preset === 'small')!;
    const { tensors } = parseSafetensors(readFileSync(init.file), init.file);
    const m = new BEVDet4D(config('small'), { rng: createRng(0) });
    const expected = Object.entries(m.stateDict()).filter(([k]) => IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p)));
    expect(Object.keys(tensors).sort()).toEqual(expected.map(([k]) => k).sort());
    for (const [k, t] of expected) expect(tensors[k]!.shape, k).toEqual(t.shape);
    m.dispose();
  });
});
