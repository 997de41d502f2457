import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, mat3Inverse, mat3MulVec, type GridSpec, type Mat3 } from '@bevzoo/core';
import { gradCheck, useCpu } from '../testutil.js';
import { ShapeError } from '../errors.js';
import { lidarRays, raySampling, renderOcc, samplePlan, sampleVolume, voxelEdge, type Rays } from './index.js';

beforeAll(useCpu);

/** A tiny grid: 4 × 3 × 2 voxels of 1 × 1 × 0.5 m over x ∈ [0, 4], y ∈ [−1.5, 1.5], z ∈ [0, 1]. */
const grid: GridSpec = { cells: [4, 3, 2], cellSize: [1, 1, 0.5], range: [0, -1.5, 0, 4, 1.5, 1] };
const [GX, GY, GZ] = [4, 3, 2];
const K = 4; // 3 semantic classes + free

function volumeData(B: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: B * GX * GY * GZ * K }, () => rng.normal(0, 1.5));
}

/** Slow reference: trilinear between voxel centres (border-clamped) inside the range, volume rendering in float64. */
function referenceRender(vol: Float32Array, rays: Rays, delta: number, N: number, offsets: Float32Array) {
  const lo = grid.range.slice(0, 3), hi = grid.range.slice(3), size = grid.cellSize, n = [GX, GY, GZ];
  const at = (b: number, x: number, y: number, z: number, c: number) => vol[((((b * GX + x) * GY + y) * GZ + z) * K) + c]!;
  const sample = (b: number, p: number[]): number[] | null => {
    for (let a = 0; a < 3; a++) if (!(p[a]! >= lo[a]! && p[a]! < hi[a]!)) return null;
    const out = new Array<number>(K).fill(0);
    // weight of voxel i along axis a: hat function around its centre, after clamping the continuous index
    const f = [0, 1, 2].map((a) => Math.min(Math.max((p[a]! - lo[a]!) / size[a]! - 0.5, 0), n[a]! - 1));
    for (let x = 0; x < GX; x++) for (let y = 0; y < GY; y++) for (let z = 0; z < GZ; z++) {
      const w = Math.max(0, 1 - Math.abs(f[0]! - x)) * Math.max(0, 1 - Math.abs(f[1]! - y)) * Math.max(0, 1 - Math.abs(f[2]! - z));
      if (w > 0) for (let c = 0; c < K; c++) out[c]! += w * at(b, x, y, z, c);
    }
    return out;
  };
  const res = { weights: [] as number[][], depth: [] as number[], semantics: [] as number[][] };
  for (let r = 0; r < rays.count; r++) {
    let T = 1, D = 0;
    const S = new Array<number>(K - 1).fill(0), W: number[] = [];
    for (let k = 0; k < N; k++) {
      const t = delta * (k + offsets[r]!);
      const p = [0, 1, 2].map((a) => rays.origin[r * 3 + a]! + rays.direction[r * 3 + a]! * t);
      const s = sample(rays.sample[r]!, p);
      const sigma = s ? Math.log1p(Math.exp(-s[K - 1]!)) : 0;
      const alpha = s ? 1 - Math.exp(-sigma * delta) : 0;
      const w = alpha * T;
      W.push(w);
      D += w * t;
      if (s) for (let c = 0; c < K - 1; c++) S[c]! += w * s[c]!;
      T *= 1 - alpha;
    }
    res.weights.push(W);
    res.depth.push(D);
    res.semantics.push(S);
  }
  return res;
}

/** Hand-made rays across the tiny grid (some leave it, one misses it), two samples. */
function testRays(): Rays {
  const o = [[-0.5, 0.2, 0.7], [0.3, -1.2, 0.1], [3.9, 1.4, 0.9], [-1, 0, 0.5], [0.1, 0.1, 2]];
  const d = [[1, 0.1, -0.05], [0.8, 0.6, 0.1], [-1, -0.5, -0.2], [1, 0.7, 0], [1, 0, 0]];
  const R = o.length;
  return {
    count: R, origin: Float32Array.from(o.flat()), direction: Float32Array.from(d.flat()), sample: Int32Array.from([0, 1, 0, 1, 0]),
    camera: new Int32Array(R), pixel: new Int32Array(R), depth: new Float32Array(R).fill(1), candidates: R,
  };
}

describe('volume rendering of occupancy logits', () => {
  it('matches a slow float64 reference (weights, depth, semantics), jittered or not', () => {
    const B = 2, vol = volumeData(B, 3), rays = testRays();
    for (const jitter of [null, createRng(5)]) {
      const sampling = raySampling([grid], rays.count, { stepSize: 0.5, jitter });
      expect(sampling.delta).toBeCloseTo(0.5 * Math.cbrt(0.5), 12);
      const plan = samplePlan(rays, sampling, grid, B);
      const logits = tf.tensor5d(vol, [B, GX, GY, GZ, K]);
      const out = renderOcc(logits, plan);
      const ref = referenceRender(vol, rays, sampling.delta, sampling.count, sampling.offsets);
      const w = out.weights.arraySync(), d = out.depth.arraySync(), s = out.semantics.arraySync();
      expect(out.weights.shape).toEqual([rays.count, sampling.count]);
      for (let r = 0; r < rays.count; r++) {
        for (let k = 0; k < sampling.count; k++) expect(w[r]![k]!).toBeCloseTo(ref.weights[r]![k]!, 5);
        expect(d[r]!).toBeCloseTo(ref.depth[r]!, 4);
        for (let c = 0; c < K - 1; c++) expect(s[r]![c]!).toBeCloseTo(ref.semantics[r]![c]!, 4);
      }
      // the ray above the grid (z = 2) renders nothing
      expect(d[4]).toBe(0);
      expect(Math.max(...w[0]!)).toBeGreaterThan(0);
      tf.dispose([logits, out.weights, out.depth, out.semantics]);
    }
  });

  it('samples at voxel centres return the voxel; N covers the half diagonal plus a voxel (Occ3D: 287 samples of 0.2 m)', () => {
    const occ3d: GridSpec = { cells: [200, 200, 16], cellSize: [0.4, 0.4, 0.4], range: [-40, -40, -1, 40, 40, 5.4] };
    const s = raySampling([occ3d], 3);
    expect(s.delta).toBeCloseTo(0.2, 12);
    expect(s.count).toBe(287);
    expect(voxelEdge({ cells: [100, 100, 16], cellSize: [0.8, 0.8, 0.4], range: occ3d.range })).toBeCloseTo(Math.cbrt(0.256), 12);
    // the finer grid sets δ, the larger extent sets N
    const two = raySampling([occ3d, { cells: [100, 100, 16], cellSize: [0.8, 0.8, 0.4], range: occ3d.range }], 1);
    expect(two.delta).toBeCloseTo(0.2, 12);
    const vol = volumeData(1, 9);
    const ray: Rays = { count: 1, origin: Float32Array.of(1.5, 0, 0.25), direction: Float32Array.of(0, 0, 1), sample: Int32Array.of(0), camera: Int32Array.of(0), pixel: Int32Array.of(0), depth: Float32Array.of(1), candidates: 1 };
    const plan = samplePlan(ray, { delta: 0.5, count: 2, offsets: new Float32Array(1) }, grid, 1);
    const v = tf.tensor2d(vol, [GX * GY * GZ, K]);
    const got = sampleVolume(v, plan).arraySync();
    for (const [k, z] of [[0, 0], [1, 1]] as const) for (let c = 0; c < K; c++) expect(got[k]![c]).toBeCloseTo(vol[((1 * GY + 1) * GZ + z) * K + c]!, 6);
    tf.dispose(v);
  });

  it('gradients match finite differences on a tiny volume (through w, D and S), at every voxel and class', () => {
    const B = 2, rays = testRays();
    const sampling = raySampling([grid], rays.count, { stepSize: 0.5, jitter: createRng(8) });
    const plan = samplePlan(rays, sampling, grid, B);
    const v = tf.variable(tf.tensor5d(volumeData(B, 4), [B, GX, GY, GZ, K]));
    const rng = createRng(2);
    const rw = tf.tensor2d(Float32Array.from({ length: rays.count * sampling.count }, () => rng.normal()), [rays.count, sampling.count]);
    const rs = tf.tensor2d(Float32Array.from({ length: rays.count * (K - 1) }, () => rng.normal()), [rays.count, K - 1]);
    const loss = () => tf.tidy(() => {
      const o = renderOcc(v, plan);
      return tf.addN([tf.sum(tf.mul(o.weights, rw)), tf.mul(tf.sum(o.depth), 0.3), tf.sum(tf.mul(o.semantics, rs))]) as tf.Scalar;
    });
    // every element of the volume (B·X·Y·Z·K = 192), the free logits (density) and the semantic ones
    const r = gradCheck(loss, [v], { eps: 1e-2, atol: 2e-3, rtol: 3e-2, samples: 1000 });
    expect(r.checked).toBe(B * GX * GY * GZ * K);
    const g = tf.variableGrads(loss, [v]);
    const nonzero = Array.from(g.grads[v.name]!.dataSync()).filter((x) => Math.abs(x) > 1e-6).length;
    tf.dispose([g.value, ...Object.values(g.grads)]);
    expect(nonzero).toBeGreaterThan(100);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(loss, [v]);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([v, rw, rs]);
  });

  it('shape errors name the argument', () => {
    const rays = testRays();
    const plan = samplePlan(rays, raySampling([grid], rays.count), grid, 2);
    const bad = tf.zeros([1, GX, GY, GZ, K]);
    expect(() => renderOcc(bad, plan)).toThrow(ShapeError);
    expect(() => renderOcc(bad, plan)).toThrow(/renderOcc: logits: expected \[2, 4, 3, 2, K ≥ 2\]/);
    expect(() => samplePlan(rays, raySampling([grid], 2), grid, 2)).toThrow(/samplePlan: sampling.offsets/);
    bad.dispose();
  });
});

describe('rays from projected LiDAR', () => {
  const [H, W] = [20, 30];
  const K0: Mat3 = [25, 0, 14.5, 0, 25, 9.5, 0, 0, 1];
  // camera x right, y down, z forward → ego x forward, y left, z up; camera at (1, 0.5, 1.6)
  const s2e = [0, 0, 1, 1, -1, 0, 0, 0.5, 0, -1, 0, 1.6, 0, 0, 0, 1];
  // image augmentation: scale 1.1, shift, horizontal flip; bda: flip x
  const post: Mat3 = [-1.1, 0, 30, 0, 1.1, -1.5, 0, 0, 1];
  const bda: Mat3 = [-1, 0, 0, 0, 1, 0, 0, 0, 1];
  const geom = { intrinsics: Float32Array.from(K0), sensor2ego: Float32Array.from(s2e), postAug: Float32Array.from(post), bda: Float32Array.from(bda) };

  /** The ego point (after bda) seen at the centre of augmented pixel (u, v) at camera depth d. */
  function pointAt(u: number, v: number, d: number): [number, number, number] {
    const [u0, v0] = mat3MulVec(mat3Inverse(post), [u, v, 1]);
    const c = mat3MulVec(mat3Inverse(K0), [u0 * d, v0 * d, d]);
    const e = [0, 1, 2].map((i) => s2e[i * 4]! * c[0] + s2e[i * 4 + 1]! * c[1] + s2e[i * 4 + 2]! * c[2] + s2e[i * 4 + 3]!);
    return mat3MulVec(bda, e as [number, number, number]);
  }

  it('a ray through the pixel of a point reaches it at t = its camera depth (postAug undone, bda applied); nearest point per pixel, depth range', () => {
    const pts: number[] = [];
    const add = (p: number[], dt = 0) => pts.push(p[0]!, p[1]!, p[2]!, 1, dt);
    add(pointAt(7, 4, 10));
    add(pointAt(7, 4, 12)); // behind the first in the same pixel
    add(pointAt(20, 15, 3.5));
    add(pointAt(21, 15, 50)); // beyond 45 m
    add(pointAt(22, 15, 0.5)); // nearer than 1 m
    add(pointAt(3, 3, 5), 0.05); // a sweep point
    const rays = lidarRays([Float32Array.from(pts)], geom, { imageSize: [H, W], numCameras: 1 });
    expect(rays.count).toBe(2);
    expect(Array.from(rays.pixel)).toEqual([4 * W + 7, 15 * W + 20]);
    expect(rays.depth[0]).toBeCloseTo(10, 4);
    for (const [r, [u, v, d]] of [[0, [7, 4, 10]], [1, [20, 15, 3.5]]] as const) {
      const target = pointAt(u, v, d);
      for (let i = 0; i < 3; i++) expect(rays.origin[r * 3 + i]! + rays.direction[r * 3 + i]! * d).toBeCloseTo(target[i]!, 3);
      expect(rays.origin[r * 3]).toBeCloseTo(-1, 5); // bda flips the camera centre's x
    }
  });

  it('the ray budget draws a seeded subset, in order', () => {
    const pts: number[] = [];
    for (let u = 0; u < W; u += 2) for (let v = 0; v < H; v += 3) pts.push(...pointAt(u, v, 5 + u * 0.1), 1, 0);
    const all = lidarRays([Float32Array.from(pts)], geom, { imageSize: [H, W], numCameras: 1 });
    const a = lidarRays([Float32Array.from(pts)], geom, { imageSize: [H, W], numCameras: 1, budget: 10, rng: createRng(3) });
    const b = lidarRays([Float32Array.from(pts)], geom, { imageSize: [H, W], numCameras: 1, budget: 10, rng: createRng(3) });
    const c = lidarRays([Float32Array.from(pts)], geom, { imageSize: [H, W], numCameras: 1, budget: 10, rng: createRng(4) });
    expect(all.count).toBe(all.candidates);
    expect(a.count).toBe(10);
    expect(a.candidates).toBe(all.count);
    expect(Array.from(a.pixel)).toEqual(Array.from(b.pixel));
    expect(Array.from(a.pixel)).not.toEqual(Array.from(c.pixel));
    expect([...a.pixel].every((p, i) => i === 0 || p > a.pixel[i - 1]!)).toBe(true);
    expect([...a.pixel].every((p) => all.pixel.includes(p))).toBe(true);
    expect(() => lidarRays([Float32Array.from(pts)], geom, { imageSize: [H, W], numCameras: 1, budget: 10 })).toThrow(/lidarRays: rng/);
  });
});
