/** The reader, frames and loader on a generated synthetic dataset (preset 'tiny'). */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  composeTransforms, invertTransform, mat3Inverse, mat3MulVec, pointInBox, quatRotate, quatInverse, transformPoint,
  type Mat3, type Vec3,
} from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFrame, type Frame } from './frame.js';
import { parsePcdBin } from './io.js';
import { warpImage } from './augment.js';
import { createLoader, IMAGENET_MEAN, IMAGENET_STD, projectToImage } from './loader.js';
import { openNuScenes, type NuScenes } from './reader.js';
import { generateSynthetic, readSegmentIds, segmentPathFor } from './synth/index.js';
import { CAMERA_CHANNELS, CLASS_ATTRIBUTES, DETECTION_CLASSES, LIDAR_CHANNEL, OCC_CLASSES, OCC_GRID } from './tables.js';

let nusc: NuScenes;
let gts: string;
let train: string[];
beforeAll(async () => {
  const root = await mkdtemp(join(tmpdir(), 'bevzoo-reader-synth-'));
  const r = await generateSynthetic({ preset: 'tiny', seed: 3, out: join(root, 'data'), workers: 1 });
  nusc = await openNuScenes({ dataroot: r.out, version: r.version });
  gts = join(r.out, 'gts');
  train = nusc.sampleTokensForSplit('synth_train');
}, 120_000);

const sameBytes = (x: ArrayBufferView, y: ArrayBufferView) =>
  Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
const segmentIds = async (sdToken: string) => readSegmentIds(await readFile(join(nusc.dataroot, segmentPathFor(nusc.get('sample_data', sdToken).filename))));

describe('synthetic dataset: reader', () => {
  it('loads the generated tables with derived fields and splits', () => {
    const s = nusc.summary();
    expect(s.sample).toBe(8);
    expect(s.scene).toBe(2);
    expect(train.length).toBe(4);
    expect(nusc.sampleTokensForSplit('synth_val').length).toBe(4);
    for (const sample of nusc.table('sample')) {
      expect(Object.keys(sample.data!).sort()).toEqual([...CAMERA_CHANNELS, LIDAR_CHANNEL].sort());
      const rows = nusc.table('sample_annotation').filter((a) => a.sample_token === sample.token).map((a) => a.token);
      expect(sample.anns).toEqual(rows);
    }
  });

  it('gives velocities by the devkit rule', () => {
    let centred = 0, single = 0;
    for (const a of nusc.table('sample_annotation')) {
      const v = nusc.boxVelocity(a.token);
      if (a.prev === '' && a.next === '') {
        expect(v.every(Number.isNaN)).toBe(true);
        single++;
        continue;
      }
      const first = a.prev ? nusc.get('sample_annotation', a.prev) : a, last = a.next ? nusc.get('sample_annotation', a.next) : a;
      const dt = 1e-6 * nusc.get('sample', last.sample_token).timestamp - 1e-6 * nusc.get('sample', first.sample_token).timestamp;
      expect(dt).toBeLessThanOrEqual(a.prev && a.next ? 3 : 1.5);
      for (let k = 0; k < 3; k++) expect(v[k]).toBe((last.translation[k]! - first.translation[k]!) / dt);
      if (a.prev && a.next) centred++;
    }
    expect(centred).toBeGreaterThan(50);
    expect(single).toBeGreaterThanOrEqual(0);
  });
});

describe('synthetic dataset: frames', () => {
  let frame: Frame;
  beforeAll(async () => {
    frame = await loadFrame(nusc, train[2]!, { imageSize: [72, 128], occGts: gts, sweeps: 9 });
  });

  it('fills every field of the frame', async () => {
    const sample = nusc.get('sample', train[2]!);
    const scene = nusc.get('scene', sample.scene_token);
    expect(frame).toMatchObject({ sampleToken: sample.token, sceneToken: scene.token, sceneName: scene.name, timestamp: sample.timestamp, lidarToken: sample.data!.LIDAR_TOP });
    expect(frame.ego2global).toEqual(nusc.egoPose(frame.lidarToken));
    expect(frame.lidar2ego).toEqual(nusc.calibratedSensor(frame.lidarToken).transform);
    // cameras
    expect(frame.cameras.map((c) => c.channel)).toEqual([...CAMERA_CHANNELS]);
    for (const cam of frame.cameras) {
      expect([cam.height, cam.width, cam.image.length]).toEqual([72, 128, 72 * 128 * 3]);
      expect(cam.originalSize).toEqual([99, 176]);
      const K = nusc.calibratedSensor(cam.sampleDataToken).intrinsic!;
      const s = Math.max(128 / 176, 72 / 99);
      expect(cam.intrinsics[0]).toBeCloseTo(K[0] * s, 9);
      expect(cam.intrinsics[4]).toBeCloseTo(K[4] * s, 9);
      expect(cam.intrinsics[5]).toBeCloseTo(s * (K[5] + 0.5) - 0.5 - (99 * s - 72), 9);
      let lo = 255, hi = 0;
      for (let i = 0; i < cam.image.length; i += 7) { lo = Math.min(lo, cam.image[i]!); hi = Math.max(hi, cam.image[i]!); }
      expect(hi - lo).toBeGreaterThan(50);
      expect(cam.timestamp).toBe(nusc.get('sample_data', cam.sampleDataToken).timestamp);
      // same ego pose as the LiDAR keyframe here, so camera → key ego = camera → ego
      const p: Vec3 = [1, -2, 3];
      expect(Math.hypot(...transformPoint(composeTransforms(invertTransform(frame.ego2global), cam.ego2global), [0, 0, 0]))).toBeLessThan(1e-6);
      const a = transformPoint(cam.sensor2keyEgo, p);
      transformPoint(cam.sensor2ego, p).forEach((c, k) => expect(a[k]).toBeCloseTo(c, 6));
    }
    // LiDAR
    const lidar = frame.lidar!;
    expect(lidar.points.length).toBe(lidar.numPoints * 5);
    expect(lidar.sweepsUsed).toBe(Math.min(9, 2 + 2 * 3)); // preSweeps 2 + (2 sweeps + keyframe) × 2 intervals
    const key = parsePcdBin(await readFile(nusc.getSampleDataPath(frame.lidarToken)), 'key');
    let keep = 0;
    for (let i = 0; i < key.length; i += 5) if (!(Math.abs(key[i]!) < 1 && Math.abs(key[i + 1]!) < 1)) keep++;
    let zeroLag = 0, maxLag = 0;
    expect(lidar.points.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < lidar.points.length; i += 5) {
      if (lidar.points[i + 4] === 0) zeroLag++;
      maxLag = Math.max(maxLag, lidar.points[i + 4]!);
    }
    expect(zeroLag).toBe(keep);
    let oldest = nusc.get('sample_data', frame.lidarToken);
    for (let k = 0; k < lidar.sweepsUsed; k++) oldest = nusc.get('sample_data', oldest.prev);
    expect(maxLag).toBe(Math.fround(1e-6 * nusc.get('sample_data', frame.lidarToken).timestamp - 1e-6 * oldest.timestamp));
    // boxes
    expect(frame.boxes.length).toBeGreaterThan(5);
    for (const b of frame.boxes) {
      expect(b.label).toBe(DETECTION_CLASSES.indexOf(b.detectionName));
      expect(b.attributeName === '' || CLASS_ATTRIBUTES[b.detectionName].includes(b.attributeName)).toBe(true);
      const a = nusc.get('sample_annotation', b.token);
      expect(b.numLidarPts).toBe(a.num_lidar_pts);
      const vg = nusc.boxVelocity(b.token);
      const ve = quatRotate(quatInverse(frame.ego2global.rotation), [vg[0], vg[1], 0]);
      if (Number.isNaN(vg[0])) expect(b.velocity.every(Number.isNaN)).toBe(true);
      else b.velocity.forEach((v, k) => expect(v).toBeCloseTo(ve[k]!, 9));
    }
    // previous keyframe
    expect(frame.prevSampleToken).toBe(train[1]);
    expect(frame.dtPrev).toBeCloseTo(0.5, 6);
    const prevPose = nusc.egoPose(nusc.lidarToken(train[1]!));
    const q = transformPoint(frame.egoFromPrev!, [0, 0, 0]);
    transformPoint(invertTransform(frame.ego2global), prevPose.translation).forEach((c, k) => expect(q[k]).toBeCloseTo(c, 6));
  });

  it('loads Occ3D labels whose voxels agree with the boxes', () => {
    const occ = frame.occ!;
    expect(occ.semantics.length).toBe(200 * 200 * 16);
    expect(occ.semantics.every((v) => v <= 17)).toBe(true);
    expect(occ.maskLidar.every((v) => v <= 1) && occ.maskCamera.every((v) => v <= 1)).toBe(true);
    let tested = 0, agree = 0;
    for (const b of frame.boxes) {
      const idx = b.center.map((c, k) => Math.floor((c - OCC_GRID.min[k]!) / OCC_GRID.voxel));
      if (idx.some((v, k) => v < 0 || v >= OCC_GRID.size[k]!)) continue;
      tested++;
      if (occ.semantics[(idx[0]! * 200 + idx[1]!) * 16 + idx[2]!] === OCC_CLASSES.indexOf(b.detectionName)) agree++;
    }
    expect(tested).toBeGreaterThan(3);
    expect(agree / tested).toBeGreaterThan(0.9);
  });

  it('has num_lidar_pts equal to keyframe points counted in the ego-frame boxes', async () => {
    let boxes = 0, exact = 0;
    for (const token of [train[0]!, train[3]!, nusc.sampleTokensForSplit('synth_val')[1]!]) {
      const f = await loadFrame(nusc, token, { cameras: false, sweeps: 0, minDistance: 0 });
      const pts = f.lidar!.points;
      const ego: Vec3[] = [];
      for (let i = 0; i < pts.length; i += 5) ego.push(transformPoint(f.lidar2ego, [pts[i]!, pts[i + 1]!, pts[i + 2]!]));
      for (const b of f.boxes) {
        const n = ego.reduce((s, p) => s + (pointInBox(b, p) ? 1 : 0), 0);
        boxes++;
        if (n === b.numLidarPts) exact++;
        else expect(Math.abs(n - b.numLidarPts)).toBeLessThanOrEqual(1); // a point on a face may round either way
      }
    }
    expect(boxes).toBeGreaterThan(20);
    expect(exact / boxes).toBeGreaterThan(0.95);
  });

  it('projects LiDAR points of a box onto that object in the camera images', async () => {
    const f = await loadFrame(nusc, train[2]!, { sweeps: 0 }); // original resolution: compare with the instance segments
    const sample = nusc.get('sample', train[2]!);
    let hits = 0, total = 0;
    const inBox: { e: Vec3; box: number }[] = [];
    const pts = f.lidar!.points;
    for (let i = 0; i < pts.length; i += 5) {
      const e = transformPoint(f.lidar2ego, [pts[i]!, pts[i + 1]!, pts[i + 2]!]);
      const box = f.boxes.findIndex((b) => pointInBox(b, e));
      // skip ground returns inside the footprint (the lowest 0.15 m of a box)
      if (box >= 0 && e[2] > f.boxes[box]!.center[2] - f.boxes[box]!.size[2] / 2 + 0.15) inBox.push({ e, box });
    }
    for (const cam of f.cameras) {
      const seg = await segmentIds(cam.sampleDataToken);
      const toCam = invertTransform(cam.sensor2keyEgo);
      for (const { e, box } of inBox) {
        const c = transformPoint(toCam, e);
        if (c[2] < 0.5) continue;
        const uvw = mat3MulVec(cam.intrinsics, c);
        const u = Math.round(uvw[0] / uvw[2]), v = Math.round(uvw[1] / uvw[2]);
        if (u < 0 || v < 0 || u >= seg.width || v >= seg.height) continue;
        total++;
        if (seg.ids[v * seg.width + u] === sample.anns!.indexOf(f.boxes[box]!.token) + 1) hits++;
      }
    }
    expect(total).toBeGreaterThan(100);
    expect(hits / total).toBeGreaterThan(0.85);
  });
});

describe('synthetic dataset: loader', () => {
  it('keeps augmented images, points and geometry consistent, deterministically', async () => {
    const make = () => createLoader({ nusc, sampleTokens: train, batchSize: 2, imageSize: [72, 128], sweeps: 2, augment: true, seed: 21 });
    const l1 = make(), l2 = make();
    const [a, b] = [await l1.batch(1, 0), await l2.batch(1, 0)];
    expect(a.sampleTokens).toEqual(b.sampleTokens);
    expect(sameBytes(a.images, b.images)).toBe(true); // (toEqual on 330k floats takes seconds)
    expect(a.points!.every((p, i) => sameBytes(p, b.points![i]!))).toBe(true);
    expect(a.boxes.map((x) => Array.from(x.center))).toEqual(b.boxes.map((x) => Array.from(x.center)));
    // Points inside a box (augmented ego frame) project onto that object's pixels: map the augmented pixel back
    // through postAug⁻¹ and the resize to the original instance-segment map.
    let hits = 0, total = 0;
    for (let s = 0; s < 2; s++) {
      const f = await loadFrame(nusc, a.sampleTokens[s]!, { sweeps: 0 });
      // the batch images are the frame's resized images warped by exactly the recorded postAug
      const base = await loadFrame(nusc, a.sampleTokens[s]!, { lidar: false, imageSize: [72, 128] });
      for (let c = 0; c < 6; c++) {
        const k = s * 6 + c;
        const expected = warpImage(base.cameras[c]!.image, 128, 72, Array.from(a.postAug.subarray(k * 9, k * 9 + 9)) as Mat3);
        let maxDiff = 0, off = 0;
        for (let i = 0; i < expected.length; i++) {
          const got = a.images[k * expected.length + i]! * IMAGENET_STD[i % 3]! * 255 + IMAGENET_MEAN[i % 3]! * 255;
          const d = Math.abs(got - expected[i]!);
          maxDiff = Math.max(maxDiff, d);
          if (d > 1e-3) off++;
        }
        // postAug is stored as float32: a rounding may differ by one level on a few pixels
        expect(maxDiff).toBeLessThan(1.001);
        expect(off / expected.length).toBeLessThan(0.01);
      }
      const sample = nusc.get('sample', a.sampleTokens[s]!);
      const boxes = a.boxes[s]!;
      const boxList = Array.from({ length: boxes.count }, (_, j) => ({
        center: Array.from(boxes.center.subarray(j * 3, j * 3 + 3)) as Vec3, size: Array.from(boxes.size.subarray(j * 3, j * 3 + 3)) as Vec3, yaw: boxes.yaw[j]!,
      }));
      const inBox: { p: Vec3; box: number }[] = [];
      const pts = a.points![s]!;
      for (let i = 0; i < pts.length; i += 5) {
        if (pts[i + 4] !== 0) continue;
        const p: Vec3 = [pts[i]!, pts[i + 1]!, pts[i + 2]!];
        const box = boxList.findIndex((b) => pointInBox(b, p));
        if (box >= 0 && p[2] > boxList[box]!.center[2] - boxList[box]!.size[2] / 2 + 0.15) inBox.push({ p, box });
      }
      for (let c = 0; c < 6; c++) {
        const seg = await segmentIds(f.cameras[c]!.sampleDataToken);
        const orig = f.cameras[c]!;
        const k = s * 6 + c;
        const P = Array.from(a.postAug.subarray(k * 9, k * 9 + 9)) as Mat3;
        const Kr = Array.from(a.intrinsics.subarray(k * 9, k * 9 + 9)) as Mat3;
        const Pinv = mat3Inverse(P), Krinv = mat3Inverse(Kr);
        for (const { p, box } of inBox) {
          const [u, v, z] = projectToImage(a, s, c, p);
          if (z < 0.5 || u < 1 || v < 1 || u > 126 || v > 70) continue;
          const o = mat3MulVec(orig.intrinsics, mat3MulVec(Krinv, mat3MulVec(Pinv, [u, v, 1])));
          const ou = Math.round(o[0]), ov = Math.round(o[1]);
          if (ou < 0 || ov < 0 || ou >= seg.width || ov >= seg.height) continue;
          total++;
          if (seg.ids[ov * seg.width + ou] === sample.anns!.indexOf(boxes.tokens[box]!) + 1) hits++;
        }
      }
    }
    expect(total).toBeGreaterThan(50);
    expect(hits / total).toBeGreaterThan(0.85);
    // a second epoch decodes nothing
    for await (const _ of l1.epoch(0)) void _;
    const decodes = l1.stats.decodes;
    for await (const _ of l1.epoch(1)) void _;
    expect(l1.stats.decodes).toBe(decodes);
  });
});
