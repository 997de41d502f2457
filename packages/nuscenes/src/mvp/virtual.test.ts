import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  LIDAR_POINT_FEATURES, MVP_POINT_FEATURES, composeTransforms, createRng, dataSettings, invertTransform, mergeDataSettings, orientedBoxCorners,
  pointInBox, quatYaw, realPoints, transformPoint, type Mat3, type RigidTransform, type Vec3,
} from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from '../errors.js';
import { loadFrame } from '../frame.js';
import { parsePcdBin } from '../io.js';
import { createLoader, type Batch } from '../loader.js';
import { buildObjectDatabase } from '../object-sample.js';
import { openNuScenes, type NuScenes } from '../reader.js';
import { encodePng } from '../synth/png.js';
import { DETECTION_CLASSES } from '../tables.js';
import { FIX_H, FIX_K, FIX_W, buildFixture, type Fixture } from '../test-fixture.js';
import { maskPathFor, type InstanceMasks } from './masks.js';
import {
  CAMERA_MAX_LAG_US, PAINT_FEATURES, VIRTUAL_POINT_VALUES, computeVirtualPoints, maskViews, sampleMaskPixels, sweepCameras, virtualRng,
  type MaskView,
} from './virtual.js';
import { computeSweepVirtualPoints, prepareVirtualPoints, readVirtualPoints, virtualPointsDir, virtualPointsFile } from './virtual-cache.js';

const CAR = DETECTION_CLASSES.indexOf('car'), TRUCK = DETECTION_CLASSES.indexOf('truck');

interface Rect { id: number; label: string; score: number; x0: number; y0: number; x1: number; y1: number }

/** Write a mask pair in the contract layout: rectangles [x0, x1] × [y0, y1] (inclusive, clipped) of instance ids. */
async function writeMasks(root: string, imageFilename: string, W: number, H: number, rects: Rect[]): Promise<void> {
  const ids = new Uint16Array(W * H);
  for (const r of rects)
    for (let y = Math.max(0, r.y0); y <= Math.min(H - 1, r.y1); y++)
      for (let x = Math.max(0, r.x0); x <= Math.min(W - 1, r.x1); x++) ids[y * W + x] = r.id;
  const base = join(root, maskPathFor(imageFilename));
  await mkdir(dirname(base), { recursive: true });
  await writeFile(`${base}.png`, encodePng({ width: W, height: H, channels: 1, bitDepth: 16, data: ids }));
  await writeFile(`${base}.json`, JSON.stringify({ instances: rects.map((r) => ({ id: r.id, label: r.label, score: r.score })) }));
}

let fx: Fixture;
let nusc: NuScenes;
/** The car mask of CAM_FRONT per sample: the bounding rectangle of the projected car box. */
const carRects: Rect[] = [];

const camFromGlobal = (n: NuScenes, camToken: string): RigidTransform => invertTransform(composeTransforms(n.egoPose(camToken), n.calibratedSensor(camToken).transform));
const project = (c: Vec3): [number, number, number] => [FIX_K[0] * (c[0] / c[2]) + FIX_K[2], FIX_K[4] * (c[1] / c[2]) + FIX_K[5], c[2]];

beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
  for (let s = 0; s < 3; s++) {
    const cam = nusc.sampleDataToken(fx.samples[s]!, 'CAM_FRONT');
    const a = nusc.get('sample_annotation', fx.car[s]!);
    const uv = orientedBoxCorners({ center: [...a.translation], size: [...a.size], rotation: [...a.rotation] }).map((g) => project(transformPoint(camFromGlobal(nusc, cam), g)));
    expect(uv.every((p) => p[2] > 0)).toBe(true);
    const r: Rect = {
      id: 3, label: 'car', score: 0.9,
      x0: Math.floor(Math.min(...uv.map((p) => p[0]))), x1: Math.ceil(Math.max(...uv.map((p) => p[0]))),
      y0: Math.floor(Math.min(...uv.map((p) => p[1]))), y1: Math.ceil(Math.max(...uv.map((p) => p[1]))),
    };
    carRects.push(r);
    // A second mask up in the sky, where no LiDAR point projects: painted nothing, no virtual points.
    await writeMasks(fx.dataroot, nusc.get('sample_data', cam).filename, FIX_W, FIX_H, [r, { id: 7, label: 'barrier', score: 0.4, x0: 2, y0: 0, x1: 12, y1: 3 }]);
  }
});

describe('virtual points: geometry (unit)', () => {
  // A camera at the LiDAR origin looking along +z (camera ← LiDAR = identity), 10×10 image.
  const K: Mat3 = [10, 0, 4.5, 0, 10, 4.5, 0, 0, 1];
  const I4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const masksOf = (rect: [number, number, number, number], label: number, score: number, id = 1): InstanceMasks => {
    const ids = new Uint16Array(100);
    for (let y = rect[1]; y <= rect[3]; y++) for (let x = rect[0]; x <= rect[2]; x++) ids[y * 10 + x] = id;
    return { width: 10, height: 10, ids, instances: [{ id, label, score }] };
  };
  // Points (x, y, z, intensity, Δt): pixel = round(10·x/z + 4.5), round(10·y/z + 4.5).
  const pts = new Float32Array([
    -0.1, -0.1, 10, 1, 0, // pixel (4, 4)  depth 10: in the mask
    0.15, 0.05, 5, 1, 0, //  pixel (5, 5)  depth 5: in the mask
    -1.5, -1.5, 5, 1, 0, //  pixel (2, 2)  depth 5: in the mask (corner)
    0.1, 0.1, -10, 1, 0, //  behind the camera: never painted
    3, 3, 5, 1, 0, //        pixel (10, 10): outside the image
    -4, 0, 10, 1, 0, //      pixel (0, 5): in the image, outside the mask
  ]);

  it('paints exactly the points with depth > 0 whose pixel is in the mask, and keeps the entrywise max over cameras', () => {
    const a: MaskView = { channel: 'A', intrinsics: K, cameraFromLidar: I4, masks: masksOf([2, 2, 5, 5], CAR, 0.8) };
    const v = computeVirtualPoints(pts, 5, [a], 50, createRng(1));
    expect(v.numReal).toBe(6);
    expect([...v.paintedIndex]).toEqual([0, 1, 2]);
    for (let k = 0; k < 3; k++) {
      const row = Array.from(v.painting.subarray(k * PAINT_FEATURES, (k + 1) * PAINT_FEATURES));
      expect(row.slice(0, 10)).toEqual(DETECTION_CLASSES.map((_, c) => (c === CAR ? 1 : 0)));
      expect(row[10]).toBeCloseTo(0.8, 6);
    }
    // A second camera (same pose) sees point 1 in a truck mask of lower score: one-hot of both, the higher score.
    const b: MaskView = { channel: 'B', intrinsics: K, cameraFromLidar: I4, masks: masksOf([5, 5, 5, 5], TRUCK, 0.6, 9) };
    const w = computeVirtualPoints(pts, 5, [a, b], 50, createRng(1));
    const k1 = [...w.paintedIndex].indexOf(1);
    const row = Array.from(w.painting.subarray(k1 * PAINT_FEATURES, (k1 + 1) * PAINT_FEATURES));
    expect(row[CAR]).toBe(1);
    expect(row[TRUCK]).toBe(1);
    expect(row[10]).toBeCloseTo(0.8, 6);
    expect(w.virtual.length / VIRTUAL_POINT_VALUES).toBe(100); // 50 per mask
  });

  it('puts each virtual point on the ray of a mask pixel at the depth of the nearest in-mask real point', () => {
    const a: MaskView = { channel: 'A', intrinsics: K, cameraFromLidar: I4, masks: masksOf([2, 2, 5, 5], CAR, 0.8) };
    const v = computeVirtualPoints(pts, 5, [a], 50, createRng(3));
    const nv = v.virtual.length / VIRTUAL_POINT_VALUES;
    expect(nv).toBe(50);
    const reals = [0, 1, 2].map((i) => project10(pts.subarray(i * 5, i * 5 + 3)));
    const seen = new Set<string>();
    for (let q = 0; q < nv; q++) {
      const [x, y, z] = v.virtual.subarray(q * VIRTUAL_POINT_VALUES, q * VIRTUAL_POINT_VALUES + 3);
      const [u, w] = project10([x!, y!, z!]);
      expect(Math.abs(u - Math.round(u))).toBeLessThan(1e-4);
      expect(Math.abs(w - Math.round(w))).toBeLessThan(1e-4);
      const px = Math.round(u), py = Math.round(w);
      expect(px >= 2 && px <= 5 && py >= 2 && py <= 5).toBe(true);
      const nearest = reals.reduce((best, r) => ((r[0] - px) ** 2 + (r[1] - py) ** 2 < (best[0] - px) ** 2 + (best[1] - py) ** 2 ? r : best));
      expect(z).toBeCloseTo(nearest[2], 4);
      expect(v.virtual[q * VIRTUAL_POINT_VALUES + 3 + CAR]).toBe(1);
      expect(v.virtual[q * VIRTUAL_POINT_VALUES + 3 + 10]).toBeCloseTo(0.8, 6);
      seen.add(`${px},${py}`);
    }
    // 16 mask pixels < 50: all of them, then the first drawn one repeated (as MVP).
    expect(seen.size).toBe(16);
    // A mask no real point projects into gives no virtual point.
    const empty = computeVirtualPoints(pts, 5, [{ ...a, masks: masksOf([7, 0, 9, 1], CAR, 0.8) }], 50, createRng(3));
    expect(empty.virtual.length).toBe(0);
    expect(empty.paintedIndex.length).toBe(0);
  });

  it('samples mask pixels uniformly without replacement, repeating the first one for small masks', () => {
    const big = Array.from({ length: 400 }, (_, i) => i);
    const s = sampleMaskPixels(big, 50, createRng(5));
    expect(new Set(s).size).toBe(50);
    expect(sampleMaskPixels(big, 50, createRng(5))).toEqual(s);
    const small = sampleMaskPixels([10, 11, 12], 6, createRng(5));
    expect(new Set(small.slice(0, 3))).toEqual(new Set([10, 11, 12]));
    expect(small.slice(3)).toEqual([small[0], small[0], small[0]]);
    // Uniform: over many draws every pixel is chosen about 50/400 of the time.
    const counts = new Array<number>(400).fill(0);
    const rng = createRng(9);
    for (let t = 0; t < 400; t++) for (const p of sampleMaskPixels(big, 50, rng)) counts[p]!++;
    expect(Math.min(...counts)).toBeGreaterThan(20);
    expect(Math.max(...counts)).toBeLessThan(85);
  });
});

/** Pixel and depth in the unit tests' camera (identity pose, f = 10, c = 4.5). */
function project10(p: ArrayLike<number>): [number, number, number] {
  return [(10 * p[0]!) / p[2]! + 4.5, (10 * p[1]!) / p[2]! + 4.5, p[2]!];
}

describe('virtual points on the fixture', () => {
  const rawPoints = async (lidarToken: string) => {
    const sd = nusc.get('sample_data', lidarToken);
    return parsePcdBin(await readFile(join(fx.dataroot, sd.filename)), sd.filename);
  };
  /** Pixel and depth of a LiDAR sensor point in a camera, by the quaternion transforms (not the matrices of the code). */
  const projectInto = (lidarToken: string, camToken: string, p: Vec3) =>
    project(transformPoint(camFromGlobal(nusc, camToken), transformPoint(composeTransforms(nusc.egoPose(lidarToken), nusc.calibratedSensor(lidarToken).transform), p)));

  it('uses the cameras within 50 ms of a keyframe and none for the sweeps (no camera image near them)', () => {
    // The fixture's camera k is taken (k + 1)·10 ms after the LiDAR keyframe.
    expect(sweepCameras(nusc, fx.lidarKeyframes[0]!).map((c) => [c.channel, c.lagUs])).toEqual([
      ['CAM_FRONT', 10000], ['CAM_FRONT_RIGHT', 20000], ['CAM_FRONT_LEFT', 30000], ['CAM_BACK', 40000],
    ]);
    expect(CAMERA_MAX_LAG_US).toBe(50000);
    const sweep = fx.lidarChain.find((t) => !fx.lidarKeyframes.includes(t))!;
    expect(sweepCameras(nusc, sweep)).toEqual([]);
  });

  it('paints exactly the real points that project into the car mask, all the car points among them', async () => {
    for (let s = 0; s < 3; s++) {
      const lidar = fx.lidarKeyframes[s]!, cam = nusc.sampleDataToken(fx.samples[s]!, 'CAM_FRONT');
      const raw = await rawPoints(lidar);
      const v = await computeSweepVirtualPoints(nusc, lidar);
      expect(v.cameras).toBe(1); // only CAM_FRONT has masks
      const r = carRects[s]!;
      const expected: number[] = [];
      const a = nusc.get('sample_annotation', fx.car[s]!);
      const toGlobal = composeTransforms(nusc.egoPose(lidar), nusc.calibratedSensor(lidar).transform);
      let carPoints = 0;
      for (let i = 0; i < raw.length / 5; i++) {
        const p: Vec3 = [raw[i * 5]!, raw[i * 5 + 1]!, raw[i * 5 + 2]!];
        const [u, w, d] = projectInto(lidar, cam, p);
        const px = Math.round(u), py = Math.round(w);
        const inMask = d > 0 && px >= Math.max(0, r.x0) && px <= Math.min(FIX_W - 1, r.x1) && py >= Math.max(0, r.y0) && py <= Math.min(FIX_H - 1, r.y1);
        if (inMask) expected.push(i);
        const g = transformPoint(toGlobal, p);
        if (pointInBox({ center: [...a.translation], size: [...a.size], yaw: quatYaw([...a.rotation]) }, g)) {
          carPoints++;
          expect(inMask).toBe(true);
        }
      }
      expect(carPoints).toBe(fx.carPointsPerKeyframe[s]);
      expect([...v.paintedIndex]).toEqual(expected);
      for (let k = 0; k < expected.length; k++) {
        expect(v.painting[k * PAINT_FEATURES + CAR]).toBe(1);
        expect(v.painting[k * PAINT_FEATURES + 10]).toBeCloseTo(0.9, 6);
      }
      // 50 virtual points from the car mask, none from the sky mask.
      expect(v.virtual.length / VIRTUAL_POINT_VALUES).toBe(50);
    }
  });

  it('back-projects sampled car-mask pixels at the depth of the nearest in-mask point; with the car points they land in the car box', async () => {
    const s = 0, lidar = fx.lidarKeyframes[s]!, cam = nusc.sampleDataToken(fx.samples[s]!, 'CAM_FRONT');
    const raw = await rawPoints(lidar);
    const v = await computeSweepVirtualPoints(nusc, lidar);
    const inMask = [...v.paintedIndex].map((i) => projectInto(lidar, cam, [raw[i * 5]!, raw[i * 5 + 1]!, raw[i * 5 + 2]!]));
    const r = carRects[s]!;
    for (let q = 0; q < v.virtual.length / VIRTUAL_POINT_VALUES; q++) {
      const o = q * VIRTUAL_POINT_VALUES;
      const [u, w, d] = projectInto(lidar, cam, [v.virtual[o]!, v.virtual[o + 1]!, v.virtual[o + 2]!]);
      const px = Math.round(u), py = Math.round(w);
      expect(Math.abs(u - px)).toBeLessThan(1e-3);
      expect(Math.abs(w - py)).toBeLessThan(1e-3);
      expect(px >= r.x0 && px <= r.x1 && py >= r.y0 && py <= r.y1).toBe(true);
      const nearest = inMask.reduce((b, p) => ((p[0] - px) ** 2 + (p[1] - py) ** 2 < (b[0] - px) ** 2 + (b[1] - py) ** 2 ? p : b));
      expect(d).toBeCloseTo(nearest[2], 3);
      expect(Array.from(v.virtual.subarray(o + 3, o + 3 + 10))).toEqual(DETECTION_CLASSES.map((_, c) => (c === CAR ? 1 : 0)));
      expect(v.virtual[o + 13]).toBeCloseTo(0.9, 6);
    }
    // With only the car's own points as the real cloud (no ground seen through the rectangle), every virtual point
    // lies in the car box (0.5 m tolerance: a pixel takes the depth of a neighbouring point of the grid).
    const a = nusc.get('sample_annotation', fx.car[s]!);
    const toGlobal = composeTransforms(nusc.egoPose(lidar), nusc.calibratedSensor(lidar).transform);
    const box = { center: [...a.translation] as Vec3, size: [a.size[0] + 1, a.size[1] + 1, a.size[2] + 1] as Vec3, yaw: quatYaw([...a.rotation]) };
    const carOnly: number[] = [];
    for (let i = 0; i < raw.length / 5; i++)
      if (pointInBox({ ...box, size: [...a.size] }, transformPoint(toGlobal, [raw[i * 5]!, raw[i * 5 + 1]!, raw[i * 5 + 2]!]))) carOnly.push(...raw.subarray(i * 5, i * 5 + 5));
    const c = computeVirtualPoints(Float32Array.from(carOnly), 5, await maskViews(nusc, lidar), 50, virtualRng(lidar));
    expect(c.virtual.length / VIRTUAL_POINT_VALUES).toBe(50);
    for (let q = 0; q < 50; q++) {
      const o = q * VIRTUAL_POINT_VALUES;
      expect(pointInBox(box, transformPoint(toGlobal, [c.virtual[o]!, c.virtual[o + 1]!, c.virtual[o + 2]!]))).toBe(true);
    }
  });

  it('is deterministic per sample_data token', async () => {
    const a = await computeSweepVirtualPoints(nusc, fx.lidarKeyframes[1]!);
    const b = await computeSweepVirtualPoints(nusc, fx.lidarKeyframes[1]!);
    expect(Array.from(b.virtual)).toEqual(Array.from(a.virtual));
    const views = await maskViews(nusc, fx.lidarKeyframes[1]!);
    const raw = await rawPoints(fx.lidarKeyframes[1]!);
    const other = computeVirtualPoints(raw, 5, views, 50, virtualRng(fx.lidarKeyframes[0]!));
    expect(Array.from(other.virtual)).not.toEqual(Array.from(a.virtual));
  });
});

describe('virtual-point cache, frames and batches', () => {
  it('prepares one file per LiDAR file, idempotently, and names a truncated or missing file', async () => {
    const first = await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 });
    expect(first.files).toBe(6); // 3 keyframes + their previous sweep
    expect(first.written).toBe(6);
    expect(first.cameras).toBe(3);
    expect(first.virtual).toBe(150);
    const again = await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 });
    expect([again.written, again.skipped, again.dir]).toEqual([0, 6, first.dir]);
    expect(await virtualPointsDir(nusc)).toBe(first.dir);
    const other = await virtualPointsDir(nusc, 20);
    expect(other).not.toBe(first.dir);

    const sd = nusc.get('sample_data', fx.lidarKeyframes[2]!);
    const file = virtualPointsFile(first.dir, sd.filename);
    const n = (await stat(join(fx.dataroot, sd.filename))).size / 20;
    await expect(readVirtualPoints(file, n + 1)).rejects.toThrow(/made for \d+ LiDAR points/);
    await truncate(file, (await stat(file)).size - 7);
    const err = await readVirtualPoints(file, n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NuScenesError);
    expect((err as NuScenesError).file).toBe(file);
    expect((err as NuScenesError).field).toBe('size');
    await expect(loadFrame(nusc, fx.samples[2]!, { sweeps: 1, cameras: false, virtualPoints: true })).rejects.toThrow(file);
    const fixed = await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 });
    expect([fixed.written, fixed.skipped]).toEqual([1, 5]);
    // A file not prepared (removed here).
    await rm(file);
    const missing = await loadFrame(nusc, fx.samples[2]!, { sweeps: 1, cameras: false, virtualPoints: true }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NuScenesError);
    expect((missing as NuScenesError).file).toBe(file);
    expect((missing as Error).message).toMatch(/Missing virtual points .*prepareVirtualPoints/);
    expect((await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 })).written).toBe(1);
  });

  it('assembles 17-feature frames: real points painted (flag 0) then virtual points (flag 1), through the keyframe transform', async () => {
    await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 });
    const plain = await loadFrame(nusc, fx.samples[0]!, { sweeps: 1, cameras: false });
    const f = await loadFrame(nusc, fx.samples[0]!, { sweeps: 1, cameras: false, virtualPoints: true });
    const F = MVP_POINT_FEATURES;
    expect(f.lidar!.pointFeatures).toBe(F);
    expect(plain.lidar!.pointFeatures).toBe(LIDAR_POINT_FEATURES);
    const pts = f.lidar!.points;
    expect(pts.length % F).toBe(0);
    expect(Array.from(realPoints({ points: [pts], pointFeatures: F })[0]!)).toEqual(Array.from(plain.lidar!.points));
    let virtualCount = 0, painted = 0;
    const carInEgo = f.boxes.find((b) => b.detectionName === 'car')!;
    for (let o = 0; o < pts.length; o += F) {
      const flag = pts[o + F - 1];
      expect(flag === 0 || flag === 1).toBe(true);
      if (flag === 1) {
        virtualCount++;
        expect(pts[o + 3]).toBe(0); // intensity
        expect(pts[o + 4]).toBe(0); // the keyframe's Δt
        expect(pts[o + 5 + CAR]).toBe(1);
      } else if (pts[o + 5 + CAR] === 1) painted++;
    }
    expect(virtualCount).toBe(50); // the sweep has no camera image within 50 ms
    expect(painted).toBeGreaterThanOrEqual(fx.carPointsPerKeyframe[0]!);
    // The car's points (in the keyframe ego frame) are painted car.
    const ego = (await loadFrame(nusc, fx.samples[0]!, { sweeps: 0, cameras: false, virtualPoints: true }));
    const m = ego.lidar2egoMatrix;
    for (let o = 0; o < ego.lidar!.points.length; o += F) {
      const x = ego.lidar!.points[o]!, y = ego.lidar!.points[o + 1]!, z = ego.lidar!.points[o + 2]!;
      const e: Vec3 = [m[0]! * x + m[1]! * y + m[2]! * z + m[3]!, m[4]! * x + m[5]! * y + m[6]! * z + m[7]!, m[8]! * x + m[9]! * y + m[10]! * z + m[11]!];
      if (ego.lidar!.points[o + F - 1] === 0 && pointInBox(carInEgo, e)) expect(ego.lidar!.points[o + 5 + CAR]).toBe(1);
    }
  });

  it('gives 17-feature batches: bda on xyz only, paintings and flags intact, realPoints = the 5-feature batch', async () => {
    await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 });
    const common = { nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [36, 64] as const, sweeps: 1, augment: true, seed: 4, shuffle: false };
    const b17: Batch = await createLoader({ ...common, virtualPoints: true }).batch(0, 0);
    const b5: Batch = await createLoader(common).batch(0, 0);
    const b17raw: Batch = await createLoader({ ...common, augment: { image: false, bev: false }, virtualPoints: true }).batch(0, 0);
    expect(b17.pointFeatures).toBe(MVP_POINT_FEATURES);
    expect(b5.pointFeatures).toBeUndefined();
    expect(Array.from(b17.bda)).toEqual(Array.from(b5.bda));
    expect(realPoints(b17).map((p) => Array.from(p))).toEqual(b5.points!.map((p) => Array.from(p)));
    expect(realPoints(b5)[0]).toBe(b5.points![0]);
    const F = MVP_POINT_FEATURES;
    for (let b = 0; b < 3; b++) {
      const bda = Array.from(b17.bda.subarray(b * 9, b * 9 + 9));
      expect(bda).not.toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
      const p = b17.points![b]!, q = b17raw.points![b]!;
      expect(p.length).toBe(q.length);
      for (let o = 0; o < p.length; o += F) {
        const [x, y, z] = [q[o]!, q[o + 1]!, q[o + 2]!];
        expect(p[o]).toBeCloseTo(bda[0]! * x + bda[1]! * y + bda[2]! * z, 3);
        expect(p[o + 1]).toBeCloseTo(bda[3]! * x + bda[4]! * y + bda[5]! * z, 3);
        expect(p[o + 2]).toBeCloseTo(bda[6]! * x + bda[7]! * y + bda[8]! * z, 3);
        for (let k = 3; k < F; k++) if (p[o + k] !== q[o + k]) expect.fail(`sample ${b}, value ${k} of point ${o / F} changed by the augmentation`);
      }
      let nv = 0;
      for (let o = F - 1; o < p.length; o += F) nv += p[o]!;
      expect(nv).toBe(50);
    }
    expect(() => createLoader({ ...common, points: false, virtualPoints: true })).toThrow(/virtualPoints/);
  });

  it('builds a 17-feature GT-paste database that the 17-feature loader pastes (and the 5-feature one refuses)', async () => {
    await prepareVirtualPoints(nusc, { sampleTokens: fx.samples, sweeps: 1 });
    const db = await buildObjectDatabase(nusc, fx.samples, { sweeps: 1, minPoints: 1, virtualPoints: true });
    expect(db.pointFeatures).toBe(MVP_POINT_FEATURES);
    const cars = db.byLabel[CAR]!;
    expect(cars.length).toBe(3);
    for (const e of cars) {
      expect(e.points.length % MVP_POINT_FEATURES).toBe(0);
      let nv = 0;
      for (let o = MVP_POINT_FEATURES - 1; o < e.points.length; o += MVP_POINT_FEATURES) nv += e.points[o]!;
      expect(nv).toBeGreaterThan(0); // the car's virtual points travel with it
    }
    const common = { nusc, sampleTokens: [fx.samples[0]!], batchSize: 1, imageSize: [36, 64] as const, sweeps: 1, augment: { image: false as const, bev: false as const }, shuffle: false };
    // Paste the car of sample 2, moved 6 m to the side of sample 0's own car, into sample 0.
    const src = cars[2]!;
    const moved = { ...src, box: { ...src.box, center: [src.box.center[0], src.box.center[1] + 6, src.box.center[2]] as Vec3 }, points: src.points.slice() };
    for (let o = 1; o < moved.points.length; o += MVP_POINT_FEATURES) moved.points[o]! += 6;
    let movedVirtual = 0;
    for (let o = MVP_POINT_FEATURES - 1; o < moved.points.length; o += MVP_POINT_FEATURES) movedVirtual += moved.points[o]!;
    const only = { ...db, byLabel: db.byLabel.map((_, i) => (i === CAR ? [moved] : [])) };
    const plain = await createLoader({ ...common, virtualPoints: true }).batch(0, 0);
    const b = await createLoader({ ...common, virtualPoints: true, objectSample: { database: only, sampleGroups: { car: 2 } } }).batch(0, 0);
    expect(b.boxes[0]!.count).toBe(plain.boxes[0]!.count + 1);
    const flags = (p: Float32Array) => { let n = 0; for (let o = MVP_POINT_FEATURES - 1; o < p.length; o += MVP_POINT_FEATURES) n += p[o]!; return n; };
    expect(b.points![0]!.length % MVP_POINT_FEATURES).toBe(0);
    expect(flags(b.points![0]!)).toBe(flags(plain.points![0]!) + movedVirtual);
    expect(b.points![0]!.subarray(-moved.points.length)).toEqual(moved.points);
    expect(() => createLoader({ ...common, objectSample: { database: db } })).toThrow(/objectSample\.database/);
  });

  it('realPoints and the data setting', () => {
    const pts = new Float32Array(2 * MVP_POINT_FEATURES);
    pts.set([1, 2, 3, 4, 0.5], 0);
    pts.set([9, 9, 9, 0, 0.5], MVP_POINT_FEATURES);
    pts[2 * MVP_POINT_FEATURES - 1] = 1;
    expect(Array.from(realPoints({ points: [pts], pointFeatures: MVP_POINT_FEATURES })[0]!)).toEqual([1, 2, 3, 4, 0.5]);
    expect(() => realPoints({ points: [pts.subarray(1)], pointFeatures: MVP_POINT_FEATURES })).toThrow(/points\[0\]/);
    expect(() => realPoints({})).toThrow(/no LiDAR points/);
    expect(dataSettings.parse({})).not.toHaveProperty('virtualPoints');
    const lidar = dataSettings.parse({ points: true, images: false, virtualPoints: true });
    expect(mergeDataSettings(dataSettings.parse({}), lidar).virtualPoints).toBe(true);
    expect(mergeDataSettings(dataSettings.parse({}), dataSettings.parse({ points: true }))).not.toHaveProperty('virtualPoints');
  });
});
