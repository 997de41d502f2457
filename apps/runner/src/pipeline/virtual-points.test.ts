/**
 * The runner's preparation for `data.virtualPoints` (MVP): synthetic masks and the virtual-point cache before the
 * loaders, 17-value points in the batches and the GT-paste database, a clear error for real data without masks.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { MVP_POINT_FEATURES, createModel, createRng, dataSettings, disposeForward, realPoints, runSettings, tidyForward, type TaskModel } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { createLoader, type Batch } from '@bevzoo/nuscenes';
import '@bevzoo/student-bevdepth';
import { prepareDataset, prepareVirtualPointsFor, type Dataset } from './dataset.js';
import { objectDatabase } from './gt-paste.js';
import type { JobSpec } from './job.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-virtual-points-'));
let data: Dataset;
beforeAll(async () => {
  data = await prepareDataset({ synthPreset: 'tiny', dataDir: join(out, 'data'), maxTrain: 4, maxVal: 2 });
}, 600_000);

describe('data.virtualPoints in the runner', () => {
  it('makes the masks and the cache once, then batches and the GT-paste database carry 17 values per point', async () => {
    const lines: string[] = [];
    await prepareVirtualPointsFor(data, [...data.train, ...data.val], 1, (s) => lines.push(s));
    expect(lines[0]).toMatch(/^instance masks: \d+ images written/);
    expect(lines[1]).toMatch(/^virtual points: 12 LiDAR files of 6 samples \(12 computed, 0 cached; \d+ camera images, \d+ painted and \d+ virtual points\) in [\d.]+ s/);
    const again: string[] = [];
    await prepareVirtualPointsFor(data, data.train, 1, (s) => again.push(s));
    expect(again).toHaveLength(1);
    expect(again[0]).toMatch(/^virtual points: 8 LiDAR files of 4 samples \(0 computed, 8 cached/);

    const loader = createLoader({ nusc: data.nusc, sampleTokens: data.train, batchSize: 2, imageSize: [32, 64], sweeps: 1, virtualPoints: true, augment: false, shuffle: false });
    const b = await loader.batch(0, 0);
    expect(b.pointFeatures).toBe(MVP_POINT_FEATURES);
    let virtual = 0;
    for (const p of b.points!) for (let o = MVP_POINT_FEATURES - 1; o < p.length; o += MVP_POINT_FEATURES) virtual += p[o]!;
    expect(virtual).toBeGreaterThan(0);
    expect(realPoints(b).reduce((a, p) => a + p.length / 5, 0)).toBe(b.points!.reduce((a, p) => a + p.length / MVP_POINT_FEATURES, 0) - virtual);

    const need = dataSettings.parse({ images: false, points: true, sweeps: 1, virtualPoints: true });
    const spec = { id: 'vp', role: 'teacher' } as JobSpec;
    const log: string[] = [];
    const db = await objectDatabase(spec, 'mvp', need, data, (s) => log.push(s));
    expect(db.pointFeatures).toBe(MVP_POINT_FEATURES);
    expect(log[0]).toMatch(/\(17 values each, virtual points included\)/);
  });

  it('a camera student with depth supervision reads only the real points of a 17-value batch (the same loss as on LiDAR alone)', async () => {
    await initEngine({ backend: 'wasm', log: () => {} });
    const m = await createModel<TaskModel<Batch>>('bevdepth', { kind: 'student', preset: 'tiny', rng: createRng(1) });
    try {
      const d = runSettings(m.config).data;
      await prepareVirtualPointsFor(data, data.train, d.sweeps);
      const opts = { nusc: data.nusc, sampleTokens: data.train, batchSize: 2, imageSize: d.imageSize, sweeps: d.sweeps, augment: true, seed: 3, shuffle: false };
      const depthLoss = (b: Batch) => {
        const out = tidyForward(m.model, b, false);
        const l = m.model.loss(out, b);
        const v = l.parts.depth!.dataSync()[0]!;
        tf.dispose([l.total, ...Object.values(l.parts)]);
        disposeForward(out);
        return v;
      };
      const b5 = await createLoader(opts).batch(0, 0), b17 = await createLoader({ ...opts, virtualPoints: true }).batch(0, 0);
      expect(b17.pointFeatures).toBe(MVP_POINT_FEATURES);
      const l5 = depthLoss(b5);
      expect(Number.isFinite(l5)).toBe(true);
      expect(depthLoss(b17)).toBe(l5);
    } finally {
      m.model.dispose();
    }
  });

  it('refuses a real dataset without a masks folder, naming it', async () => {
    const root = join(out, 'real');
    mkdirSync(root, { recursive: true });
    const real = { ...data, synthetic: false, dataroot: root };
    await expect(prepareVirtualPointsFor(real, data.train, 1)).rejects.toThrow(`needs 2-D instance masks in ${join(root, 'masks')}`);
  });
});
