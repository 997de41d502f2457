import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  composeTransforms, invertTransform, mat3MulVec, pointInBox, quatRotate, transformPoint, yawToQuat,
  type Mat3, type RigidTransform, type Vec3,
} from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FrameCache } from './cache.js';
import { loadFrame } from './frame.js';
import { decodeImage } from './io.js';
import { writeNpz } from './npz.js';
import { openNuScenes, type NuScenes } from './reader.js';
import { CAMERA_CHANNELS } from './tables.js';
import { buildFixture, FIX_H, FIX_K, FIX_MARKER, FIX_W, type Fixture } from './test-fixture.js';

let fx: Fixture;
let nusc: NuScenes;
beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
});

/** Project a global point through a frame's keyframe ego and a camera's sensor2keyEgo and intrinsics. */
function project(ego2global: RigidTransform, sensor2keyEgo: RigidTransform, K: Mat3, g: Vec3): Vec3 {
  const pc = transformPoint(invertTransform(sensor2keyEgo), transformPoint(invertTransform(ego2global), g));
  const q = mat3MulVec(K, pc);
  return [q[0] / q[2], q[1] / q[2], pc[2]];
}

/** Brightness-weighted centroid of the white marker in an RGB image (background channels stay below 140, min below 90). */
export function markerCentroid(img: ArrayLike<number>, W: number, H: number): [number, number, number] {
  let sw = 0, su = 0, sv = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      const w = Math.max(0, Math.min(img[o]!, img[o + 1]!, img[o + 2]!) - 100);
      sw += w; su += w * x; sv += w * y;
    }
  return [su / sw, sv / sw, sw];
}

describe('loadFrame: cameras', () => {
  it('decodes the six images with calibration and poses', async () => {
    const f = await loadFrame(nusc, fx.samples[0]!, { lidar: false });
    expect(f.cameras.map((c) => c.channel)).toEqual([...CAMERA_CHANNELS]);
    const front = f.cameras[0]!;
    expect([front.height, front.width, front.originalSize]).toEqual([FIX_H, FIX_W, [FIX_H, FIX_W]]);
    expect(front.intrinsics).toEqual(FIX_K);
    const raw = decodeImage(await readFile(front.path), front.path);
    expect(front.image).toEqual(raw.data);
    expect(front.sensor2ego).toEqual(nusc.calibratedSensor(front.sampleDataToken).transform);
    expect(front.ego2global).toEqual(fx.ego[front.sampleDataToken]);
    expect(f.ego2global).toEqual(fx.ego[fx.lidarKeyframes[0]!]);
    // camera → keyframe ego goes through the camera's own ego pose: the marker lands on its pixel.
    const [u, v, z] = project(f.ego2global, front.sensor2keyEgo, front.intrinsics, fx.markerGlobal);
    expect(u).toBeCloseTo(FIX_MARKER.u, 6);
    expect(v).toBeCloseTo(FIX_MARKER.v, 6);
    expect(z).toBeCloseTo(FIX_MARKER.depth, 6);
    // the 4×4 matrices agree with the transforms
    const m = front.sensor2keyEgoMatrix, p: Vec3 = [1, 2, 3];
    const viaM = [0, 1, 2].map((r) => m[r * 4]! * p[0] + m[r * 4 + 1]! * p[1] + m[r * 4 + 2]! * p[2] + m[r * 4 + 3]!);
    transformPoint(front.sensor2keyEgo, p).forEach((c, k) => expect(viaM[k]).toBeCloseTo(c, 9));
  });

  for (const [size, mode] of [[[27, 48], 'crop'], [[27, 48], 'stretch'], [[24, 64], 'crop'], [[40, 60], 'stretch']] as const) {
    it(`resizes to ${size.join('×')} (${mode}) with intrinsics adjusted`, async () => {
      const f = await loadFrame(nusc, fx.samples[0]!, { lidar: false, imageSize: size, resizeMode: mode });
      const front = f.cameras[0]!;
      expect([front.height, front.width, front.image.length]).toEqual([size[0], size[1], size[0] * size[1] * 3]);
      const [u, v] = project(f.ego2global, front.sensor2keyEgo, front.intrinsics, fx.markerGlobal);
      const [cu, cv, mass] = markerCentroid(front.image, front.width, front.height);
      expect(mass).toBeGreaterThan(100);
      expect(Math.abs(cu - u)).toBeLessThan(0.35);
      expect(Math.abs(cv - v)).toBeLessThan(0.35);
    });
  }
});

describe('loadFrame: LiDAR', () => {
  it('aggregates the keyframe and previous sweeps like from_file_multisweep', async () => {
    const f = await loadFrame(nusc, fx.samples[2]!, { cameras: false });
    const lidar = f.lidar!;
    // chain for sample 2: key2, sweep2, key1, sweep1, key0, sweep0 (5 previous sweeps, fewer than 9)
    expect(lidar.sweepsUsed).toBe(5);
    const expectedCount = [5, 4, 3, 2, 1, 0].reduce((s, k) => s + fx.rawCounts[k]! - fx.closeCounts[k]!, 0);
    expect(lidar.numPoints).toBe(expectedCount);
    expect(lidar.points.length).toBe(expectedCount * 5);
    const lags = new Set<number>();
    for (let i = 4; i < lidar.points.length; i += 5) lags.add(lidar.points[i]!);
    expect([...lags].sort()).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25].map(Math.fround));

    // The first point of each cloud is the car's corner-most grid point at that cloud's time: back in the global
    // frame it must be where the car was then.
    const keyLidarToGlobal = composeTransforms(f.ego2global, f.lidar2ego);
    let offset = 0;
    for (const k of [5, 4, 3, 2, 1, 0]) {
      const sd = nusc.get('sample_data', fx.lidarChain[k]!);
      const t = (sd.timestamp - nusc.get('sample', fx.samples[0]!).timestamp) * 1e-6;
      const p = lidar.points.subarray(offset * 5, offset * 5 + 3);
      const g = transformPoint(keyLidarToGlobal, [p[0]!, p[1]!, p[2]!]);
      const local = quatRotate(yawToQuat(0.1), [-1.6, -0.6, -0.5]);
      const expected: Vec3 = [110 + 5 * t + local[0], 203 + local[1], 1 + local[2]];
      g.forEach((c, j) => expect(c).toBeCloseTo(expected[j]!, 3));
      expect(lidar.points[offset * 5 + 3]).toBe(48); // intensity kept
      offset += fx.rawCounts[k]! - fx.closeCounts[k]!;
    }
  });

  it('limits sweeps, keeps close points with minDistance 0, and counts num_lidar_pts in the box', async () => {
    const f0 = await loadFrame(nusc, fx.samples[1]!, { cameras: false, sweeps: 0 });
    expect(f0.lidar!.numPoints).toBe(fx.rawCounts[3]! - fx.closeCounts[3]!);
    const f2 = await loadFrame(nusc, fx.samples[1]!, { cameras: false, sweeps: 2, minDistance: 0 });
    expect(f2.lidar!.sweepsUsed).toBe(2);
    expect(f2.lidar!.numPoints).toBe(fx.rawCounts[3]! + fx.rawCounts[2]! + fx.rawCounts[1]!);
    const car = f2.boxes.find((b) => b.detectionName === 'car')!;
    const pts = f2.lidar!.points;
    let inside = 0;
    for (let i = 0; i < pts.length; i += 5) {
      if (pts[i + 4] !== 0) continue;
      const e = transformPoint(f2.lidar2ego, [pts[i]!, pts[i + 1]!, pts[i + 2]!]);
      if (pointInBox(car, e)) inside++;
    }
    expect(inside).toBe(car.numLidarPts);
    expect(inside).toBe(fx.carPointsPerKeyframe[1]);
  });
});

describe('loadFrame: boxes, previous frame, Occ3D', () => {
  it('gives GT boxes in the keyframe ego frame with the devkit class mapping', async () => {
    const f0 = await loadFrame(nusc, fx.samples[0]!, { cameras: false, lidar: false });
    expect(f0.boxes.map((b) => b.token)).toEqual([fx.car[0]]); // the animal has no detection class
    const car = f0.boxes[0]!;
    const egoYaw = 0.3;
    const c = transformPoint(invertTransform(fx.ego[fx.lidarKeyframes[0]!]!), [110, 203, 1]);
    car.center.forEach((v, k) => expect(v).toBeCloseTo(c[k]!, 9));
    expect(car.yaw).toBeCloseTo(0.1 - egoYaw, 9);
    expect(car.velocity[0]).toBeCloseTo(5 * Math.cos(egoYaw), 9);
    expect(car.velocity[1]).toBeCloseTo(-5 * Math.sin(egoYaw), 9);
    expect(car).toMatchObject({
      detectionName: 'car', label: 0, attributeName: 'vehicle.moving', categoryName: 'vehicle.car', size: [1.9, 4.5, 1.6],
      numLidarPts: 45, numRadarPts: 0, instanceToken: nusc.get('sample_annotation', fx.car[0]!).instance_token,
    });
    const f1 = await loadFrame(nusc, fx.samples[1]!, { cameras: false, lidar: false });
    const ped = f1.boxes.find((b) => b.token === fx.pedestrian)!;
    expect(ped).toMatchObject({ detectionName: 'pedestrian', label: 5, attributeName: 'pedestrian.standing', numLidarPts: 0, numRadarPts: 2 });
    expect(ped.velocity.every(Number.isNaN)).toBe(true);
  });

  it('links the previous keyframe with the ego motion current ← previous', async () => {
    const f0 = await loadFrame(nusc, fx.samples[0]!, { cameras: false, lidar: false });
    expect([f0.prevSampleToken, f0.egoFromPrev, f0.dtPrev]).toEqual([null, null, null]);
    const f1 = await loadFrame(nusc, fx.samples[1]!, { cameras: false, lidar: false });
    expect(f1.prevSampleToken).toBe(fx.samples[0]);
    expect(f1.dtPrev).toBeCloseTo(0.5, 9);
    const p: Vec3 = [3, -2, 1];
    const expected = transformPoint(invertTransform(f1.ego2global), transformPoint(f0.ego2global, p));
    transformPoint(f1.egoFromPrev!, p).forEach((c, k) => expect(c).toBeCloseTo(expected[k]!, 9));
    expect(f1.lidar2ego).toEqual(fx.lidarCalib);
  });

  it('reads Occ3D labels indexed [x, y, z]', async () => {
    const gts = await mkdtemp(join(tmpdir(), 'bevzoo-occ-'));
    const dir = join(gts, fx.sceneName, fx.samples[1]!);
    await mkdir(dir, { recursive: true });
    const sem = new Uint8Array(200 * 200 * 16).fill(17);
    sem[(3 * 200 + 5) * 16 + 7] = 4;
    const ml = new Uint8Array(200 * 200 * 16);
    ml[(199 * 200 + 0) * 16 + 15] = 1;
    const mc = new Uint8Array(200 * 200 * 16).fill(1);
    await writeFile(join(dir, 'labels.npz'), writeNpz({
      semantics: { data: sem, shape: [200, 200, 16] }, mask_lidar: { data: ml, shape: [200, 200, 16], dtype: 'b1' }, mask_camera: { data: mc, shape: [200, 200, 16] },
    }));
    const f = await loadFrame(nusc, fx.samples[1]!, { cameras: false, lidar: false, occGts: gts });
    expect(f.occ!.semantics[(3 * 200 + 5) * 16 + 7]).toBe(4);
    expect(f.occ!.semantics.reduce((s, v) => s + (v === 17 ? 1 : 0), 0)).toBe(200 * 200 * 16 - 1);
    expect(f.occ!.maskLidar[(199 * 200 + 0) * 16 + 15]).toBe(1);
    expect(f.occ!.maskCamera.every((v) => v === 1)).toBe(true);
  });
});

describe('FrameCache', () => {
  it('serves decoded images and points from memory, then from disk in a new process', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'bevzoo-cache-'));
    const cache = new FrameCache({ cacheDir });
    const opts = { imageSize: [27, 48] as const, cache, sweeps: 3 };
    const a = await loadFrame(nusc, fx.samples[1]!, opts);
    expect(cache.stats).toMatchObject({ decodes: 6, pointFiles: 4, misses: 2, diskWrites: 2, memoryHits: 0 });
    const b = await loadFrame(nusc, fx.samples[1]!, opts);
    expect(cache.stats).toMatchObject({ decodes: 6, pointFiles: 4, memoryHits: 2 });
    expect(b.cameras[2]!.image).toBe(a.cameras[2]!.image);
    const fresh = new FrameCache({ cacheDir });
    const c = await loadFrame(nusc, fx.samples[1]!, { ...opts, cache: fresh });
    expect(fresh.stats).toMatchObject({ decodes: 0, pointFiles: 0, diskHits: 2, misses: 0 });
    expect(c.cameras[4]!.image).toEqual(a.cameras[4]!.image);
    expect(c.cameras[4]!.intrinsics).toEqual(a.cameras[4]!.intrinsics);
    expect(c.lidar!.points).toEqual(a.lidar!.points);
    // another image size is another entry
    await loadFrame(nusc, fx.samples[1]!, { ...opts, imageSize: [20, 30], cache: fresh });
    expect(fresh.stats.decodes).toBe(6);
    // a memory budget of 0 keeps nothing in memory
    const none = new FrameCache({ memoryBytes: 0 });
    await loadFrame(nusc, fx.samples[0]!, { lidar: false, cache: none });
    await loadFrame(nusc, fx.samples[0]!, { lidar: false, cache: none });
    expect(none.stats.decodes).toBe(12);
  });
});
