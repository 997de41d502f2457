/**
 * Tests run on the wasm backend with @bevzoo/engine's training kernels (as the other camera students'); the shared
 * occupancy blocks (label pooling, the masked cross-entropy, the heads) are tested on cpu in @bevzoo/nn.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, createRng, get, parseSafetensors, resolveConfig } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { fitBatch, OCC3D, OCC3D_CLASS_NAMES, rigBatch, withOccLabels } from '@bevzoo/nn';
import { OCC_CLASSES, OCC_FREE, OCC_GRID } from '@bevzoo/nuscenes';
import { beforeAll, describe, expect, it } from 'vitest';
import { FlashOcc, flashoccFeatures, flashoccStudent, IMAGE_BRANCH_PREFIXES, type FlashOccConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<FlashOccConfig>(flashoccStudent, { preset, overrides }).config;
const FINE = 200 * 200 * 16;

describe('plugin and config', () => {
  it('registers the occupancy student, resolves every preset, and names the field of a bad config', () => {
    expect(get('student', 'flashocc')).toBe(flashoccStudent);
    expect(flashoccStudent.task).toBe('occ');
    for (const p of ['tiny', 'small', 'paper']) expect(config(p).data.occ).toBe(true);
    expect(resolveConfig(flashoccStudent).preset).toBe('small');
    expect(flashoccFeatures(config('small')).occ_logits).toMatchObject({ kind: 'voxel', channels: 18, grid: { cells: [100, 100, 16], cellSize: [0.8, 0.8, 0.4], range: [-40, -40, -1, 40, 40, 5.4] } });
    expect(() => config('tiny', { grid: { cellSize: 0.6 } })).toThrow(/grid\.cellSize: a multiple of Occ3D's 0.4 m/);
    expect(() => config('small', { bevEncoder: { firstStride: 2 } })).toThrow(/grid\.cellSize: BEV cells divisible by 8/);
    expect(() => config('tiny', { data: { occ: false } })).toThrow(/data\.occ: true/);
    expect(() => config('tiny', { loss: { classWeights: 'inverse' } })).toThrow(ConfigError);
    // the Occ3D constants of @bevzoo/nn are the reader's
    expect([...OCC3D.cells]).toEqual([...OCC_GRID.size]);
    expect([...OCC3D.range]).toEqual([...OCC_GRID.min, ...OCC_GRID.max]);
    expect([...OCC3D_CLASS_NAMES]).toEqual([...OCC_CLASSES]);
    expect(OCC3D.free).toBe(OCC_FREE);
  });

  it('the paper preset constructs flashocc-r50', () => {
    const cfg = config('paper');
    const f = flashoccFeatures(cfg);
    expect(Object.fromEntries(Object.entries(f).map(([k, s]) => [k, [s.kind, s.channels, ...s.grid.cells]]))).toEqual({
      stage0: ['bev', 128, 100, 100], stage1: ['bev', 256, 50, 50], stage2: ['bev', 512, 25, 25], pre_head: ['bev', 256, 200, 200], occ_logits: ['voxel', 18, 200, 200, 16],
    });
    const m = new FlashOcc(cfg, { rng: createRng(0) });
    expect(m.img_view_transformer.D).toBe(88);
    expect(m.img_view_transformer.depthnet!.weight.shape).toEqual([1, 1, 256, 88 + 64]);
    expect(m.img_view_transformer.cells).toEqual([200, 200, 1]);
    expect(m.img_bev_encoder_neck.conv.get(0).parameters()[0]!.shape).toEqual([3, 3, 640, 512]);
    expect(m.occ_head.predicter.get(2).parameters()[0]!.shape).toEqual([512, 16 * 18]);
    const n = m.numParameters();
    expect(n).toBeGreaterThan(40e6);
    expect(n).toBeLessThan(50e6);
    m.dispose();
  }, 60_000);

  it('ships starting weights for small that hold exactly the small model’s image branch, shape for shape', () => {
    const init = flashoccStudent.initWeights!.find((w) => w.preset === 'small')!;
    expect(init.prefixes).toEqual(IMAGE_BRANCH_PREFIXES);
    const { tensors, metadata } = parseSafetensors(readFileSync(init.file), init.file);
    const m = new FlashOcc(config('small'), { rng: createRng(0) });
    const expected = Object.entries(m.stateDict()).filter(([k]) => IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p)));
    expect(Object.keys(tensors).sort()).toEqual(expected.map(([k]) => k).sort());
    for (const [k, t] of expected) expect(tensors[k]!.shape, k).toEqual(t.shape);
    expect(metadata.derived_from).toMatch(/bevdet-small-image-synth/);
    expect(metadata.data).toMatch(/^synthetic small seed 0 .*synth_train$/);
    m.dispose();
  });
});

describe('FlashOcc tiny', () => {
  it('forward: every named feature has the shape provides() declares; the logits cover the grid; predict gives Occ3D labels', async () => {
    const cfg = config('tiny');
    const m = new FlashOcc(cfg, { rng: createRng(1) });
    const batch = withOccLabels(rigBatch(cfg.data.imageSize, [[], []]));
    const out = m.forward(batch, { training: false });
    const spec = flashoccStudent.provides(cfg);
    expect(Object.keys(out.features).sort()).toEqual(Object.keys(spec).sort());
    for (const [name, s] of Object.entries(spec)) {
      const shape = s.kind === 'voxel' ? [2, ...s.grid.cells, s.channels] : [2, s.grid.cells[1], s.grid.cells[0], s.channels];
      expect(out.features[name]!.shape, name).toEqual(shape);
    }
    expect(out.outputs.occ!.shape).toEqual([2, 40, 40, 8, 18]);
    expect(out.outputs.depth!.shape).toEqual([12, 4, 11, 8]);
    const preds = await m.predict(out, batch);
    expect(preds).toHaveLength(2);
    for (const p of preds) {
      expect(p.semantics).toBeInstanceOf(Uint8Array);
      expect(p.semantics.length).toBe(FINE);
      expect(p.semantics.every((v) => v <= 17)).toBe(true);
    }
    const keys = Object.keys(m.stateDict());
    const prefixes = ['img_backbone.', 'img_neck.', 'img_view_transformer.', 'img_bev_encoder_backbone.', 'img_bev_encoder_neck.', 'occ_head.'];
    expect(keys.filter((k) => !prefixes.some((p) => k.startsWith(p)))).toEqual([]);
    for (const k of ['occ_head.final_conv.conv.weight', 'occ_head.predicter.0.weight', 'occ_head.predicter.2.bias', 'img_bev_encoder_neck.conv.0.weight']) expect(keys, k).toContain(k);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs)]);
    m.dispose();
  });

  it('trains: ten steps on a fixed batch lower the loss; a step leaks no tensor', async () => {
    const cfg = config('tiny');
    const m = new FlashOcc(cfg, { rng: createRng(2) });
    const batch = withOccLabels(rigBatch(cfg.data.imageSize, [[], []], 5));
    const { losses, counts, parts } = await fitBatch(m, batch, { steps: 10, lr: 1e-2 });
    expect(Object.keys(parts)).toEqual(['occ.ce']);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[0]!).toBeGreaterThan(1);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]);
    m.dispose();
  });
});
