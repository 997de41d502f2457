import { createRng, pointInBox, yawToQuat, type Vec3 } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FrameBox } from './frame.js';
import { createLoader, type Batch } from './loader.js';
import { buildObjectDatabase, pasteObjects, pointsInBox, sampleObjects, type ObjectDatabase, type ObjectDbEntry } from './object-sample.js';
import { openNuScenes, type NuScenes } from './reader.js';
import { DETECTION_CLASSES, type DetectionClass } from './tables.js';
import { buildFixture, type Fixture } from './test-fixture.js';

let fx: Fixture;
let nusc: NuScenes;
beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
});

function box(cls: DetectionClass, center: Vec3, size: Vec3 = [2, 4, 1.5], yaw = 0, token = `${cls}@${center.join(',')}`): FrameBox {
  return {
    token, instanceToken: `i-${token}`, categoryName: cls, detectionName: cls, label: DETECTION_CLASSES.indexOf(cls), attributeName: '',
    center, size, yaw, rotation: yawToQuat(yaw), velocity: [1, 0], numLidarPts: 10, numRadarPts: 0, visibilityToken: '4',
  };
}
/** An object whose `n` points lie on the box's vertical axis (x, y, z, intensity 7, Δt 0.05). */
function entry(b: FrameBox, n = 6): ObjectDbEntry {
  const points = new Float32Array(n * 5);
  for (let i = 0; i < n; i++) points.set([b.center[0], b.center[1], b.center[2] - b.size[2] / 2 + ((i + 0.5) / n) * b.size[2], 7, 0.05], i * 5);
  return { sampleToken: 'elsewhere', box: b, points };
}
function database(entries: ObjectDbEntry[]): ObjectDatabase {
  const byLabel: ObjectDbEntry[][] = DETECTION_CLASSES.map(() => []);
  for (const e of entries) byLabel[e.box.label]!.push(e);
  return { byLabel, samples: 1, minPoints: 1, dropped: 0 };
}

describe('GT-paste (ObjectSample)', () => {
  it('builds the database from the points inside each box', async () => {
    const db = await buildObjectDatabase(nusc, fx.samples, { sweeps: 0, minPoints: 1 });
    const cars = db.byLabel[DETECTION_CLASSES.indexOf('car')]!;
    expect(cars.map((e) => e.sampleToken)).toEqual(fx.samples.filter((_, s) => fx.carPointsPerKeyframe[s]! >= 1));
    for (const e of cars) {
      expect(e.points.length / 5).toBe(fx.carPointsPerKeyframe[fx.samples.indexOf(e.sampleToken)]);
      for (let i = 0; i < e.points.length; i += 5) expect(pointInBox(e.box, [e.points[i]!, e.points[i + 1]!, e.points[i + 2]!])).toBe(true);
    }
    // The unmapped animal is not a detection class; nothing else is in the fixture's boxes.
    expect(db.byLabel.flat().every((e) => e.box.detectionName === 'car' || e.box.detectionName === 'pedestrian')).toBe(true);
    const strict = await buildObjectDatabase(nusc, fx.samples, { sweeps: 0, minPoints: 10_000 });
    expect(strict.byLabel.flat()).toHaveLength(0);
    expect(strict.dropped).toBe(db.byLabel.flat().length + db.dropped);
    expect(strict.samples).toBe(3);
    expect(strict.minPoints).toBe(10_000);
  });

  it('tops each class up to its group count and skips candidates that collide', () => {
    const existing = [box('car', [0, 0, 0]), box('pedestrian', [10, 0, 0], [0.6, 0.6, 1.7])];
    const colliding = entry(box('car', [1, 1, 0]));
    const free = [entry(box('car', [20, 0, 0])), entry(box('car', [20, 10, 0])), entry(box('car', [20, 20, 0]))];
    const bus = entry(box('bus', [40, 0, 0], [3, 11, 3.5]));
    const db = database([colliding, ...free, bus]);
    // car: 1 there, target 3 → 2 draws; bus: 0 there, target 1 → 1 draw; pedestrian: 1 there, target 1 → none.
    const groups = { car: 3, bus: 1, pedestrian: 1 };
    let sawRejection = false;
    for (let seed = 0; seed < 20; seed++) {
      const got = sampleObjects(db, createRng(seed), existing, groups);
      const cars = got.filter((e) => e.box.detectionName === 'car');
      expect(cars.length).toBeLessThanOrEqual(2);
      expect(new Set(cars).size).toBe(cars.length); // distinct
      expect(cars).not.toContain(colliding);
      if (cars.length < 2) sawRejection = true;
      expect(got.filter((e) => e.box.detectionName === 'bus')).toEqual([bus]);
      expect(got.some((e) => e.box.detectionName === 'pedestrian')).toBe(false);
      expect(sampleObjects(db, createRng(seed), existing, groups)).toEqual(got); // deterministic in the rng
    }
    expect(sawRejection).toBe(true); // some seed drew the colliding car
    // Pasted objects must not collide with each other either.
    const twins = database([entry(box('car', [20, 0, 0], undefined, 0, 'a')), entry(box('car', [20.5, 0, 0], undefined, 0, 'b'))]);
    expect(sampleObjects(twins, createRng(1), [], { car: 2 })).toHaveLength(1);
  });

  it('removes the cloud points inside pasted boxes and appends the objects points', () => {
    const cloud = new Float32Array([
      20, 0, 0, 1, 0, // inside the pasted box: removed
      21.9, 0.9, 0.7, 1, 0, // inside (near a corner): removed
      23, 0, 0, 1, 0, // outside
      0, 0, 0, 1, 0.1, // outside
    ]);
    const o = entry(box('car', [20, 0, 0]), 3);
    const out = pasteObjects(cloud, [o]);
    expect(Array.from(out)).toEqual([...cloud.subarray(10, 20), ...o.points]);
    expect(pasteObjects(cloud, [])).toBe(cloud);
    expect(pointsInBox(out, o.box)).toEqual([2, 3, 4]);
  });

  it("keeps a moving object's multi-sweep trail: an old sweep's point is tested where the object was then", () => {
    const b = box('car', [20, 0, 0], [2, 4, 1.5], Math.PI / 2); // heading +y, moving at 8 m/s along it
    const v: [number, number] = [0, 8];
    const cloud = new Float32Array([
      20, 1.5, 0, 1, 0, // keyframe point inside the box
      20, -3, 0, 1, 0.4, // 0.4 s old, 3 m behind the box: the object was 3.2 m back then → its point
      20, -3, 0, 1, 0, // keyframe point 3 m behind: not the object
      20, 1.5, 0, 1, 0.4, // 0.4 s old, inside today's box but ahead of where the object was: not the object
    ]);
    expect(pointsInBox(cloud, b)).toEqual([0, 3]);
    expect(pointsInBox(cloud, b, v)).toEqual([0, 1]);
    expect(pointsInBox(cloud, b, [NaN, NaN])).toEqual([0, 3]); // no velocity: the keyframe box
    // Pasting removes the scene's points along the pasted object's trail, not the keyframe box.
    const pasted = pasteObjects(cloud, [{ sampleToken: 'x', box: { ...b, velocity: v }, points: new Float32Array(0) }]);
    expect(Array.from(pasted)).toEqual([...cloud.subarray(10, 20)]);
  });

  it('pastes into loader batches before the BEV augmentation, the same way in every run', async () => {
    const far = entry(box('car', [25, -20, 0.5], [1.9, 4.5, 1.6], 0.4), 7);
    const db = database([far]);
    const opts = { nusc, sampleTokens: fx.samples, batchSize: 3, imageSize: [36, 64] as const, sweeps: 1, shuffle: false, augment: true, seed: 3 };
    const plain = createLoader(opts);
    const pasted = createLoader({ ...opts, objectSample: { database: db, sampleGroups: { car: 5 } } });
    const [a, b, again] = await Promise.all([plain.batch(0, 0), pasted.batch(0, 0), createLoader({ ...opts, objectSample: { database: db, sampleGroups: { car: 5 } } }).batch(0, 0)]);
    expect(b.points).toEqual(again.points);
    expect(b.bda).toEqual(a.bda); // the augmentation draws are unchanged
    expect(b.images).toEqual(a.images);
    const boxAt = (bt: Batch, s: number, i: number) => ({
      center: Array.from(bt.boxes[s]!.center.subarray(i * 3, i * 3 + 3)) as Vec3, size: Array.from(bt.boxes[s]!.size.subarray(i * 3, i * 3 + 3)) as Vec3, yaw: bt.boxes[s]!.yaw[i]!,
    });
    for (let s = 0; s < 3; s++) {
      const n = a.boxes[s]!.count;
      expect(b.boxes[s]!.count).toBe(n + 1);
      expect(b.boxes[s]!.tokens[n]).toBe(far.box.token);
      expect(b.boxes[s]!.velocityValid[n]).toBe(1);
      // The pasted box went through the sample's bda with its points: exactly the object's 7 points are inside it.
      expect(pointsInBox(b.points![s]!, boxAt(b, s, n))).toHaveLength(7);
      expect(b.points![s]!.length).toBe(a.points![s]!.length - 5 * pointsInBox(a.points![s]!, boxAt(b, s, n)).length + 35);
      for (let i = 0; i < n; i++) expect(boxAt(b, s, i)).toEqual(boxAt(a, s, i));
    }
    // Fade: pasting in epoch 0 only, epoch 1 is the unaltered scene.
    const faded = createLoader({ ...opts, objectSample: { database: db, sampleGroups: { car: 5 }, epochs: 1 } });
    expect((await faded.batch(0, 0)).points).toEqual(b.points);
    const [p1, f1] = await Promise.all([plain.batch(1, 0), faded.batch(1, 0)]);
    expect(f1.points).toEqual(p1.points);
    expect(f1.boxes.map((x) => x.count)).toEqual(p1.boxes.map((x) => x.count));
  });
});
