import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ForwardOutput, OccPrediction, TaskModel } from '@bevzoo/core';
import { OCC_GRID, readNpz, type Batch } from '@bevzoo/nuscenes';
import type { Dataset } from './dataset.js';
import { TASK_EVALUATORS } from './tasks.js';

const V = OCC_GRID.size[0] * OCC_GRID.size[1] * OCC_GRID.size[2];

/** A model whose prediction of each sample is fixed: labels by voxel index. */
function fixedModel(pred: (token: string) => Uint8Array): TaskModel<Batch, OccPrediction> & { modes: boolean[] } {
  const modes: boolean[] = [];
  return {
    modes,
    forward: () => ({ features: {}, outputs: {} }) as ForwardOutput,
    loss: () => { throw new Error('not trained here'); },
    predict: async (_out, batch) => batch.sampleTokens.map((t) => ({ semantics: pred(t) })),
    namedParameters: () => [], stateDict: () => ({}), loadStateDict: () => {}, train: (on = true) => void modes.push(on), dispose: () => {},
  };
}

/** Batches of one sample each: GT labels and camera mask given per token. */
async function* batches(tokens: string[], gt: (t: string) => { semantics: Uint8Array; maskCamera: Uint8Array }): AsyncGenerator<Batch> {
  for (const t of tokens) {
    const g = gt(t);
    yield { sampleTokens: [t], occ: { semantics: g.semantics, maskCamera: g.maskCamera, maskLidar: g.maskCamera } } as unknown as Batch;
  }
}

const fill = (v: number) => new Uint8Array(V).fill(v);

describe('occupancy evaluation', () => {
  it('Occ3D mIoU over the camera-visible voxels of every sample, the prediction files written on the final evaluation', async () => {
    // Sample a: GT car (4) in the first 100 voxels, free elsewhere; prediction car on the first 50 and on 50 free voxels.
    // Sample b: GT driveable (11) on 200 voxels, of which 100 are not camera-visible; prediction all driveable there.
    const gt = (t: string) => {
      const s = fill(17), m = fill(1);
      if (t === 'a') s.fill(4, 0, 100);
      else { s.fill(11, 0, 200); m.fill(0, 100, 200); }
      return { semantics: s, maskCamera: m };
    };
    const pred = (t: string) => {
      const p = fill(17);
      if (t === 'a') { p.fill(4, 0, 50); p.fill(4, 100, 150); } else p.fill(11, 0, 200);
      return p;
    };
    const outDir = mkdtempSync(join(tmpdir(), 'bevzoo-occ-eval-'));
    const model = fixedModel(pred);
    const seen: number[] = [];
    const ev = await TASK_EVALUATORS.occ.evaluate({
      model, batches: batches(['a', 'b'], gt), data: { gts: '/gts', val: ['a', 'b'] } as unknown as Dataset, final: true, outDir,
      meta: { use_camera: true, use_lidar: false }, log: () => {}, onBatch: (n) => seen.push(n),
    });
    // car: TP 50, FN 50, FP 50 → 1/3. driveable: TP 100 (the 100 hidden voxels do not count) → 1. Free is not averaged.
    const iou = ev.metrics.iou as Record<string, number | null>;
    expect(iou.car).toBeCloseTo(1 / 3, 12);
    expect(iou.driveable_surface).toBe(1);
    expect(iou.barrier).toBeNull(); // absent from GT and predictions: NaN, excluded from the mean
    expect(ev.metrics.miou).toBeCloseTo((1 / 3 + 1) / 2, 12);
    expect(ev.metrics.frames).toBe(2);
    expect(ev.curve).toEqual({ miou: ev.metrics.miou });
    expect(ev.headline).toBe(`mIoU ${(ev.metrics.miou as number).toFixed(4)}`);
    expect(seen).toEqual([1, 1]);
    expect(model.modes).toEqual([false, true]); // evaluated in eval mode, then back to training mode
    const file = join(outDir, 'eval', 'occ', 'a.npz');
    expect(existsSync(file)).toBe(true);
    expect([...readNpz(readFileSync(file)).semantics!.data.subarray(95, 105)]).toEqual([17, 17, 17, 17, 17, 4, 4, 4, 4, 4]);
  });

  it('refuses a prediction of the wrong size, naming the sample, and a dataset without Occ3D labels', async () => {
    const gt = () => ({ semantics: fill(17), maskCamera: fill(1) });
    const ctx = { data: { gts: '/gts', val: ['x'] } as unknown as Dataset, final: false, outDir: '/nonexistent', meta: { use_camera: true, use_lidar: false }, log: () => {} };
    await expect(TASK_EVALUATORS.occ.evaluate({ ...ctx, model: fixedModel(() => new Uint8Array(10)), batches: batches(['x'], gt) }))
      .rejects.toThrow(`occupancy prediction of sample x: expected 200×200×16 = ${V} labels, found 10`);
    await expect(TASK_EVALUATORS.occ.evaluate({ ...ctx, data: { dataroot: '/data', val: ['x'] } as unknown as Dataset, model: fixedModel(() => fill(17)), batches: batches(['x'], gt) }))
      .rejects.toThrow('/data has no gts/ folder');
  });
});
