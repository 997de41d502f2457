/**
 * Tests run on the wasm backend with @bevzoo/engine's training kernels (its conv3d is a sum of 2-D convolutions);
 * the shared occupancy blocks are tested on cpu in @bevzoo/nn.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, get, parseSafetensors, resolveConfig } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { fitBatch, groundCloud, rigBatch, withOccLabels } from '@bevzoo/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { BEVDetOcc, bevdetOccFeatures, bevdetOccStudent, IMAGE_BRANCH_PREFIXES, type BEVDetOccConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<BEVDetOccConfig>(bevdetOccStudent, { preset, overrides }).config;
const FINE = 200 * 200 * 16;

describe('plugin and config', () => {
  it('registers the occupancy student, resolves every preset, and names the field of a bad config', () => {
    expect(get('student', 'bevdet-occ')).toBe(bevdetOccStudent);
    expect(bevdetOccStudent.task).toBe('occ');
    for (const p of ['tiny', 'small', 'paper']) expect(config(p).data.occ).toBe(true);
    expect(resolveConfig(bevdetOccStudent).preset).toBe('small');
    const f = bevdetOccFeatures(config('small'));
    expect(f.occ_logits).toMatchObject({ kind: 'voxel', channels: 18, grid: { cells: [100, 100, 16], cellSize: [0.8, 0.8, 0.4] } });
    expect(f.voxel).toMatchObject({ kind: 'voxel', channels: 16, grid: { cells: [50, 50, 8], cellSize: [1.6, 1.6, 0.8], range: [-40, -40, -1, 40, 40, 5.4] } });
    expect(f.pre_head).toMatchObject({ kind: 'bev', channels: 8 * 16, grid: { cells: [50, 50] } });
    expect(() => config('small', { head: { subvoxels: [1, 1, 1] } })).not.toThrow(); // 100×100×16 volume
    expect(() => config('small', { head: { subvoxels: [4, 4, 2] } })).toThrow(/grid: a volume divisible by 2 along x, y and z .* found 25×25×8/);
    expect(() => config('tiny', { grid: { zCellSize: 0.6 } })).toThrow(/grid\.zCellSize: a multiple of Occ3D's 0.4 m that divides its 16 voxels/);
    expect(() => config('tiny', { depthSupervision: { weight: 3 } })).toThrow(/data\.points: true with depthSupervision/);
  });

  it('the paper preset constructs bevdet-occ-r50', () => {
    const cfg = config('paper');
    const f = bevdetOccFeatures(cfg);
    expect(Object.fromEntries(Object.entries(f).map(([k, s]) => [k, [s.kind, s.channels, ...s.grid.cells]]))).toEqual({
      voxel: ['voxel', 32, 200, 200, 16], pre_head: ['bev', 16 * 32, 200, 200], occ_logits: ['voxel', 18, 200, 200, 16],
    });
    const m = new BEVDetOcc(cfg, { rng: createRng(0) });
    expect(m.img_view_transformer.D).toBe(88);
    expect(m.img_view_transformer.cells).toEqual([200, 200, 16]);
    expect(m.img_view_transformer.depthnet!.weight.shape).toEqual([1, 1, 256, 88 + 32]);
    expect(m.img_bev_encoder_backbone.layers.map((s) => s.length)).toEqual([1, 2, 4]);
    expect(m.img_bev_encoder_backbone.stageChannels).toEqual([32, 64, 128]);
    expect(m.img_bev_encoder_neck.conv.conv.weight.shape).toEqual([1, 1, 1, 224, 32]);
    expect(m.occ_head.final_conv.conv.weight.shape).toEqual([3, 3, 3, 32, 32]);
    expect(m.occ_head.predicter.get(2).parameters()[0]!.shape).toEqual([64, 18]);
    const n = m.numParameters();
    expect(n).toBeGreaterThan(25e6);
    expect(n).toBeLessThan(30e6);
    m.dispose();
  }, 60_000);

  it('ships starting weights for small: BEVDet small’s image branch with the depth net cut to 16 context channels', () => {
    const init = bevdetOccStudent.initWeights!.find((w) => w.preset === 'small')!;
    expect(init.prefixes).toEqual(IMAGE_BRANCH_PREFIXES);
    const { tensors, metadata } = parseSafetensors(readFileSync(init.file), init.file);
    const m = new BEVDetOcc(config('small'), { rng: createRng(0) });
    const expected = Object.entries(m.stateDict()).filter(([k]) => IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p)));
    expect(Object.keys(tensors).sort()).toEqual(expected.map(([k]) => k).sort());
    for (const [k, t] of expected) expect(tensors[k]!.shape, k).toEqual(t.shape);
    expect(tensors['img_view_transformer.depthnet.weight']!.shape).toEqual([1, 1, 64, 49 + 16]);
    // the kept outputs are BEVDet's first 65 (49 depth bins, 16 context channels), row for row
    const src = init.file.replace(/bevdet-occ\/checkpoints\/bevdet-occ-small/, 'bevdet/checkpoints/bevdet-small');
    const full = parseSafetensors(readFileSync(src), src).tensors['img_view_transformer.depthnet.weight']!;
    const cut = tensors['img_view_transformer.depthnet.weight']!;
    for (const [r, c] of [[0, 0], [3, 48], [63, 64], [10, 50]]) expect(cut.data[r * 65 + c]).toBe(full.data[r * 81 + c]);
    expect(metadata.derived_from).toMatch(/49 depth and first 16 context outputs/);
    m.dispose();
  });
});

describe('BEVDet-Occ tiny', () => {
  it('forward: every named feature has the shape provides() declares; sub-voxel logits cover the grid; predict gives Occ3D labels', async () => {
    const cfg = config('tiny');
    const m = new BEVDetOcc(cfg, { rng: createRng(1) });
    const batch = withOccLabels(rigBatch(cfg.data.imageSize, [[], []]));
    const out = m.forward(batch, { training: false });
    const spec = bevdetOccStudent.provides(cfg);
    expect(Object.keys(out.features).sort()).toEqual(Object.keys(spec).sort());
    for (const [name, s] of Object.entries(spec)) {
      const shape = s.kind === 'voxel' ? [2, ...s.grid.cells, s.channels] : [2, s.grid.cells[1], s.grid.cells[0], s.channels];
      expect(out.features[name]!.shape, name).toEqual(shape);
    }
    expect(out.features.voxel!.shape).toEqual([2, 20, 20, 4, 8]);
    expect(out.outputs.occ!.shape).toEqual([2, 40, 40, 8, 18]);
    const preds = await m.predict(out, batch);
    expect(preds.map((p) => p.semantics.length)).toEqual([FINE, FINE]);
    expect(preds.every((p) => p.semantics.every((v) => v <= 17))).toBe(true);
    const keys = Object.keys(m.stateDict());
    for (const k of ['img_bev_encoder_backbone.layers.0.0.conv1.conv.weight', 'img_bev_encoder_backbone.layers.1.0.downsample.bn.running_mean', 'img_bev_encoder_neck.conv.conv.weight',
      'occ_head.final_conv.conv.weight', 'occ_head.final_conv.conv.bias', 'occ_head.predicter.2.weight']) expect(keys, k).toContain(k);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs)]);
    m.dispose();
  });

  it('trains: ten steps on a fixed batch lower the loss; a step leaks no tensor', async () => {
    const cfg = config('tiny');
    const m = new BEVDetOcc(cfg, { rng: createRng(2) });
    const batch = withOccLabels(rigBatch(cfg.data.imageSize, [[], []], 5));
    const { losses, counts, parts } = await fitBatch(m, batch, { steps: 10, lr: 1e-2 });
    expect(Object.keys(parts)).toEqual(['occ.ce']);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]);
    m.dispose();
  });

  it('depth from LiDAR (BEVDepth) is optional: a depth part from the keyframe points, and a clear error without them', () => {
    const cfg = config('tiny', { depthSupervision: { weight: 3 }, data: { points: true } });
    const m = new BEVDetOcc(cfg, { rng: createRng(3) });
    const batch = withOccLabels(rigBatch(cfg.data.imageSize, [[], []]));
    const out = m.forward(batch, { training: true });
    expect(() => m.loss(out, batch)).toThrow(/batch\.points: expected one LiDAR cloud per sample/);
    const l = m.loss(out, { ...batch, points: [groundCloud(400), groundCloud(400)] });
    expect(Object.keys(l.parts).sort()).toEqual(['depth', 'occ.ce']);
    expect(l.parts.depth!.dataSync()[0]).toBeGreaterThan(0);
    expect(l.total.dataSync()[0]).toBeCloseTo(l.parts.depth!.dataSync()[0]! + l.parts['occ.ce']!.dataSync()[0]!, 4);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs), l.total, ...Object.values(l.parts)]);
    m.dispose();
  });
});
