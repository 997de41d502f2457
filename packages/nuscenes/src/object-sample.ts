/**
 * GT-paste for LiDAR training (mmdet3d's ObjectSample transform with its DataBaseSampler): a database of the
 * training split's annotated objects with the points inside their boxes, and the sampling that pastes objects
 * into a training sample where they collide with nothing. As in mmdet3d, a pasted object keeps its place in the
 * ego frame of the sample it came from (centre, yaw, velocity and points unchanged); the sample's own points
 * inside the pasted boxes are removed, and the BEV augmentation runs afterwards on the whole scene.
 */
import { LIDAR_POINT_FEATURES, bevBoxesOverlap, pointInBox, transformPointsInPlace, type Box3, type Rng } from '@bevzoo/core';
import type { FrameCache } from './cache.js';
import { loadFrame, type FrameBox } from './frame.js';
import type { NuScenes } from './reader.js';
import { DETECTION_CLASSES, type DetectionClass } from './tables.js';

/** mmdet3d's nuScenes CenterPoint `db_sampler.sample_groups`: each sample is topped up to these counts per class. */
export const NUSCENES_SAMPLE_GROUPS: Readonly<Record<DetectionClass, number>> = {
  car: 2, truck: 3, construction_vehicle: 7, bus: 4, trailer: 6, barrier: 2, motorcycle: 6, bicycle: 6, pedestrian: 2, traffic_cone: 2,
};

/**
 * One object of the database: its box and its points (x, y, z, intensity, Δt; with virtual points the 17 values of
 * `LidarFrame.points`), both in its own sample's ego frame.
 */
export interface ObjectDbEntry {
  sampleToken: string;
  box: FrameBox;
  points: Float32Array;
}

export interface ObjectDatabase {
  /** Entries per DETECTION_CLASSES index. */
  byLabel: ObjectDbEntry[][];
  /** Samples the database was built from. */
  samples: number;
  /** The fewest points an object kept has to have. */
  minPoints: number;
  /** Objects dropped for having fewer than `minPoints` points. */
  dropped: number;
  /** Values per point of the entries: 5, or 17 when built with `virtualPoints` (absent = 5). */
  pointFeatures?: number;
}

export interface ObjectDatabaseOptions {
  /** Previous sweeps assembled with each keyframe (as in training). */
  sweeps: number;
  /** Objects with fewer points are left out (mmdet3d filter_by_min_points: 5 for every nuScenes class). */
  minPoints?: number;
  minDistance?: number;
  cache?: FrameCache;
  /**
   * Keep MVP's paintings and virtual points (17 values per point, as the loader's `virtualPoints`): an object's
   * virtual points inside its box are pasted with it. Virtual points count toward `minPoints`, as MVP's database does.
   */
  virtualPoints?: boolean | { numVirtual?: number };
  /** Called after each sample. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Build the database from the given (training) samples: every GT box with LiDAR or radar points (the loader's
 * `dropEmptyBoxes` rule), with the points of the keyframe and its sweeps inside it.
 */
export async function buildObjectDatabase(nusc: NuScenes, sampleTokens: readonly string[], opts: ObjectDatabaseOptions): Promise<ObjectDatabase> {
  const minPoints = opts.minPoints ?? 5;
  const byLabel: ObjectDbEntry[][] = DETECTION_CLASSES.map(() => []);
  let dropped = 0, F = LIDAR_POINT_FEATURES;
  for (let i = 0; i < sampleTokens.length; i++) {
    const f = await loadFrame(nusc, sampleTokens[i]!, {
      sweeps: opts.sweeps, minDistance: opts.minDistance, cache: opts.cache, cameras: false, lidar: true, virtualPoints: opts.virtualPoints,
    });
    F = f.lidar!.pointFeatures;
    const pts = f.lidar!.points.slice();
    transformPointsInPlace(f.lidar2egoMatrix, pts, F);
    for (const box of f.boxes) {
      if (box.numLidarPts + box.numRadarPts <= 0) continue;
      const inside = pointsInBox(pts, box, box.velocity, F);
      if (inside.length < minPoints) { dropped++; continue; }
      const points = new Float32Array(inside.length * F);
      inside.forEach((p, k) => points.set(pts.subarray(p * F, p * F + F), k * F));
      byLabel[box.label]!.push({ sampleToken: f.sampleToken, box, points });
    }
    opts.onProgress?.(i + 1, sampleTokens.length);
  }
  return { byLabel, samples: sampleTokens.length, minPoints, dropped, ...(F !== LIDAR_POINT_FEATURES ? { pointFeatures: F } : {}) };
}

/** Objects per class of a database, for logs. */
export function objectDatabaseSummary(db: ObjectDatabase): string {
  return DETECTION_CLASSES.map((c, i) => `${c} ${db.byLabel[i]!.length}`).join(', ');
}

/**
 * Draw the objects to paste into a sample whose GT boxes are `existing` (mmdet3d DataBaseSampler.sample_all):
 * per class in `groups` order, max(0, target − objects of that class already there) distinct candidates; a
 * candidate is kept when its BEV box overlaps neither the sample's boxes nor the ones kept before it.
 */
export function sampleObjects(db: ObjectDatabase, rng: Rng, existing: readonly FrameBox[], groups: Partial<Record<DetectionClass, number>> = NUSCENES_SAMPLE_GROUPS): ObjectDbEntry[] {
  const placed: Box3[] = [...existing];
  const out: ObjectDbEntry[] = [];
  for (const [cls, target] of Object.entries(groups) as [DetectionClass, number][]) {
    const label = DETECTION_CLASSES.indexOf(cls);
    const pool = db.byLabel[label] ?? [];
    const want = Math.min(pool.length, Math.max(0, target - existing.filter((b) => b.label === label).length));
    if (want === 0) continue;
    // The first `want` of a partial Fisher-Yates shuffle: distinct candidates.
    const idx = Array.from(pool.keys());
    for (let k = 0; k < want; k++) {
      const j = k + rng.int(idx.length - k);
      [idx[k], idx[j]] = [idx[j]!, idx[k]!];
      const cand = pool[idx[k]!]!;
      if (placed.some((p) => bevBoxesOverlap(p, cand.box))) continue;
      placed.push(cand.box);
      out.push(cand);
    }
  }
  return out;
}

/**
 * Paste `objects` into a cloud (x, y, z, intensity, Δt, … per point, `stride` values each, same frame as the boxes;
 * the objects' points must have the same stride): the cloud's points inside any pasted box are removed (virtual points
 * too), then the objects' points are appended. Returns a new array.
 */
export function pasteObjects(points: Float32Array, objects: readonly ObjectDbEntry[], stride = LIDAR_POINT_FEATURES): Float32Array {
  if (objects.length === 0) return points;
  const drop = new Uint8Array(points.length / stride);
  for (const o of objects) for (const p of pointsInBox(points, o.box, o.box.velocity, stride)) drop[p] = 1;
  let kept = 0;
  for (const d of drop) kept += 1 - d;
  const out = new Float32Array(kept * stride + objects.reduce((a, o) => a + o.points.length, 0));
  let w = 0;
  for (let p = 0; p < drop.length; p++) if (!drop[p]) { out.set(points.subarray(p * stride, p * stride + stride), w); w += stride; }
  for (const o of objects) { out.set(o.points, w); w += o.points.length; }
  return out;
}

/**
 * Indices of the points (x, y, z, intensity, Δt, … each, `stride` values apart) that belong to a box (core's pointInBox: inclusive, the
 * devkit's rule). With a velocity (vx, vy in m/s, NaN = 0), a point of a sweep Δt seconds old is tested against the
 * box where the object was then, centre − v·Δt: the crop keeps a moving object's whole multi-sweep trail, which the
 * keyframe box alone would cut to its newest sweeps (mmdet3d crops with the keyframe box, as `velocity` omitted).
 */
export function pointsInBox(points: Float32Array, box: Box3, velocity?: readonly [number, number], stride = LIDAR_POINT_FEATURES): number[] {
  const vx = Number.isFinite(velocity?.[0]) ? velocity![0] : 0, vy = Number.isFinite(velocity?.[1]) ? velocity![1] : 0;
  const r2 = (box.size[0] ** 2 + box.size[1] ** 2) / 4;
  const out: number[] = [];
  for (let p = 0, o = 0; o < points.length; p++, o += stride) {
    const x = points[o]! + vx * points[o + 4]!, y = points[o + 1]! + vy * points[o + 4]!;
    const dx = x - box.center[0], dy = y - box.center[1];
    if (dx * dx + dy * dy <= r2 && pointInBox(box, [x, y, points[o + 2]!])) out.push(p);
  }
  return out;
}
