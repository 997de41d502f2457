/**
 * Tests run on the wasm backend with @bevzoo/engine's training kernels (as the occupancy students'); the LiDAR
 * histogram and the fuser are checked here, the shared occupancy blocks in @bevzoo/nn.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, createRng, get, resolveConfig } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { fitBatch, groundCloud, heightHistogram, rigBatch, withOccLabels } from '@bevzoo/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { OccFusion, occFusionFeatures, occFusionTeacher, type OccFusionConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<OccFusionConfig>(occFusionTeacher, { preset, overrides }).config;

/** The rig batch with Occ3D labels and per sample a ground cloud plus a sweep and a column of points on the car. */
function fusionBatch(imageSize: [number, number], seed: number) {
  const batch = withOccLabels(rigBatch(imageSize, [[], []], seed));
  const car = (b: number) => Float32Array.from(Array.from({ length: 60 }, (_, i) => [6 + 4 * b + (i % 5) * 0.4 - 0.8, 2 + ((i >> 2) % 3) * 0.3, 0.2 + (i % 7) * 0.2, 0.5, 0]).flat());
  const points = [0, 1].map((b) => Float32Array.from([...groundCloud(400), ...groundCloud(100, 0.05), ...car(b)]));
  return { ...batch, points };
}

describe('plugin and config', () => {
  it('registers the multi-modal occupancy teacher and resolves every preset; bad configs name their field', () => {
    expect(get('teacher', 'occ-fusion')).toBe(occFusionTeacher);
    expect(occFusionTeacher.task).toBe('occ');
    for (const p of ['tiny', 'small', 'paper']) {
      const c = config(p);
      expect([c.data.occ, c.data.points, c.data.images]).toEqual([true, true, true]);
    }
    expect(resolveConfig(occFusionTeacher).preset).toBe('small');
    expect(occFusionFeatures(config('small')).occ_logits).toMatchObject({ kind: 'voxel', channels: 18, grid: { cells: [100, 100, 16], cellSize: [0.8, 0.8, 0.4] } });
    expect(() => config('tiny', { data: { points: false } })).toThrow(/data\.points: true/);
    expect(() => config('tiny', { lidar: { channels: 0 } })).toThrow(ConfigError);
  });

  it('the paper preset builds the teacher on Occ3D’s 200×200×16 grid', () => {
    const m = new OccFusion(config('paper'), { rng: createRng(0) });
    expect(m.fusionLayout.pillars).toEqual({ pillarSize: [0.4, 0.4, 6.4], range: [-40, -40, -1, 40, 40, 5.4] });
    expect(m.fusionLayout.lidarInChannels).toBe(64 + 32);
    expect(m.fuser.conv.conv.parameters()[0]!.shape).toEqual([3, 3, 64 + 64, 64]);
    m.dispose();
  }, 60_000);
});

describe('height histogram', () => {
  it('counts keyframe and sweep points per z cell apart, as log(1 + n), and leaves out points outside the grid', () => {
    const grid = { pillarSize: [2, 2, 0.8] as [number, number, number], range: [-40, -40, -1, 40, 40, 5.4] as [number, number, number, number, number, number] };
    const p = Float32Array.from([
      0.5, -0.5, 0.0, 1, 0, // x cell 20, y cell 19, z cell 1, keyframe
      0.7, -0.1, 0.1, 1, 0, // same cell
      0.5, -0.5, 0.0, 1, 0.1, // same cell, a sweep
      39.9, 39.9, 5.3, 1, 0, // last cell
      41, 0, 0, 1, 0, // outside x
      0, 0, -1.5, 1, 0, // below the grid
    ]);
    const h = heightHistogram([p], grid);
    const C = 16;
    expect(h.length).toBe(40 * 40 * C);
    const at = (y: number, x: number, c: number) => h[(y * 40 + x) * C + c]!;
    expect(at(19, 20, 1)).toBeCloseTo(Math.log(3), 6);
    expect(at(19, 20, 8 + 1)).toBeCloseTo(Math.log(2), 6);
    expect(at(39, 39, 7)).toBeCloseTo(Math.log(2), 6);
    expect(h.reduce((a, v) => a + (v > 0 ? 1 : 0), 0)).toBe(3);
  });
});

describe('OccFusion tiny', () => {
  it('forward: every named feature has its declared shape; the LiDAR branch changes the output; predict gives Occ3D labels', async () => {
    const cfg = config('tiny');
    const m = new OccFusion(cfg, { rng: createRng(1) });
    const batch = fusionBatch(cfg.data.imageSize, 3);
    const out = m.forward(batch, { training: false });
    const spec = occFusionTeacher.provides(cfg);
    for (const [name, s] of Object.entries(spec)) {
      const shape = s.kind === 'voxel' ? [2, ...s.grid.cells, s.channels] : [2, s.grid.cells[1], s.grid.cells[0], s.channels];
      expect(out.features[name]!.shape, name).toEqual(shape);
    }
    const noCar = m.forward({ ...batch, points: batch.points.map((p) => p.subarray(0, 500 * 5)) }, { training: false });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(out.outputs.occ!, noCar.outputs.occ!))).dataSync()[0]!);
    expect(diff).toBeGreaterThan(1e-4);
    const preds = await m.predict(out, batch);
    expect(preds.map((p) => p.semantics.length)).toEqual([200 * 200 * 16, 200 * 200 * 16]);
    expect(() => m.forward({ ...batch, points: undefined }, { training: false })).toThrow(/points/);
    const keys = Object.keys(m.stateDict());
    for (const k of ['pts_voxel_encoder.pfn_layers.0.linear.weight', 'pts_bev_encoder.0.conv.weight', 'fuser.conv.conv.weight', 'fuser.se.conv_reduce.weight', 'occ_head.predicter.2.bias']) expect(keys, k).toContain(k);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs), ...Object.values(noCar.features), ...Object.values(noCar.outputs)]);
    m.dispose();
  });

  it('trains: ten steps on a fixed batch lower the loss; a step leaks no tensor', async () => {
    const cfg = config('tiny');
    const m = new OccFusion(cfg, { rng: createRng(2) });
    const { losses, counts, parts } = await fitBatch(m, fusionBatch(cfg.data.imageSize, 5), { steps: 10, lr: 1e-2 });
    expect(Object.keys(parts)).toEqual(['occ.ce']);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]);
    m.dispose();
  });
});
