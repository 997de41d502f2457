import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNpz } from '@bevzoo/nuscenes';
import { describe, expect, it } from 'vitest';
import { OccupancyInputError } from './errors.js';
import type { DetectionDb } from './evaluate.js';
import { evaluateOccupancy, formatOccupancyTable, OccConfusion } from './occ.js';

describe('OccConfusion', () => {
  it('counts (gt, pred) pairs on camera-visible voxels; IoU = TP / (row + col − TP); mIoU over 0–16', () => {
    const c = new OccConfusion();
    // Visible pairs: (0,0) (0,1) (1,1) (1,17) (17,17) (17,4) (4,4); the last voxel (4,2) is masked out.
    c.add([0, 0, 1, 1, 17, 17, 4, 4], [0, 1, 1, 17, 17, 4, 4, 2], [1, 1, 1, 1, 1, 1, 1, 0]);
    expect(c.counts[0 * 18 + 1]).toBe(1);
    expect(c.counts[4 * 18 + 2]).toBe(0);
    const iou = c.iou();
    expect(iou[0]).toBe(0.5); // TP 1, GT 2, pred 1
    expect(iou[1]).toBe(1 / 3); // free predicted on a barrier voxel is a false negative of barrier
    expect(iou[4]).toBe(0.5); // car predicted on a free voxel is a false positive of car
    expect(iou[17]).toBe(1 / 3);
    expect(iou[2]).toBeNaN(); // never seen: excluded from the mean
    expect(c.miou()).toBe((0.5 + 1 / 3 + 0.5) / 3);
    // Frames accumulate; merging equals adding.
    const d = new OccConfusion();
    d.add([2, 2], [2, 0], [1, 1]);
    c.merge(d);
    expect(c.frames).toBe(2);
    expect(c.iou()[2]).toBe(0.5);
    expect(() => c.add([0], [18], [1])).toThrow(OccupancyInputError);
    expect(() => c.add([0, 1], [0], [1, 1])).toThrow(OccupancyInputError);
  });
});

describe('evaluateOccupancy', () => {
  const N = 200 * 200 * 16;
  const arr = (data: Uint8Array) => ({ data, shape: [200, 200, 16] });

  it('reads <gts>/<scene>/<token>/labels.npz and <predictions>/<token>.npz, frame by frame', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bevzoo-occ-'));
    const gts = join(root, 'gts'), preds = join(root, 'preds');
    mkdirSync(preds, { recursive: true });
    const tokens = ['tokA', 'tokB'];
    const expected = new OccConfusion();
    tokens.forEach((t, f) => {
      const sem = new Uint8Array(N).fill(17), mask = new Uint8Array(N), lidar = new Uint8Array(N).fill(1), pred = new Uint8Array(N).fill(17);
      for (let i = 0; i < 1000; i++) {
        const v = (i * 7919 + f * 13) % N;
        sem[v] = (i + f) % 17;
        pred[v] = i % 3 === 0 ? 17 : (i + f) % 17;
        mask[v] = i % 5 === 0 ? 0 : 1;
      }
      for (let i = 0; i < 5000; i++) mask[(i * 104729) % N] = 1;
      mkdirSync(join(gts, 'scene-1', t), { recursive: true });
      writeFileSync(join(gts, 'scene-1', t, 'labels.npz'), writeNpz({ semantics: arr(sem), mask_lidar: arr(lidar), mask_camera: arr(mask) }));
      writeFileSync(join(preds, `${t}.npz`), writeNpz({ semantics: arr(pred) }));
      expected.add(sem, pred, mask);
    });
    const db = {
      get: (table: string, token: string) => (table === 'sample' ? { token, scene_token: 'sc' } : { token, name: 'scene-1' }),
    } as unknown as DetectionDb;
    const r = await evaluateOccupancy({ nusc: db, sampleTokens: tokens, gts, predictions: preds });
    expect(r.frames).toBe(2);
    expect(Array.from(r.confusion.counts)).toEqual(Array.from(expected.counts));
    expect(r.miou).toBe(expected.miou());
    expect(r.iou.free).toBe(expected.iou()[17]);
    expect(formatOccupancyTable(r)).toContain(`===> mIoU of 2 samples: ${(r.miou * 100).toFixed(2)}`);

    // A missing prediction names the sample token and the path.
    await expect(evaluateOccupancy({ nusc: db, sampleTokens: ['tokA', 'tokC'], gts, predictions: preds })).rejects.toThrow(/tokC/);
    writeFileSync(join(preds, 'tokA.npz'), writeNpz({ semantics: { data: new Uint8Array(10), shape: [10] } }));
    await expect(evaluateOccupancy({ nusc: db, sampleTokens: ['tokA'], gts, predictions: preds })).rejects.toThrow(/shape \(200, 200, 16\)/);
  });
});
