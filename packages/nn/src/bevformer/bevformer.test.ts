import * as tf from '@tensorflow/tfjs-core';
import { createRng, type DeepPartial } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '@bevzoo/engine';
import { rigBatch, sampleBoxes, withPrevFrame } from '../detectors/rig-batch.js';
import { LSSInputError } from '../detectors/lss-detector.js';
import { bevformerFeatures, bevformerLayout, bevformerSchema, type BEVFormerConfig } from './config.js';
import { BEVFormerDetector, cameraHits } from './detector.js';

// On the default engine (wasm with its training kernels), as the student trains: tfjs's cpu backend is ~10× slower here.
beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const TINY: DeepPartial<BEVFormerConfig> = {
  backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8, outIndices: [1, 2] },
  neck: { levels: 2 },
  bev: { cellSize: 6.4 },
  encoder: { layers: 1, embedDims: 16, heads: 2, ffnChannels: 32, crossPoints: 4, selfPoints: 2 },
  head: { sharedChannels: 8, headChannels: 8 },
  data: { imageSize: [64, 176], withPrev: true },
};
const config = (over: DeepPartial<BEVFormerConfig> = {}): BEVFormerConfig => bevformerSchema.parse({ ...TINY, ...over });

describe('BEVFormer (CenterHead)', () => {
  it('lays out levels and the query grid from the config, and refuses what does not fit', () => {
    const l = bevformerLayout(config());
    expect(l.levelShapes).toEqual([[8, 22], [4, 11]]);
    expect(l.cells).toEqual([16, 16]);
    expect(bevformerFeatures(config()).pre_head).toMatchObject({ kind: 'bev', channels: 16, grid: { cells: [16, 16] } });
    expect(() => config({ encoder: { ...TINY.encoder, crossPoints: 6 } })).toThrow(/crossPoints/);
    expect(() => config({ encoder: { ...TINY.encoder, heads: 3 } })).toThrow(/a divisor of encoder\.embedDims 16, found 3/);
    expect(() => config({ data: { imageSize: [60, 176], withPrev: true } })).toThrow(/divisible by the stride 8 of FPN level 0, found \[60, 176\]/);
    expect(() => config({ data: { imageSize: [64, 176], withPrev: false } })).toThrow(/true with temporal\.frames 2/);
  });

  it('each camera sees the queries in front of it: every query near the ego is seen, averaged over its cameras', () => {
    const c = config();
    const batch = rigBatch(c.data.imageSize, [sampleBoxes(1)]);
    const hits = cameraHits(batch, 6, bevformerLayout(c), c);
    const Q = 16 * 16;
    // The rig's six 70° cameras cover the full circle: nearly every query is seen (not all of the cells beside the
    // ego, below the images' vertical field of view), by one or two cameras.
    expect(Math.max(...hits.count)).toBeLessThanOrEqual(2);
    const seen = new Map<number, number>();
    for (const i of hits.index) if (i >= 0) seen.set(i, (seen.get(i) ?? 0) + 1);
    expect(seen.size).toBeGreaterThan(0.95 * Q);
    for (let q = 0; q < Q; q++) if (!seen.has(q)) expect(hits.count[q]).toBe(1); // averaged over max(1, cameras)
    for (const [q, n] of seen) expect(n, `query ${q}`).toBe(hits.count[q]);
    // Reference points of seen queries: some height inside the image.
    const Z = c.bev.pillarPoints;
    for (let j = 0; j < hits.index.length; j++) {
      if (hits.index[j]! < 0) continue;
      const r = hits.ref.subarray(j * Z * 2, (j + 1) * Z * 2);
      expect(Array.from({ length: Z }, (_, z) => r[2 * z]! > 0 && r[2 * z]! < 1 && r[2 * z + 1]! > 0 && r[2 * z + 1]! < 1).some(Boolean)).toBe(true);
    }
  });

  it('reads the previous frame and its ego motion; needs it with temporal.frames 2', () => {
    const m = new BEVFormerDetector(config(), { rng: createRng(1) });
    const base = rigBatch(m.layout.imageSize, [sampleBoxes(1), sampleBoxes(2)]);
    expect(() => m.forward(base, { training: false })).toThrow(LSSInputError);
    const heat = (b: typeof base) => tf.tidy(() => tf.clone(m.forward(b, { training: false }).features.heatmap!));
    const a = heat(withPrevFrame(base, 1)), again = heat(withPrevFrame(base, 1)), other = heat(withPrevFrame(base, 2));
    const moved = heat(withPrevFrame(base, 1, [1, 0, 0, -6.4, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]));
    const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]!);
    expect(a.shape).toEqual([2, 16, 16, 10]);
    expect(diff(a, again)).toBe(0);
    expect(diff(a, other)).toBeGreaterThan(1e-5);
    expect(diff(a, moved)).toBeGreaterThan(1e-5);
    tf.dispose([a, again, other, moved]);
    m.dispose();
  });
});
