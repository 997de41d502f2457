import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng, invertTransform, mat3MulVec, pointInBox, transformPoint, type Mat3, type Vec3 } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  applyBdaToPoints, applyBevAugToBox, bevAugMatrix, flipOccGrid, imageAugMatrix, sampleImageAug, warpImage, DEFAULT_AUGMENT,
} from './augment.js';
import { NuScenesError } from './errors.js';
import { loadFrame } from './frame.js';
import { resizeTransform } from './io.js';
import { createLoader, IMAGENET_MEAN, IMAGENET_STD, projectToImage, type Batch } from './loader.js';
import { writeNpz } from './npz.js';
import { openNuScenes, type NuScenes } from './reader.js';
import { buildFixture, type Fixture } from './test-fixture.js';

let fx: Fixture;
let nusc: NuScenes;
beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
});

const H = 36, W = 64;

/** De-normalised RGB of camera `cam` of sample `b`. */
function cameraRgb(images: Float32Array, b: number, cam: number): Float32Array {
  const n = H * W * 3, base = (b * 6 + cam) * n;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = images[base + i]! * IMAGENET_STD[i % 3]! * 255 + IMAGENET_MEAN[i % 3]! * 255;
  return out;
}
function markerCentroid(img: ArrayLike<number>, w: number, h: number): [number, number, number] {
  let sw = 0, su = 0, sv = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      const wt = Math.max(0, Math.min(img[o]!, img[o + 1]!, img[o + 2]!) - 100);
      sw += wt; su += wt * x; sv += wt * y;
    }
  return [su / sw, sv / sw, sw];
}
const mat3 = (a: Float32Array, k: number) => Array.from(a.subarray(k * 9, k * 9 + 9)) as Mat3;

describe('image and BEV augmentation (unit)', () => {
  it('resizeTransform keeps pixel centres aligned and crop mode keeps the bottom rows (BEVDet)', () => {
    const t = resizeTransform(1600, 900, 704, 256, 'crop');
    expect(t.sx).toBeCloseTo(0.44, 12);
    expect(899.5 * t.sy + t.ty).toBeCloseTo(255.5, 9); // source bottom edge → output bottom edge (centre coordinates)
    expect(799.5 * t.sx + t.tx).toBeCloseTo(351.5, 9); // centre → centre
    const s = resizeTransform(96, 54, 48, 27, 'stretch');
    expect(47.5 * s.sx + s.tx).toBeCloseTo(23.5, 12);
    expect(26.5 * s.sy + s.ty).toBeCloseTo(13, 12);
  });

  it('postAug maps a pixel to where the warped image shows it', () => {
    const img = new Uint8Array(W * H * 3).fill(20);
    const dot = [41, 12];
    for (let y = dot[1]! - 1; y <= dot[1]! + 1; y++) for (let x = dot[0]! - 1; x <= dot[0]! + 1; x++) img.fill(250, (y * W + x) * 3, (y * W + x) * 3 + 3);
    const rng = createRng(7);
    let checked = 0;
    for (let trial = 0; trial < 20; trial++) {
      const p = sampleImageAug(rng, { resizeLim: [0.8, 1.2], rotLim: [-10, 10], flip: true, botPctLim: [0, 0.1] }, W, H);
      const P = imageAugMatrix(p, W, H);
      const q = mat3MulVec(P, [dot[0]!, dot[1]!, 1]);
      if (q[0] < 3 || q[1] < 3 || q[0] > W - 4 || q[1] > H - 4) continue;
      const [cu, cv] = markerCentroid(warpImage(img, W, H, P), W, H);
      expect(Math.abs(cu - q[0])).toBeLessThan(0.2);
      expect(Math.abs(cv - q[1])).toBeLessThan(0.2);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
    // a pure flip is an exact mirror
    const flipped = warpImage(img, W, H, imageAugMatrix({ resize: 1, cropX: 0, cropY: 0, flip: true, rotate: 0 }, W, H));
    expect(flipped[(dot[1]! * W + (W - 1 - dot[0]!)) * 3]).toBe(250);
  });

  it('bda keeps points inside their box through rotation, scaling and flips', () => {
    const rng = createRng(3);
    const box = { center: [4, -7, 0.5] as Vec3, size: [2, 4.5, 1.6] as Vec3, yaw: 0.7 };
    const pts = new Float32Array(5 * 400);
    for (let i = 0; i < 400; i++) {
      pts.set([box.center[0] + rng.uniform(-4, 4), box.center[1] + rng.uniform(-4, 4), box.center[2] + rng.uniform(-1.2, 1.2), 1, 0], i * 5);
    }
    const inside = (b: typeof box, p: Float32Array) => {
      const r: boolean[] = [];
      for (let i = 0; i < p.length; i += 5) r.push(pointInBox(b, [p[i]!, p[i + 1]!, p[i + 2]!]));
      return r;
    };
    const before = inside(box, pts);
    expect(before.filter(Boolean).length).toBeGreaterThan(20);
    for (const flipX of [false, true])
      for (const flipY of [false, true]) {
        const params = { rotate: 17, scale: 1.04, flipX, flipY };
        const bda = bevAugMatrix(params);
        const moved = pts.slice();
        applyBdaToPoints(bda, moved, 5);
        const b2 = applyBevAugToBox(params, bda, box.center, box.size, box.yaw, [3, 1]);
        expect(inside({ center: b2.center, size: b2.size, yaw: b2.yaw }, moved)).toEqual(before);
        // the heading vector turns with the points
        const head = mat3MulVec(bda, [Math.cos(box.yaw), Math.sin(box.yaw), 0]);
        const ang = Math.atan2(head[1], head[0]);
        const d = Math.abs(Math.atan2(Math.sin(ang - b2.yaw), Math.cos(ang - b2.yaw)));
        expect(d).toBeLessThan(1e-9); // the heading itself (orientation error has period 2π), not just the box
        expect(b2.velocity[0]).toBeCloseTo(bda[0] * 3 + bda[1] * 1, 9);
      }
  });

  it('flips Occ3D grids with the x / y flips', () => {
    const g = new Uint8Array(200 * 200 * 16);
    g[(3 * 200 + 5) * 16 + 7] = 9;
    expect(flipOccGrid(g, true, false)[(196 * 200 + 5) * 16 + 7]).toBe(9);
    expect(flipOccGrid(g, false, true)[(3 * 200 + 194) * 16 + 7]).toBe(9);
    expect(flipOccGrid(g, false, false)).toBe(g);
  });
});

describe('createLoader', () => {
  it('builds batches of typed arrays with the documented shapes', async () => {
    const loader = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 2, imageSize: [H, W], sweeps: 2, shuffle: false });
    expect([loader.numBatches, loader.numSamples]).toEqual([2, 3]);
    const b = await loader.batch(0, 0);
    expect(b.sampleTokens).toEqual(fx.samples.slice(0, 2));
    expect(b.shapes).toMatchObject({ images: [2, 6, H, W, 3], intrinsics: [2, 6, 3, 3], sensor2ego: [2, 6, 4, 4], postAug: [2, 6, 3, 3], bda: [2, 3, 3] });
    expect(b.images.length).toBe(2 * 6 * H * W * 3);
    expect(b.bda.subarray(0, 9)).toEqual(new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]));
    // without augmentation the images are the frame images, normalised
    const f = await loadFrame(nusc, fx.samples[1]!, { imageSize: [H, W], sweeps: 2 });
    const rgb = cameraRgb(b.images, 1, 3);
    for (let i = 0; i < rgb.length; i += 97) expect(rgb[i]).toBeCloseTo(f.cameras[3]!.image[i]!, 3);
    expect(b.sensor2ego.subarray(16 * 9, 16 * 10)).toEqual(new Float32Array(f.cameras[3]!.sensor2keyEgoMatrix));
    expect(b.intrinsics.subarray(9 * 9, 9 * 10)).toEqual(new Float32Array(f.cameras[3]!.intrinsics));
    // points in the ego frame; the pedestrian (0 lidar, 2 radar points) is kept, boxes carry labels
    const pts = b.points![1]!;
    expect(pts.length).toBe(f.lidar!.points.length);
    const e = transformPoint(f.lidar2ego, [f.lidar!.points[0]!, f.lidar!.points[1]!, f.lidar!.points[2]!]);
    e.forEach((c, k) => expect(pts[k]).toBeCloseTo(c, 4));
    expect(Array.from(b.boxes[1]!.label)).toEqual([0, 5]);
    expect(Array.from(b.boxes[1]!.velocityValid)).toEqual([1, 0]);
    expect(Array.from(b.boxes[1]!.velocity.subarray(2))).toEqual([0, 0]);
    expect(b.boxes[1]!.attributeNames).toEqual(['vehicle.moving', 'pedestrian.standing']);
    const last = await loader.batch(0, 1);
    expect(last.batchSize).toBe(1);
    await expect(loader.batch(0, 2)).rejects.toThrow(RangeError);
  });

  it('keeps projection and augmented images consistent (image + BEV augmentation)', async () => {
    const loader = createLoader({ nusc, sampleTokens: [fx.samples[0]!], batchSize: 1, imageSize: [H, W], augment: true, seed: 11, points: false });
    const f = await loadFrame(nusc, fx.samples[0]!, { cameras: false, lidar: false });
    const markerEgo = transformPoint(invertTransform(f.ego2global), fx.markerGlobal);
    let checked = 0;
    for (let epoch = 0; epoch < 12; epoch++) {
      const b = await loader.batch(epoch, 0);
      const aug = mat3MulVec(mat3(b.bda, 0), markerEgo); // the marker in the augmented ego frame
      const [u, v, z] = projectToImage(b, 0, 0, aug);
      expect(z).toBeCloseTo(8, 4);
      if (u < 3 || v < 3 || u > W - 4 || v > H - 4) continue;
      const [cu, cv, mass] = markerCentroid(cameraRgb(b.images, 0, 0), W, H);
      expect(mass).toBeGreaterThan(50);
      expect(Math.abs(cu - u)).toBeLessThan(0.4);
      expect(Math.abs(cv - v)).toBeLessThan(0.4);
      checked++;
    }
    expect(checked).toBeGreaterThan(6);
  });

  it('applies the same bda to points and boxes', async () => {
    const plain = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [H, W], sweeps: 0, shuffle: false });
    const aug = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [H, W], sweeps: 0, shuffle: false, augment: { image: false }, seed: 5 });
    const a = await plain.batch(0, 0), b = await aug.batch(0, 0);
    for (let s = 0; s < 3; s++) {
      const bda = mat3(b.bda, s);
      expect(bda).not.toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
      expect(b.postAug.subarray(s * 54, s * 54 + 9)).toEqual(new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]));
      const c0 = Array.from(a.boxes[s]!.center.subarray(0, 3)) as Vec3;
      const c1 = Array.from(b.boxes[s]!.center.subarray(0, 3));
      mat3MulVec(bda, c0).forEach((v, k) => expect(c1[k]).toBeCloseTo(v, 4));
      const count = (bt: Batch) => {
        const box = { center: Array.from(bt.boxes[s]!.center.subarray(0, 3)) as Vec3, size: Array.from(bt.boxes[s]!.size.subarray(0, 3)) as Vec3, yaw: bt.boxes[s]!.yaw[0]! };
        const p = bt.points![s]!;
        let n = 0;
        for (let i = 0; i < p.length; i += 5) if (pointInBox(box, [p[i]!, p[i + 1]!, p[i + 2]!])) n++;
        return n;
      };
      expect(count(a)).toBe(fx.carPointsPerKeyframe[s]);
      expect(count(b)).toBe(fx.carPointsPerKeyframe[s]);
    }
  });

  it('is deterministic in the seed and shuffles per epoch', async () => {
    const make = (seed: number) => createLoader({ nusc, sampleTokens: fx.samples, batchSize: 2, imageSize: [H, W], sweeps: 1, augment: true, seed });
    const l1 = make(4), l2 = make(4), l3 = make(5);
    const orders = Array.from({ length: 8 }, (_, e) => l1.order(e).join());
    expect(new Set(orders).size).toBeGreaterThan(1);
    expect([...l1.order(3)].sort()).toEqual([...fx.samples].sort());
    const [a, b, c] = await Promise.all([l1.batch(2, 0), l2.batch(2, 0), l3.batch(2, 0)]);
    expect(a.sampleTokens).toEqual(b.sampleTokens);
    expect(a.images).toEqual(b.images);
    expect(a.bda).toEqual(b.bda);
    expect(a.points).toEqual(b.points);
    expect(a.postAug).not.toEqual(c.postAug);
    // the augmentation of a sample depends on (seed, epoch, sample), not on the batch it lands in
    const l4 = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 1, imageSize: [H, W], sweeps: 1, augment: true, seed: 4 });
    const i = l4.order(2).indexOf(a.sampleTokens[0]!);
    expect((await l4.batch(2, i)).bda).toEqual(a.bda.subarray(0, 9));
  });

  it('prefetches the next batch and decodes nothing after the first epoch', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'bevzoo-loader-cache-'));
    const loader = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 1, imageSize: [H, W], sweeps: 1, augment: true, seed: 1, withPrev: true, cacheDir });
    const it0 = loader.epoch(0);
    const first = await it0.next();
    expect(first.done).toBe(false);
    expect(loader.stats.batchesStarted).toBe(2); // batch 1 is under way while batch 0 is consumed
    await new Promise((r) => setTimeout(r, 50));
    expect(loader.stats.batchesDone).toBe(2);
    let n = 1;
    for await (const _ of it0) n++;
    expect(n).toBe(3);
    expect(loader.stats.decodes).toBe(18); // 3 samples × 6 cameras, previous frames included
    for await (const _ of loader.epoch(1)) void _;
    expect(loader.stats.decodes).toBe(18);
    expect(loader.stats.memoryHits).toBeGreaterThan(0);
    // a new loader (a new process) reads the disk cache
    const again = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [H, W], sweeps: 1, augment: true, seed: 1, withPrev: true, cacheDir });
    const b = await again.batch(0, 0);
    expect(again.stats.decodes).toBe(0);
    expect(again.stats.pointFiles).toBe(0);
    expect(again.stats.diskHits).toBe(6);
    expect(b.prev).toBeDefined();
    const noPrefetch = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 1, imageSize: [H, W], sweeps: 0, prefetch: 0 });
    await noPrefetch.epoch(0).next();
    expect(noPrefetch.stats.batchesStarted).toBe(1);
  });

  it('adds the previous keyframe with the ego motion and the same image augmentation', async () => {
    const loader = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [H, W], sweeps: 0, shuffle: false, withPrev: true, augment: { bev: false }, seed: 2 });
    const b = await loader.batch(0, 0);
    const prev = b.prev!;
    expect(prev.sampleTokens).toEqual([null, fx.samples[0], fx.samples[1]]);
    expect(Array.from(prev.valid)).toEqual([0, 1, 1]);
    expect(Array.from(prev.egoMotion.subarray(0, 16))).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const f1 = await loadFrame(nusc, fx.samples[1]!, { cameras: false, lidar: false });
    expect(prev.egoMotion.subarray(16, 32)).toEqual(new Float32Array(f1.egoFromPrevMatrix!));
    expect(prev.dt[1]).toBeCloseTo(0.5, 6);
    expect(prev.postAug).toEqual(b.postAug);
    // sample 0 has no previous frame: its own images stand in
    expect(prev.images.subarray(0, 6 * H * W * 3)).toEqual(b.images.subarray(0, 6 * H * W * 3));
    const f0 = await loadFrame(nusc, fx.samples[0]!, { lidar: false, imageSize: [H, W] });
    expect(prev.sensor2ego.subarray(96, 96 + 16)).toEqual(new Float32Array(f0.cameras[0]!.sensor2keyEgoMatrix));
    // prev images of sample 1 = sample 0 images warped with sample 1's postAug
    const P = mat3(b.postAug, 6);
    const warped = warpImage(f0.cameras[0]!.image, W, H, P);
    const rgb = cameraRgb(prev.images, 1, 0);
    for (let i = 0; i < rgb.length; i += 31) expect(rgb[i]).toBeCloseTo(warped[i]!, 3);
  });

  it('adds Occ3D grids flipped with the BEV flips, and restricts bda to flips', async () => {
    const gts = await mkdtemp(join(tmpdir(), 'bevzoo-occ-loader-'));
    for (const s of fx.samples) {
      await mkdir(join(gts, fx.sceneName, s), { recursive: true });
      const sem = new Uint8Array(200 * 200 * 16).fill(17);
      sem[(10 * 200 + 20) * 16 + 3] = 4;
      const ones = new Uint8Array(200 * 200 * 16).fill(1);
      await writeFile(join(gts, fx.sceneName, s, 'labels.npz'), writeNpz({
        semantics: { data: sem, shape: [200, 200, 16] }, mask_lidar: { data: ones, shape: [200, 200, 16] }, mask_camera: { data: ones, shape: [200, 200, 16] },
      }));
    }
    const loader = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [H, W], sweeps: 0, augment: true, seed: 9, occGts: gts, points: false });
    let sawFlip = false;
    for (let epoch = 0; epoch < 4; epoch++) {
      const b = await loader.batch(epoch, 0);
      expect(b.shapes.occ).toEqual([3, 200, 200, 16]);
      for (let s = 0; s < 3; s++) {
        const bda = mat3(b.bda, s);
        expect(bda.map(Math.abs)).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
        const x = bda[0] < 0 ? 189 : 10, y = bda[4] < 0 ? 179 : 20;
        sawFlip ||= bda[0] < 0 || bda[4] < 0;
        expect(b.occ!.semantics[s * 640000 + (x * 200 + y) * 16 + 3]).toBe(4);
      }
    }
    expect(sawFlip).toBe(true);
  });

  it('validates its options', () => {
    expect(() => createLoader({ nusc, sampleTokens: fx.samples, batchSize: 0, imageSize: [H, W] })).toThrow(/batchSize/);
    const refusal = (opts: Partial<Parameters<typeof createLoader>[0]>) => {
      try {
        createLoader({ nusc, sampleTokens: fx.samples, batchSize: 1, imageSize: [H, W], ...opts });
      } catch (e) {
        expect(e).toBeInstanceOf(NuScenesError);
        return e as NuScenesError;
      }
      throw new Error('accepted');
    };
    expect(refusal({ batchSize: 1.5 })).toMatchObject({ field: 'batchSize', expected: 'an integer ≥ 1', found: '1.5' });
    expect(refusal({ imageSize: [H, 0] })).toMatchObject({ field: 'imageSize', found: `[${H},0]` });
    expect(refusal({ imageSize: [H] as unknown as [number, number] })).toMatchObject({ field: 'imageSize' });
    expect(refusal({ sweeps: -1 })).toMatchObject({ field: 'sweeps', found: '-1' });
    expect(refusal({ prefetch: NaN })).toMatchObject({ field: 'prefetch', found: 'NaN' });
    expect(() => createLoader({ nusc, sampleTokens: ['nope'], batchSize: 1, imageSize: [H, W] })).toThrow(/No sample record/);
    expect(DEFAULT_AUGMENT.bev).not.toBe(false);
  });
});
