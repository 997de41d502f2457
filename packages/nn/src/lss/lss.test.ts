import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gradCheck, leakDelta, randn, useCpu } from '../testutil.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { createFrustum, depthBinCount, frustumToEgo, type CameraGeometry } from './frustum.js';
import { bevPool, BevPoolPlanCache, buildBevPoolPlan, gridCells, type BevPoolGrid } from './bevpool.js';
import { LSSViewTransform } from './view-transform.js';
import { BilinearUpsample, CustomResNet, FPNLSS } from './bev-encoder.js';
import { resize2d } from '../layers/interpolate.js';
import { FPNForBEVDet } from './img-neck.js';
import { depthLabels, depthLoss } from './depth.js';

beforeAll(useCpu);

type M3 = number[];
const mul3 = (a: M3, b: M3): M3 => Array.from({ length: 9 }, (_, k) => a[Math.floor(k / 3) * 3]! * b[k % 3]! + a[Math.floor(k / 3) * 3 + 1]! * b[3 + (k % 3)]! + a[Math.floor(k / 3) * 3 + 2]! * b[6 + (k % 3)]!);
const rotZ = (a: number): M3 => [Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1];
/** Camera axes (x right, y down, z forward) in ego axes (x forward, y left, z up) for a camera looking along +x. */
const CAM_TO_EGO_FRONT: M3 = [0, 0, 1, -1, 0, 0, 0, -1, 0];
const mat4 = (R: M3, t: number[]): number[] => [R[0]!, R[1]!, R[2]!, t[0]!, R[3]!, R[4]!, R[5]!, t[1]!, R[6]!, R[7]!, R[8]!, t[2]!, 0, 0, 0, 1];

/** A camera at height 1.6 m, 1.5 m ahead of the ego origin, turned by `yaw` about +z. */
function camera(yaw: number, f = 120, cx = 88, cy = 31.5) {
  return { K: [f, 0, cx, 0, f, cy, 0, 0, 1], E: mat4(mul3(rotZ(yaw), CAM_TO_EGO_FRONT), [1.5 * Math.cos(yaw), 1.5 * Math.sin(yaw), 1.6]) };
}

function geometry(cams: { K: number[]; E: number[] }[], B: number, postAug?: number[][], bda?: number[][]): CameraGeometry {
  const N = cams.length;
  const g: CameraGeometry = { intrinsics: new Float32Array(B * N * 9), sensor2ego: new Float32Array(B * N * 16) };
  for (let b = 0; b < B; b++) cams.forEach((c, n) => {
    (g.intrinsics as Float32Array).set(c.K, (b * N + n) * 9);
    (g.sensor2ego as Float32Array).set(c.E, (b * N + n) * 16);
  });
  if (postAug) g.postAug = Float32Array.from(Array.from({ length: B * N }, (_, k) => postAug[k % postAug.length]!).flat());
  if (bda) g.bda = Float32Array.from(bda.flat());
  return g;
}

/** Hand computation: un-augmented pixel (u, v) at depth d through camera (K, E) then bda. */
function egoOf(u: number, v: number, d: number, K: number[], E: number[], bda: M3 = [1, 0, 0, 0, 1, 0, 0, 0, 1]): number[] {
  const c = [((u - K[2]!) / K[0]!) * d, ((v - K[5]!) / K[4]!) * d, d];
  const e = [0, 1, 2].map((i) => E[i * 4]! * c[0]! + E[i * 4 + 1]! * c[1]! + E[i * 4 + 2]! * c[2]! + E[i * 4 + 3]!);
  return [0, 1, 2].map((i) => bda[i * 3]! * e[0]! + bda[i * 3 + 1]! * e[1]! + bda[i * 3 + 2]! * e[2]!);
}

describe('frustum', () => {
  it('places points at feature-cell centres (or BEVDet linspace) for every depth bin', () => {
    expect(depthBinCount([1, 60, 1])).toBe(59);
    expect(depthBinCount([2, 58, 0.5])).toBe(112);
    expect(() => depthBinCount([5, 1, 1])).toThrow(ConfigurationError);
    const f = createFrustum({ imageSize: [64, 176], featureStride: 16, depthBins: [1, 60, 1] });
    expect([f.fH, f.fW, f.D]).toEqual([4, 11, 59]);
    const at = (y: number, x: number, d: number) => Array.from(f.points.subarray(((y * f.fW + x) * f.D + d) * 3, ((y * f.fW + x) * f.D + d) * 3 + 3));
    expect(at(0, 0, 0)).toEqual([7.5, 7.5, 1]);
    expect(at(1, 5, 9)).toEqual([87.5, 23.5, 10]);
    expect(at(3, 10, 58)).toEqual([167.5, 55.5, 59]);
    const l = createFrustum({ imageSize: [64, 176], featureStride: 16, depthBins: [1, 60, 1], pixelMode: 'linspace' });
    expect(Array.from(l.us)).toEqual(Array.from({ length: 11 }, (_, i) => (i * 175) / 10));
    expect(Array.from(l.vs)).toEqual([0, 21, 42, 63]);
  });

  it('maps a known pixel and depth to the ego point of a hand-made camera', () => {
    const f = createFrustum({ imageSize: [64, 176], featureStride: 16, depthBins: [1, 60, 1] });
    const front = camera(0), left = camera(Math.PI / 2);
    const ego = frustumToEgo(f, geometry([front, left], 1), 2);
    const P = f.fH * f.fW * f.D;
    const pt = (cam: number, y: number, x: number, d: number) => Array.from(ego.subarray((cam * P + (y * f.fW + x) * f.D + d) * 3, (cam * P + (y * f.fW + x) * f.D + d) * 3 + 3));
    // Front camera, pixel (87.5, 23.5), 10 m: 10 m ahead of the camera, 0.5·10/120 m to the left, 8·10/120 m up.
    const p = pt(0, 1, 5, 9);
    [11.5, 0.5 * 10 / 120, 1.6 + (8 * 10) / 120].forEach((v, i) => expect(p[i]).toBeCloseTo(v, 4));
    // Left camera (looking along +y): forward is +y, right is −x.
    const q = pt(1, 1, 5, 9);
    [-(0.5 * 10) / 120, 1.5 + 10, 1.6 + (8 * 10) / 120].forEach((v, i) => expect(q[i]).toBeCloseTo(v, 4));
  });

  it('undoes image augmentation (resize, crop, flip, rotation) and applies bda', () => {
    const [H, W] = [64, 176];
    const f = createFrustum({ imageSize: [H, W], featureStride: 16, depthBins: [1, 60, 1] });
    const cam = camera(0.3);
    // resize 1.1 about pixel centres, crop (5, 3), flip, then rotate 4° about the image centre.
    const s = 1.1, cropX = 5, cropY = 3;
    const resizeCrop: M3 = [s, 0, 0.5 * s - 0.5 - cropX, 0, s, 0.5 * s - 0.5 - cropY, 0, 0, 1];
    const flip: M3 = [-1, 0, W - 1, 0, 1, 0, 0, 0, 1];
    const a = (4 / 180) * Math.PI, c = Math.cos(a), sn = Math.sin(a), ox = (W - 1) / 2, oy = (H - 1) / 2;
    const rot: M3 = [c, -sn, ox - c * ox + sn * oy, sn, c, oy - sn * ox - c * oy, 0, 0, 1];
    const postAug = mul3(rot, mul3(flip, resizeCrop));
    const bda = mul3([-1, 0, 0, 0, 1, 0, 0, 0, 1], mul3([1.05, 0, 0, 0, 1.05, 0, 0, 0, 1.05], rotZ(0.2)));
    const ego = frustumToEgo(f, geometry([cam], 1, [postAug], [bda]), 1);
    for (const [y, x, d] of [[1, 5, 9], [0, 0, 0], [3, 10, 40], [2, 7, 20]] as const) {
      const i = (y * f.fW + x) * f.D + d;
      // The augmented pixel (ua, va) came from the original pixel (u, v): invert rotation, flip, resize/crop by hand.
      const ua = f.us[x]!, va = f.vs[y]!;
      const ur = c * (ua - ox) + sn * (va - oy) + ox, vr = -sn * (ua - ox) + c * (va - oy) + oy;
      const uf = W - 1 - ur;
      const u = (uf - (0.5 * s - 0.5 - cropX)) / s, v = (vr - (0.5 * s - 0.5 - cropY)) / s;
      const want = egoOf(u, v, f.depths[d]!, cam.K, cam.E, bda);
      for (let k = 0; k < 3; k++) expect(ego[i * 3 + k]).toBeCloseTo(want[k]!, 3);
    }
  });

  it('rejects geometry arrays of inconsistent lengths', () => {
    const f = createFrustum({ imageSize: [32, 64], featureStride: 8, depthBins: [1, 5, 1] });
    const g = geometry([camera(0)], 2);
    expect(() => frustumToEgo(f, { ...g, sensor2ego: new Float32Array(16) }, 1)).toThrow(ShapeError);
    expect(() => frustumToEgo(f, { ...g, bda: new Float32Array(9) }, 1)).toThrow(ShapeError);
  });
});

const GRID: BevPoolGrid = { xbound: [-16, 16, 1], ybound: [-16, 16, 1], zbound: [-3, 5, 8] };

/** Two samples × two cameras, with image augmentation and bda. */
function testGeometry(): CameraGeometry {
  const pa: M3 = [-1.05, 0, 63 + 0.6, 0, 1.05, -1.2, 0, 0, 1];
  return geometry([camera(0, 40, 32, 15.5), camera(2.2, 40, 32, 15.5)], 2, [[1, 0, 0, 0, 1, 0, 0, 0, 1], pa], [rotZ(0.3), [1, 0, 0, 0, -1, 0, 0, 0, 1]]);
}

/** The outer product of depth and context summed by the definition, from frustumToEgo's points. */
function naivePool(depth: Float32Array, context: Float32Array, C: number, ego: Float32Array, D: number, grid: BevPoolGrid, N: number, pixelsPerCam: number): Float32Array {
  const [X, Y, Z] = gridCells(grid);
  const B = ego.length / 3 / D / pixelsPerCam / N;
  const out = new Float32Array(B * X * Y * Z * C);
  for (let i = 0; i < ego.length / 3; i++) {
    const [x, y, z] = [ego[i * 3]!, ego[i * 3 + 1]!, ego[i * 3 + 2]!];
    const ix = Math.floor((x - grid.xbound[0]) / grid.xbound[2]), iy = Math.floor((y - grid.ybound[0]) / grid.ybound[2]), iz = Math.floor((z - grid.zbound[0]) / grid.zbound[2]);
    if (ix < 0 || ix >= X || iy < 0 || iy >= Y || iz < 0 || iz >= Z) continue;
    const pixel = Math.floor(i / D);
    const b = Math.floor(pixel / (N * pixelsPerCam));
    const cell = ((b * Z + iz) * Y + iy) * X + ix;
    for (let c = 0; c < C; c++) out[cell * C + c] += depth[i]! * context[pixel * C + c]!;
  }
  return out;
}

describe('depth supervision (BEVDepth)', () => {
  it('labels each feature cell with the bin of its nearest keyframe point, through image augmentation and bda', () => {
    const [H, W] = [64, 176];
    const f = createFrustum({ imageSize: [H, W], featureStride: 16, depthBins: [1, 60, 1] });
    const s = 1.1, cropX = 5, cropY = 3;
    const postAug: M3 = [-s, 0, W - 1 - (0.5 * s - 0.5 - cropX), 0, s, 0.5 * s - 0.5 - cropY, 0, 0, 1]; // resize, crop, flip
    const bda = mul3([-1, 0, 0, 0, 1, 0, 0, 0, 1], rotZ(0.2));
    const geom = geometry([camera(0.3), camera(2.0)], 2, [postAug], [bda, bda]);
    // Frustum points (cell, bin d, offset 0.3 of a bin so the bin is unambiguous) as LiDAR points of sample b.
    const pointAt = (k: number, y: number, x: number, d: number, dt = 0): number[] => {
      const ego2 = frustumToEgo({ ...f, points: Float32Array.from([f.us[x]!, f.vs[y]!, f.depths[d]! + 0.3]), fH: 1, fW: 1, D: 1 }, {
        intrinsics: (geom.intrinsics as Float32Array).slice(k * 9, k * 9 + 9), sensor2ego: (geom.sensor2ego as Float32Array).slice(k * 16, k * 16 + 16),
        postAug: (geom.postAug as Float32Array).slice(k * 9, k * 9 + 9), bda: (geom.bda as Float32Array).slice(Math.floor(k / 2) * 9, Math.floor(k / 2) * 9 + 9),
      }, 1);
      return [ego2[0]!, ego2[1]!, ego2[2]!, 0.5, dt];
    };
    const s0 = [...pointAt(0, 1, 5, 9), ...pointAt(0, 1, 5, 30), ...pointAt(0, 3, 10, 40), ...pointAt(1, 2, 2, 4, 0.05)];
    const s1 = [...pointAt(3, 0, 7, 20), ...pointAt(2, 2, 9, 58)];
    const labels = depthLabels([Float32Array.from(s0), Float32Array.from(s1)], geom, f, 2);
    expect(labels.length).toBe(4 * f.fH * f.fW);
    const at = (k: number, y: number, x: number) => labels[k * f.fH * f.fW + y * f.fW + x];
    expect(at(0, 1, 5)).toBe(9); // nearest of two points in the cell
    expect(at(0, 3, 10)).toBe(40);
    expect(at(1, 2, 2)).toBe(-1); // a sweep point (Δt ≠ 0) gives no label
    expect(at(3, 0, 7)).toBe(20);
    expect(at(2, 2, 9)).toBe(58);
    expect(Array.from(labels).filter((l) => l >= 0)).toHaveLength(4);
  });

  it('the loss is the binary cross-entropy against one-hot labels, averaged over labelled cells', () => {
    const p = [0.7, 0.2, 0.1, 0.1, 0.1, 0.8, 0.3, 0.3, 0.4];
    const depth = tf.tensor4d(p, [1, 1, 3, 3]);
    const bce = (q: number[], y: number) => -q.reduce((a, v, i) => a + (i === y ? Math.log(v) : Math.log(1 - v)), 0);
    const l = depthLoss(depth, Int32Array.from([0, 2, -1]));
    expect(l.dataSync()[0]).toBeCloseTo((bce(p.slice(0, 3), 0) + bce(p.slice(3, 6), 2)) / 2, 5);
    const none = depthLoss(depth, Int32Array.from([-1, -1, -1]));
    expect(none.dataSync()[0]).toBe(0);
    expect(() => depthLoss(depth, new Int32Array(2))).toThrow(ShapeError);
    tf.dispose([depth, l, none]);
  });
});

describe('BEVPool', () => {
  // 'host' is @bevzoo/engine's BevzooBevPool kernel: the engine registers its portable version for cpu (and the
  // native one for wasm, compared with it in the engine's native.test.ts).
  beforeAll(async () => {
    const { initEngine } = await import('@bevzoo/engine');
    await initEngine({ backend: 'cpu', log: () => {} });
  });
  const f = createFrustum({ imageSize: [32, 64], featureStride: 8, depthBins: [1, 20, 2] });
  const geom = testGeometry();
  const C = 3;

  it('the plan keeps exactly the frustum points inside the grid, with row = y and column = x', () => {
    const plan = buildBevPoolPlan(f, GRID, geom, 2);
    expect(plan.numPoints).toBe(2 * 2 * 4 * 8 * 10);
    expect(plan.numSegments).toBe(2 * 32 * 32);
    const ego = frustumToEgo(f, geom, 2);
    let kept = 0;
    for (let i = 0; i < plan.numPoints; i++) {
      const [x, y, z] = [ego[i * 3]!, ego[i * 3 + 1]!, ego[i * 3 + 2]!];
      if (x >= -16 && x < 16 && y >= -16 && y < 16 && z >= -3 && z < 5) kept++;
    }
    expect(plan.pointIndex.length).toBe(kept);
    expect(kept).toBeGreaterThan(50);
    expect(kept).toBeLessThan(plan.numPoints);
    for (let k = 0; k < plan.pointIndex.length; k += 17) {
      const i = plan.pointIndex[k]!;
      const s = plan.segmentIds[k]!;
      const b = Math.floor(s / 1024), row = Math.floor((s % 1024) / 32), col = s % 32;
      expect(b).toBe(Math.floor(i / (2 * 320)));
      expect(col).toBe(Math.floor(ego[i * 3]! + 16));
      expect(row).toBe(Math.floor(ego[i * 3 + 1]! + 16));
      expect(plan.pixelIndex[k]).toBe(Math.floor(i / 10));
    }
  });

  it('equals a naive JS sum of the outer product (host and tensor implementations)', async () => {
    const rng = createRng(3);
    const plan = buildBevPoolPlan(f, GRID, geom, 2);
    const depth = Float32Array.from({ length: plan.numPoints }, () => rng.uniform(0, 1));
    const context = Float32Array.from({ length: plan.numPixels * C }, () => rng.normal(0, 1));
    const want = naivePool(depth, context, C, frustumToEgo(f, geom, 2), f.D, GRID, 2, f.fH * f.fW);
    const dT = tf.tensor4d(depth, [4, 4, 8, 10]), cT = tf.tensor4d(context, [4, 4, 8, C]);
    for (const impl of ['host', 'tensor'] as const) {
      const kernels = (await tf.profile(() => tf.dispose(bevPool(dT, cT, plan, impl)))).kernels.map((k) => k.name);
      expect(kernels.includes('BevzooBevPool'), impl).toBe(impl === 'host');
      const out = bevPool(dT, cT, plan, impl);
      expect(out.shape).toEqual([2048, C]);
      const got = out.dataSync();
      let maxErr = 0;
      for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
      expect(maxErr, impl).toBeLessThan(1e-5);
      out.dispose();
    }
    expect(want.some((v) => v !== 0)).toBe(true);
    expect(() => bevPool(tf.zeros([3]), cT, plan)).toThrow(ShapeError);
    tf.dispose([dT, cT]);
  });

  it('has the same gradients in both implementations, and matches finite differences', () => {
    const plan = buildBevPoolPlan(f, GRID, geom, 2);
    const rng = createRng(5);
    const d = tf.variable(randn([4, 4, 8, 10], rng)), c = tf.variable(randn([4, 4, 8, C], rng));
    const R = randn([2048, C], rng);
    const grads = (impl: 'host' | 'tensor') => {
      const { grads: g, value } = tf.variableGrads(() => tf.sum(tf.mul(bevPool(tf.softmax(d), c, plan, impl), R)) as tf.Scalar, [d, c]);
      const out: [Float32Array, Float32Array, number] = [g[d.name]!.dataSync().slice() as Float32Array, g[c.name]!.dataSync().slice() as Float32Array, value.dataSync()[0]!];
      tf.dispose([value, ...Object.values(g)]);
      return out;
    };
    const h = grads('host'), t = grads('tensor');
    expect(h[2]).toBeCloseTo(t[2], 4);
    for (const k of [0, 1] as const) {
      let maxErr = 0;
      for (let i = 0; i < h[k].length; i++) maxErr = Math.max(maxErr, Math.abs(h[k][i]! - t[k][i]!));
      expect(maxErr).toBeLessThan(1e-5);
    }
    expect(Array.from(h[1]).some((v) => v !== 0)).toBe(true);
    const res = gradCheck(() => tf.sum(tf.mul(bevPool(tf.softmax(d), c, plan), R)) as tf.Scalar, [d, c], { samples: 12 });
    expect(res.checked).toBe(24);
    tf.dispose([d, c, R]);
  });

  it('caches plans by geometry values (copies hit, changes miss, least recently used evicted)', () => {
    const cache = new BevPoolPlanCache(2);
    const p1 = cache.get(f, GRID, geom, 2);
    const copy: CameraGeometry = { intrinsics: Array.from(geom.intrinsics), sensor2ego: Float32Array.from(geom.sensor2ego), postAug: Float64Array.from(geom.postAug!), bda: Float32Array.from(geom.bda!) };
    expect(cache.get(f, GRID, copy, 2)).toBe(p1);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
    const moved = { ...copy, bda: Float32Array.from(geom.bda!) };
    (moved.bda as Float32Array)[0] = 0.9;
    const p2 = cache.get(f, GRID, moved, 2);
    expect(p2).not.toBe(p1);
    expect(cache.get(f, { ...GRID, zbound: [-2, 5, 7] }, geom, 2)).not.toBe(p1); // grid is part of the key
    expect([cache.hits, cache.misses, cache.size]).toEqual([1, 3, 2]);
    expect(cache.get(f, GRID, geom, 2)).not.toBe(p1); // p1 was evicted (capacity 2)
    expect(cache.get(f, GRID, moved, 2)).not.toBe(p2); // so was p2 by now
    const again = cache.get(f, GRID, geom, 2);
    expect(cache.hits).toBe(2);
    expect(again.segmentIds).toEqual(p1.segmentIds);
  });
});

describe('LSSViewTransform', () => {
  it('puts a single hot context feature into the BEV cell of its frustum point', () => {
    const lss = new LSSViewTransform({ inChannels: 2, contextChannels: 3, imageSize: [64, 176], featureStride: 16, depthBins: [1, 60, 1], numCameras: 2, grid: { xbound: [-12.8, 12.8, 0.8], ybound: [-12.8, 12.8, 0.8], zbound: [-10, 10, 20] } });
    expect(lss.D).toBe(59);
    expect(Object.keys(lss.stateDict())).toEqual(['depthnet.weight', 'depthnet.bias']);
    // depth logits: 50 at bin 9 (10 m) everywhere; context channel 1 = input channel 0.
    const w = new Float32Array(2 * 62), bias = new Float32Array(62);
    bias[9] = 50;
    w[0 * 62 + 59 + 1] = 1;
    lss.loadStateDict({ 'depthnet.weight': tf.tensor4d(w, [1, 1, 2, 62]), 'depthnet.bias': tf.tensor1d(bias) });
    const x = tf.buffer([4, 4, 11, 2]);
    x.set(1, 3, 1, 5, 0); // sample 1, camera 1 (left), feature row 1, column 5
    const geom = geometry([camera(0), camera(Math.PI / 2)], 2, undefined, [[1, 0, 0, 0, 1, 0, 0, 0, 1], rotZ(Math.PI)]);
    const { bev, depth } = lss.forward(x.toTensor() as tf.Tensor4D, geom);
    expect(bev.shape).toEqual([2, 32, 32, 3]);
    expect(depth.shape).toEqual([4, 4, 11, 59]);
    // Left camera, pixel (87.5, 23.5), 10 m → ego (−0.5·10/120, 11.5, 2.27); bda of sample 1 turns it by 180°.
    const ego = egoOf(87.5, 23.5, 10, camera(Math.PI / 2).K, camera(Math.PI / 2).E, rotZ(Math.PI));
    const col = Math.floor((ego[0]! + 12.8) / 0.8), row = Math.floor((ego[1]! + 12.8) / 0.8);
    expect([col, row]).toEqual([16, 1]);
    const v = bev.arraySync() as number[][][][];
    expect(v[1]![row]![col]![1]).toBeCloseTo(1, 5);
    const total = tf.sum(bev).dataSync()[0]!;
    expect(total).toBeCloseTo(1, 5);
    tf.dispose([bev, depth]);
    lss.dispose();
  });

  it('pools a 3-D volume when the grid has several z cells, and checks input shapes', () => {
    const lss = new LSSViewTransform({ inChannels: 4, contextChannels: 2, imageSize: [32, 64], featureStride: 8, depthBins: [1, 20, 2], numCameras: 2, grid: { ...GRID, zbound: [-3, 5, 2] } });
    const x = randn([4, 4, 8, 4], createRng(1)) as tf.Tensor4D;
    const { bev, depth } = lss.forward(x, testGeometry());
    expect(bev.shape).toEqual([2, 4, 32, 32, 2]);
    expect(() => lss.forward(tf.zeros([4, 4, 7, 4]) as tf.Tensor4D, testGeometry())).toThrow(ShapeError);
    tf.dispose([x, bev, depth]);
    lss.dispose();
  });

  it('trains end to end: finite-difference gradients of depthnet, no leaked tensors', () => {
    const lss = new LSSViewTransform({ inChannels: 4, contextChannels: 3, imageSize: [32, 64], featureStride: 8, depthBins: [1, 20, 2], numCameras: 2, grid: GRID, rng: createRng(2) });
    const x = randn([4, 4, 8, 4], createRng(1)) as tf.Tensor4D;
    const geom = testGeometry();
    const R = randn([2, 32, 32, 3], createRng(9));
    const loss = () => tf.tidy(() => {
      const { bev } = lss.forward(x, geom);
      return tf.sum(tf.mul(bev, R)) as tf.Scalar;
    });
    const res = gradCheck(loss, lss.parameters(), { samples: 10 });
    expect(res.checked).toBeGreaterThan(10);
    expect(leakDelta(lss.parameters(), () => lss.forward(x, geom).bev)).toBe(0);
    expect(lss.planCache.misses).toBe(1); // one geometry, one plan
    tf.dispose([x, R]);
    lss.dispose();
  });
});

describe('BEV encoder and image neck', () => {
  it('BilinearUpsample equals align_corners bilinear interpolation, with matching gradients', () => {
    const rng = createRng(8);
    const x = tf.variable(randn([2, 3, 5, 4], rng));
    const up = new BilinearUpsample(4);
    const y = up.forward(x), want = resize2d(x, [12, 20], 'linear', true);
    expect(y.shape).toEqual([2, 12, 20, 4]);
    expect(tf.max(tf.abs(tf.sub(y, want))).dataSync()[0]).toBeLessThan(1e-5);
    const R = randn([2, 12, 20, 4], rng);
    const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(up.forward(t), R)))(x), g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(resize2d(t, [12, 20], 'linear', true), R)))(x);
    expect(tf.max(tf.abs(tf.sub(g1, g2))).dataSync()[0]).toBeLessThan(1e-4);
    expect(() => new BilinearUpsample(1.5)).toThrow(ConfigurationError);
    tf.dispose([x, y, want, R, g1, g2]);
  });

  it('CustomResNet + FPN_LSS: BEVDet shapes and keys', () => {
    const rng = createRng(4);
    const enc = new CustomResNet({ inChannels: 4, rng });
    expect(enc.channels).toEqual([8, 16, 32]);
    const keys = Object.keys(enc.stateDict());
    for (const k of ['layers.0.0.conv1.weight', 'layers.0.0.bn1.running_var', 'layers.0.0.downsample.weight', 'layers.0.0.downsample.bias', 'layers.0.1.conv2.weight', 'layers.2.1.bn2.bias']) expect(keys).toContain(k);
    expect(keys).not.toContain('layers.0.1.downsample.weight');
    const neck = new FPNLSS({ inChannels: 8 + 32, outChannels: 6, rng });
    const nkeys = Object.keys(neck.stateDict());
    for (const k of ['conv.0.weight', 'conv.1.running_mean', 'conv.3.weight', 'conv.4.weight', 'up2.1.weight', 'up2.2.weight', 'up2.4.weight', 'up2.4.bias']) expect(nkeys).toContain(k);
    const x = randn([2, 16, 12, 4], rng);
    const feats = enc.forward(x);
    expect(feats.map((t) => t.shape)).toEqual([[2, 8, 6, 8], [2, 4, 3, 16], [2, 2, 2, 32]]);
    // 16×12 → the coarsest stage is 2×2, ×4 = 8×8 ≠ 8×6: FPN_LSS says so.
    expect(() => neck.forward(feats)).toThrow(ShapeError);
    tf.dispose(feats);
    const sq = randn([2, 16, 16, 4], rng);
    const f2 = enc.forward(sq);
    const y = neck.forward(f2);
    expect(y.shape).toEqual([2, 16, 16, 6]);
    expect(leakDelta([...enc.parameters(), ...neck.parameters()], () => neck.forward(enc.forward(sq)))).toBe(0);
    tf.dispose([x, sq, y, ...f2]);
    const noUp = new FPNLSS({ inChannels: 8 + 32, outChannels: 6, extraUpsample: null, lateral: 8, rng });
    expect(Object.keys(noUp.stateDict()).some((k) => k.startsWith('up2'))).toBe(false);
    expect(Object.keys(noUp.stateDict())).toContain('lateral_conv.0.weight');
    expect(Object.keys(noUp.stateDict()).filter((k) => k.startsWith('conv.0')).length).toBe(1);
    enc.dispose();
    neck.dispose();
    noUp.dispose();
  });

  it('FPNForBEVDet returns the finest level after the top-down sum, with BEVDet keys', () => {
    const rng = createRng(6);
    const neck = new FPNForBEVDet([8, 16], 5, { rng });
    expect(Object.keys(neck.stateDict())).toEqual(['lateral_convs.0.conv.weight', 'lateral_convs.0.conv.bias', 'lateral_convs.1.conv.weight', 'lateral_convs.1.conv.bias', 'fpn_convs.0.conv.weight', 'fpn_convs.0.conv.bias']);
    const c4 = randn([2, 4, 11, 8], rng), c5 = randn([2, 2, 6, 16], rng);
    const [out] = neck.forward([c4, c5]);
    expect(out!.shape).toEqual([2, 4, 11, 5]);
    // Same result by hand: lateral(c4) + nearest-upsampled lateral(c5) (PyTorch nearest: ⌊o·in/out⌋), then the 3×3 conv.
    const want = tf.tidy(() => {
      const l0 = neck.lateral_convs.get(0).forward(c4), l1 = neck.lateral_convs.get(1).forward(c5);
      const rows = tf.tensor1d([0, 0, 1, 1], 'int32'), cols = tf.tensor1d(Array.from({ length: 11 }, (_, o) => Math.floor((o * 6) / 11)), 'int32');
      return neck.fpn_convs.get(0).forward(tf.add(l0, tf.gather(tf.gather(l1, rows, 1), cols, 2)));
    });
    expect(tf.max(tf.abs(tf.sub(out!, want))).dataSync()[0]).toBeLessThan(1e-5);
    expect(() => new FPNForBEVDet([8, 16], 5, { outIds: [2] })).toThrow(ConfigurationError);
    tf.dispose([c4, c5, out!, want]);
    neck.dispose();
  });
});
