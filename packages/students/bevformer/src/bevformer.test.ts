/** On the wasm backend with @bevzoo/engine's training kernels (the default engine). */
import { readFileSync } from 'node:fs';
import { createRng, get, parseSafetensors, resolveConfig } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { fitBatch, rigBatch, sampleBoxes, withPrevFrame } from '@bevzoo/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { BEVFormer, bevformerStudent, IMAGE_BRANCH_PREFIXES, type BEVFormerConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<BEVFormerConfig>(bevformerStudent, { preset, overrides }).config;

describe('BEVFormer student', () => {
  it('registers; every preset resolves, fuses the previous frame and gives DistillBEV the head input as pre_head', () => {
    expect(get('student', 'bevformer')).toBe(bevformerStudent);
    for (const p of ['tiny', 'small', 'paper']) {
      const c = config(p);
      expect([c.temporal.frames, c.data.withPrev]).toEqual([2, true]);
      const f = bevformerStudent.provides(c);
      expect(f.pre_head).toMatchObject({ kind: 'bev', channels: c.encoder.embedDims });
      expect(f.heatmap!.kind).toBe('heatmap');
    }
    expect(config('small').encoder).toMatchObject({ layers: 2, embedDims: 32, heads: 4 });
    expect(config('paper').encoder).toMatchObject({ layers: 6, embedDims: 256, heads: 8 });
    const keys = Object.keys(new BEVFormer(config('tiny'), { rng: createRng(0) }).stateDict());
    for (const k of ['bev_embedding', 'positional_encoding.row_embed', 'layers.0.attentions.0.sampling_offsets.weight', 'layers.0.attentions.1.deformable_attention.value_proj.weight', 'layers.0.norms.2.weight', 'head.shared_conv.conv.weight'])
      expect(keys).toContain(k);
  });

  it('trains: twelve steps on a fixed two-frame batch lower the loss, and a step leaks no tensor', async () => {
    const cfg = config('tiny');
    const m = new BEVFormer(cfg, { rng: createRng(2) });
    const batch = withPrevFrame(rigBatch(cfg.data.imageSize, [sampleBoxes(3), sampleBoxes(4)], 5), 6, [1, 0, 0, -1.5, 0, 1, 0, 0.3, 0, 0, 1, 0, 0, 0, 0, 1]);
    const { losses, counts } = await fitBatch(m, batch, { steps: 12, lr: 2e-3 });
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[11]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[11]).toBe(counts[1]);
    m.dispose();
  });

  it('ships starting weights for small that hold exactly its image backbone, shape for shape', () => {
    const init = bevformerStudent.initWeights!.find((w) => w.preset === 'small')!;
    const { tensors } = parseSafetensors(readFileSync(init.file), init.file);
    const m = new BEVFormer(config('small'), { rng: createRng(0) });
    const expected = Object.entries(m.stateDict()).filter(([k]) => IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p)));
    expect(expected.length).toBeGreaterThan(0);
    expect(Object.keys(tensors).sort()).toEqual(expected.map(([k]) => k).sort());
    for (const [k, t] of expected) expect(tensors[k]!.shape, k).toEqual(t.shape);
    m.dispose();
  });
});
