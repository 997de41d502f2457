import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { PillarFeatureNet, PointPillarsScatter, collatePillars, maxOverPoints, pillarGridSize, voxelizePoints, type PillarGrid } from './pillars.js';
import { ShapeError } from '../errors.js';
import { shuffleOrder, shufflePoints } from '../detectors/pillar-centerpoint.js';
import { gradCheck, leakDelta, lossOf, maxAbsDiff, randn, roundTripDiff, useCpu } from '../testutil.js';

beforeAll(useCpu);
const rng = createRng(21);

const grid: PillarGrid = { pillarSize: [1, 1, 8], range: [0, 0, -5, 4, 3, 3] }; // nx 4, ny 3
// prettier-ignore
const points = new Float32Array([
  0.5, 0.5, 0, 1, 0,     // p0 → cell (x0, y0)
  2.2, 1.7, 1, 2, 0.1,   // p1 → (x2, y1)
  0.9, 0.1, 2, 3, 0,     // p2 → (x0, y0)
  5, 0, 0, 4, 0,         // p3 x out of range
  0.2, 0.3, 0, 5, 0,     // p4 → (x0, y0), third point
  3.5, 2.5, 0, 6, 0.2,   // p5 → (x3, y2), third pillar
  2.9, 1.1, -1, 7, 0,    // p6 → (x2, y1)
  1, 1, 4, 8, 0,         // p7 z out of range
  NaN, 1, 1, 9, 0,       // p8 not a number
]);

describe('voxelizePoints', () => {
  it('assigns pillars in order of appearance and enforces range and limits', () => {
    expect(pillarGridSize({ pillarSize: [0.2, 0.2, 8], range: [-51.2, -51.2, -5, 51.2, 51.2, 3] })).toEqual([512, 512, 1]);
    const v = voxelizePoints(points, { ...grid, maxPointsPerPillar: 2, maxPillars: 2 });
    expect(v.gridSize).toEqual([4, 3]);
    expect(v.numPillars).toBe(2);
    expect(Array.from(v.numPoints)).toEqual([2, 2]);
    expect(Array.from(v.coords)).toEqual([0, 0, 1, 2]); // (y, x) per pillar
    expect(Array.from(v.pointPillar)).toEqual([0, 1, 0, -1, -1, -1, 1, -1, -1]);
    expect(Array.from(v.pointSlot)).toEqual([0, 0, 1, -1, -1, -1, 1, -1, -1]);
    expect(Array.from(v.features.slice(0, 10))).toEqual(Array.from(points.slice(0, 5)).concat(Array.from(points.slice(10, 15))));
    const w = voxelizePoints(points, { ...grid, maxPointsPerPillar: 4, maxPillars: 10 });
    expect(w.numPillars).toBe(3);
    expect(Array.from(w.numPoints)).toEqual([3, 2, 1]);
    expect(w.features.length).toBe(3 * 4 * 5);
    expect(() => voxelizePoints(new Float32Array(7), { ...grid, maxPointsPerPillar: 2, maxPillars: 2 })).toThrow(ShapeError);
  });

  it('reads the points in a given order as it reads them reordered (shuffleOrder = shufflePoints without the copy)', () => {
    const rng = createRng(4);
    const cloud = Float32Array.from({ length: 600 * 5 }, (_, i) => (i % 5 === 0 ? rng.uniform(-0.5, 4.5) : i % 5 === 1 ? rng.uniform(-0.5, 3.5) : rng.uniform(-1, 1)));
    const opts = { ...grid, maxPointsPerPillar: 3, maxPillars: 5 };
    const order = shuffleOrder(600, createRng(9));
    const want = voxelizePoints(shufflePoints(cloud, 5, createRng(9)), opts);
    expect(voxelizePoints(cloud, { ...opts, order })).toEqual(want);
    expect(want.numPillars).toBe(5);
    expect(() => voxelizePoints(cloud, { ...opts, order: order.subarray(1) })).toThrow(ShapeError);
  });

  it('collates samples with batch indices', () => {
    const a = voxelizePoints(points, { ...grid, maxPointsPerPillar: 2, maxPillars: 2 });
    const b = voxelizePoints(points.slice(25, 30), { ...grid, maxPointsPerPillar: 2, maxPillars: 2 });
    const batch = collatePillars([a, b]);
    expect(batch.batchSize).toBe(2);
    expect(batch.numPillars).toBe(3);
    expect(Array.from(batch.coords)).toEqual([0, 0, 0, 0, 1, 2, 1, 2, 3]);
    expect(batch.features.length).toBe(3 * 2 * 5);
    const c = voxelizePoints(points, { ...grid, maxPointsPerPillar: 3, maxPillars: 2 });
    expect(() => collatePillars([a, c])).toThrow(/maxPoints 2/);
  });
});

describe('PillarFeatureNet', () => {
  it('decorates points with offsets to the pillar mean and centre, zeroing padded slots', () => {
    const pfn = new PillarFeatureNet({ ...grid, rng });
    const batch = collatePillars([voxelizePoints(points, { ...grid, maxPointsPerPillar: 2, maxPillars: 3 })]);
    const d = pfn.decorate(batch);
    expect(d.shape).toEqual([3, 2, 10]);
    const a = d.arraySync();
    const close = (got: number[], want: number[]) => want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 5));
    // pillar 0 = p0, p2: mean (0.7, 0.3, 1), centre (0.5, 0.5)
    close(a[0]![0]!, [0.5, 0.5, 0, 1, 0, -0.2, 0.2, -1, 0, 0]);
    close(a[0]![1]!, [0.9, 0.1, 2, 3, 0, 0.2, -0.2, 1, 0.4, -0.4]);
    // pillar 1 = p1, p6: mean (2.55, 1.4, 0), centre (2.5, 1.5)
    close(a[1]![0]!, [2.2, 1.7, 1, 2, 0.1, -0.35, 0.3, 1, -0.3, 0.2]);
    // pillar 2 = p5 alone: offsets 0, padded slot all zeros
    close(a[2]![0]!, [3.5, 2.5, 0, 6, 0.2, 0, 0, 0, 0, 0]);
    expect(a[2]![1]!.every((v) => v === 0)).toBe(true);
    d.dispose();
    pfn.dispose();
  });

  it('the max over points sends its gradient to one of tied elements (PyTorch max(dim)), not to all', () => {
    const x = tf.tensor3d([2, 5, 2, 1, 0, 5], [1, 3, 2]); // channel 0: 2, 2, 0 (tie); channel 1: 5, 1, 5 (tie)
    const g = tf.grad((t: tf.Tensor) => tf.sum(maxOverPoints(t as tf.Tensor3D)))(x);
    expect(Array.from(g.dataSync())).toEqual([1, 1, 0, 0, 0, 0]);
    const m = maxOverPoints(x);
    expect(Array.from(m.dataSync())).toEqual([2, 5]);
    tf.dispose([x, g, m]);
  });

  it('PFN layers 10 → 32 ⊕ max → 64 → 64, max; mmdet3d names; gradients', () => {
    const pfn = new PillarFeatureNet({ ...grid, rng });
    expect(pfn.namedParameters().map(([n, v]) => `${n} ${v.shape}`)).toEqual([
      'pfn_layers.0.linear.weight 10,32', 'pfn_layers.0.norm.weight 32', 'pfn_layers.0.norm.bias 32',
      'pfn_layers.1.linear.weight 64,64', 'pfn_layers.1.norm.weight 64', 'pfn_layers.1.norm.bias 64',
    ]);
    expect(pfn.outChannels).toBe(64);
    const batch = collatePillars([voxelizePoints(points, { ...grid, maxPointsPerPillar: 3, maxPillars: 3 })]);
    const y = pfn.forward(batch);
    expect(y.shape).toEqual([3, 64]);
    gradCheck(() => lossOf(pfn.forward(batch)), pfn.parameters(), { samples: 4 });
    expect(roundTripDiff((s) => new PillarFeatureNet({ ...grid, featChannels: [8, 8], rng: createRng(s) }), (m) => m.forward(batch))).toBe(0);
    const empty = collatePillars([voxelizePoints(new Float32Array(0), { ...grid, maxPointsPerPillar: 3, maxPillars: 3 })]);
    const e = pfn.forward(empty);
    expect(e.shape).toEqual([0, 64]);
    tf.dispose([y, e]);
    pfn.dispose();
  });
});

describe('PointPillarsScatter', () => {
  it('places each pillar feature in its (batch, y, x) cell; gradient gathers back', () => {
    const a = voxelizePoints(points, { ...grid, maxPointsPerPillar: 2, maxPillars: 3 });
    const b = voxelizePoints(points.slice(5, 10), { ...grid, maxPointsPerPillar: 2, maxPillars: 3 });
    const batch = collatePillars([a, b]); // pillars: (0,y0,x0) (0,y1,x2) (0,y2,x3) (1,y1,x2)
    const scatter = new PointPillarsScatter(a.gridSize);
    const feats = tf.variable(randn([4, 3], rng));
    const canvas = scatter.forward(feats, batch);
    expect(canvas.shape).toEqual([2, 3, 4, 3]);
    const c = canvas.arraySync(), f = feats.arraySync() as number[][];
    expect(c[0]![0]![0]).toEqual(f[0]);
    expect(c[0]![1]![2]).toEqual(f[1]);
    expect(c[0]![2]![3]).toEqual(f[2]);
    expect(c[1]![1]![2]).toEqual(f[3]);
    const nonzero = tf.tidy(() => tf.sum(tf.cast(tf.notEqual(tf.sum(tf.abs(canvas), -1), 0), 'int32')).dataSync()[0]);
    expect(nonzero).toBe(4);
    const r = randn([2, 3, 4, 3], rng);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(scatter.forward(x, batch), r)))(feats);
    const want = tf.tidy(() => tf.reshape(tf.stack([tf.slice(r, [0, 0, 0, 0], [1, 1, 1, 3]), tf.slice(r, [0, 1, 2, 0], [1, 1, 1, 3]), tf.slice(r, [0, 2, 3, 0], [1, 1, 1, 3]), tf.slice(r, [1, 1, 2, 0], [1, 1, 1, 3])]), [4, 3]));
    expect(maxAbsDiff(g, want)).toBe(0);
    expect(() => new PointPillarsScatter([2, 2]).forward(feats, batch)).toThrow(/coords within batch 2 × grid 2×2/);
    tf.dispose([feats, canvas, r, g, want]);
  });

  it('PFN + scatter: a training step leaks nothing', () => {
    const pfn = new PillarFeatureNet({ ...grid, featChannels: [8, 8], rng });
    const batch = collatePillars([voxelizePoints(points, { ...grid, maxPointsPerPillar: 2, maxPillars: 3 }), voxelizePoints(points.slice(10), { ...grid, maxPointsPerPillar: 2, maxPillars: 3 })]);
    const scatter = new PointPillarsScatter(batch.gridSize);
    expect(leakDelta(pfn.parameters(), () => scatter.forward(pfn.forward(batch), batch))).toBe(0);
    pfn.dispose();
  });
});
