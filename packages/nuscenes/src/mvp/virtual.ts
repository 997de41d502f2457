/**
 * MVP's virtual points (Yin et al. 2021, "Multimodal Virtual Point 3D Detection"; `add_virtual_mask` of the
 * reference code tianweiy/MVP `virtual_gen.py`) for one LiDAR sweep: its real points painted with the class and score
 * of the 2-D instance masks they project into, and per mask `numVirtual` virtual points made from sampled mask pixels
 * at the depth of the nearest projected real point of the same mask.
 *
 * Pixel convention: pixel centres at integer coordinates (as the rest of @bevzoo/nuscenes), so a point projecting to
 * (u, v) lies in pixel (round(u), round(v)), and a sampled pixel (px, py) is back-projected through (px, py).
 */
import {
  composeTransforms, createRng, hashString, invertTransform, mat3Inverse, transformToMatrix4,
  type Mat3, type RigidTransform, type Rng,
} from '@bevzoo/core';
import { NuScenesError } from '../errors.js';
import type { NuScenes } from '../reader.js';
import { CAMERA_CHANNELS, DETECTION_CLASSES } from '../tables.js';
import { readInstanceMasks, type InstanceMasks } from './masks.js';

/** Painting values per point: the class one-hot (10, DETECTION_CLASSES order) and the mask score. */
export const PAINT_FEATURES = DETECTION_CLASSES.length + 1;
/** Values per virtual point before assembly: x, y, z in the LiDAR sensor frame, then the painting. */
export const VIRTUAL_POINT_VALUES = 3 + PAINT_FEATURES;
/** Virtual points per mask (MVP's `num_virtual`). */
export const DEFAULT_NUM_VIRTUAL = 50;
/** A camera image is used for a LiDAR sweep only when taken less than this many µs from it. */
export const CAMERA_MAX_LAG_US = 50_000;

/** One camera image with masks, as a LiDAR sweep sees it. */
export interface MaskView {
  /** Camera channel (labels the seeded sampling and errors). */
  channel: string;
  /** 3×3 row-major intrinsics of the image the masks belong to (pixel centres at integers). */
  intrinsics: Mat3;
  /** 4×4 row-major camera ← LiDAR sensor (see `cameraFromLidar`). */
  cameraFromLidar: ArrayLike<number>;
  masks: InstanceMasks;
}

/** The virtual points and paintings of one LiDAR sweep (what the cache stores per LiDAR file). */
export interface SweepVirtualPoints {
  /** Points of the LiDAR file (before any remove_close). */
  numReal: number;
  /** Ascending indices (into the file's points) of the painted real points. */
  paintedIndex: Uint32Array;
  /** [P, PAINT_FEATURES] one-hot and score of each painted point. */
  painting: Float32Array;
  /** [V, VIRTUAL_POINT_VALUES] x, y, z in the LiDAR sensor frame, one-hot, score. */
  virtual: Float32Array;
}

/**
 * camera ← LiDAR sensor for a LiDAR sweep and a camera image taken at another time: sensor → ego at the LiDAR time →
 * global → ego at the camera time → camera.
 */
export function cameraFromLidar(lidar2ego: RigidTransform, lidarEgo2global: RigidTransform, camEgo2global: RigidTransform, cam2ego: RigidTransform): RigidTransform {
  return composeTransforms(invertTransform(composeTransforms(camEgo2global, cam2ego)), composeTransforms(lidarEgo2global, lidar2ego));
}

/** [N, 3] (u, v, depth) of points stored `stride` values apart (xyz first) through a 4×4 camera ← points matrix and K. */
export function projectPoints(points: Float32Array, stride: number, camFromPoints: ArrayLike<number>, K: Mat3): Float32Array {
  const m = camFromPoints;
  const n = Math.floor(points.length / stride);
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const x = points[i * stride]!, y = points[i * stride + 1]!, z = points[i * stride + 2]!;
    const cx = m[0]! * x + m[1]! * y + m[2]! * z + m[3]!;
    const cy = m[4]! * x + m[5]! * y + m[6]! * z + m[7]!;
    const cz = m[8]! * x + m[9]! * y + m[10]! * z + m[11]!;
    const w = K[6] * cx + K[7] * cy + K[8] * cz;
    out[i * 3] = (K[0] * cx + K[1] * cy + K[2] * cz) / w;
    out[i * 3 + 1] = (K[3] * cx + K[4] * cy + K[5] * cz) / w;
    out[i * 3 + 2] = cz;
  }
  return out;
}

/** Inverse of a row-major 4×4 rigid transform. */
function invertRigid4(m: ArrayLike<number>): number[] {
  const r = [m[0]!, m[1]!, m[2]!, m[4]!, m[5]!, m[6]!, m[8]!, m[9]!, m[10]!];
  const t = [m[3]!, m[7]!, m[11]!];
  // Rᵀ, −Rᵀ·t
  return [
    r[0]!, r[3]!, r[6]!, -(r[0]! * t[0]! + r[3]! * t[1]! + r[6]! * t[2]!),
    r[1]!, r[4]!, r[7]!, -(r[1]! * t[0]! + r[4]! * t[1]! + r[7]! * t[2]!),
    r[2]!, r[5]!, r[8]!, -(r[2]! * t[0]! + r[5]! * t[1]! + r[8]! * t[2]!),
    0, 0, 0, 1,
  ];
}

/**
 * `count` pixels of a mask drawn uniformly without replacement (a partial Fisher-Yates shuffle); a mask with fewer
 * pixels gives all of them in drawn order and then repeats the first one, as MVP (`selected_indices[zeros]`).
 */
export function sampleMaskPixels(pixels: readonly number[], count: number, rng: Rng): number[] {
  const a = [...pixels];
  const k = Math.min(count, a.length);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(a.length - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  const out = a.slice(0, k);
  while (out.length < count && out.length > 0) out.push(out[0]!);
  return out;
}

/**
 * Paint a sweep's points and make its virtual points (MVP's `add_virtual_mask`). `points` are the sweep's own points
 * (LiDAR sensor frame, `stride` values each, xyz first). For each view: a point with depth > 0 whose pixel lies in the
 * image and in mask m takes m's one-hot and score (over several views the maximum of each entry, as MVP). For each
 * mask, `numVirtual` sampled pixels (`sampleMaskPixels`, seeded by `rng` forked per channel and mask id) each take the
 * depth of the projected real point of the same mask nearest in pixels, and are back-projected into the LiDAR frame
 * with the mask's one-hot and score; a mask that no real point projects into gives none.
 */
export function computeVirtualPoints(points: Float32Array, stride: number, views: readonly MaskView[], numVirtual: number, rng: Rng): SweepVirtualPoints {
  const n = Math.floor(points.length / stride);
  const paint = new Float32Array(n * PAINT_FEATURES);
  const isPainted = new Uint8Array(n);
  const virtual: number[] = [];
  for (const view of views) {
    const { width: W, height: H, ids, instances } = view.masks;
    const K = view.intrinsics;
    const slot = new Map<number, number>();
    instances.forEach((m, k) => slot.set(m.id, k));
    const uvd = projectPoints(points, stride, view.cameraFromLidar, K);
    // Real points in each mask, and the painting.
    const inMask: number[][] = instances.map(() => []);
    for (let i = 0; i < n; i++) {
      const d = uvd[i * 3 + 2]!;
      if (!(d > 0)) continue;
      const px = Math.round(uvd[i * 3]!), py = Math.round(uvd[i * 3 + 1]!);
      if (!(px >= 0 && px < W && py >= 0 && py < H)) continue;
      const id = ids[py * W + px]!;
      if (id === 0) continue;
      const k = slot.get(id);
      if (k === undefined) throw new Error(`internal: mask id ${id} of ${view.channel} is not among its instances`);
      const m = instances[k]!;
      inMask[k]!.push(i);
      paint[i * PAINT_FEATURES + m.label] = 1;
      paint[i * PAINT_FEATURES + PAINT_FEATURES - 1] = Math.max(paint[i * PAINT_FEATURES + PAINT_FEATURES - 1]!, m.score);
      isPainted[i] = 1;
    }
    // Pixels of each mask.
    const pixels: number[][] = instances.map(() => []);
    for (let p = 0; p < W * H; p++) {
      const id = ids[p]!;
      if (id !== 0) pixels[slot.get(id)!]?.push(p);
    }
    const Kinv = mat3Inverse(K);
    const lidarFromCam = invertRigid4(view.cameraFromLidar);
    const forked = rng.fork(view.channel);
    instances.forEach((m, k) => {
      const reals = inMask[k]!;
      if (reals.length === 0 || pixels[k]!.length === 0) return;
      for (const p of sampleMaskPixels(pixels[k]!, numVirtual, forked.fork(m.id))) {
        const px = p % W, py = (p - px) / W;
        let best = Infinity, depth = 0;
        for (const i of reals) {
          const du = uvd[i * 3]! - px, dv = uvd[i * 3 + 1]! - py;
          const d2 = du * du + dv * dv;
          if (d2 < best) { best = d2; depth = uvd[i * 3 + 2]!; }
        }
        const cx = depth * (Kinv[0] * px + Kinv[1] * py + Kinv[2]);
        const cy = depth * (Kinv[3] * px + Kinv[4] * py + Kinv[5]);
        const cz = depth * (Kinv[6] * px + Kinv[7] * py + Kinv[8]);
        const l = lidarFromCam;
        virtual.push(
          l[0]! * cx + l[1]! * cy + l[2]! * cz + l[3]!, l[4]! * cx + l[5]! * cy + l[6]! * cz + l[7]!, l[8]! * cx + l[9]! * cy + l[10]! * cz + l[11]!,
        );
        for (let c = 0; c < PAINT_FEATURES - 1; c++) virtual.push(c === m.label ? 1 : 0);
        virtual.push(m.score);
      }
    });
  }
  let P = 0;
  for (const v of isPainted) P += v;
  const paintedIndex = new Uint32Array(P);
  const painting = new Float32Array(P * PAINT_FEATURES);
  for (let i = 0, w = 0; i < n; i++)
    if (isPainted[i]) {
      paintedIndex[w] = i;
      painting.set(paint.subarray(i * PAINT_FEATURES, (i + 1) * PAINT_FEATURES), w * PAINT_FEATURES);
      w++;
    }
  return { numReal: n, paintedIndex, painting, virtual: Float32Array.from(virtual) };
}

/** A camera image used for a LiDAR sweep. */
export interface SweepCamera {
  channel: string;
  /** Its sample_data token. */
  token: string;
  /** Camera minus LiDAR timestamp, µs. */
  lagUs: number;
}

/**
 * The camera images a LiDAR sample_data is painted from: a keyframe uses its sample's camera images, a sweep each
 * camera's sample_data nearest in time along the camera's prev/next chain (from the sample's keyframe image); an image
 * is kept when taken less than CAMERA_MAX_LAG_US from the LiDAR.
 */
export function sweepCameras(nusc: NuScenes, lidarToken: string): SweepCamera[] {
  const sd = nusc.get('sample_data', lidarToken);
  const out: SweepCamera[] = [];
  for (const channel of CAMERA_CHANNELS) {
    let cam = nusc.get('sample_data', nusc.sampleDataToken(sd.sample_token, channel));
    if (!sd.is_key_frame) {
      const gap = (c: typeof cam) => Math.abs(c.timestamp - sd.timestamp);
      for (;;) {
        const step = cam.timestamp < sd.timestamp ? cam.next : cam.prev;
        if (step === '') break;
        const nextCam = nusc.get('sample_data', step);
        if (gap(nextCam) >= gap(cam)) break;
        cam = nextCam;
      }
    }
    const lagUs = cam.timestamp - sd.timestamp;
    if (Math.abs(lagUs) < CAMERA_MAX_LAG_US) out.push({ channel, token: cam.token, lagUs });
  }
  return out;
}

/** The seeded generator of a LiDAR sample_data's mask sampling. */
export function virtualRng(lidarToken: string): Rng {
  return createRng(hashString(`mvp-virtual/${lidarToken}`));
}

/**
 * The views (camera images with masks) of a LiDAR sample_data: `sweepCameras`, each with its masks
 * (`readInstanceMasks`; an image without masks is left out), intrinsics and camera ← LiDAR transform.
 */
export async function maskViews(nusc: NuScenes, lidarToken: string): Promise<MaskView[]> {
  const lidar2ego = nusc.calibratedSensor(lidarToken).transform;
  const lidarEgo = nusc.egoPose(lidarToken);
  const views: MaskView[] = [];
  for (const cam of sweepCameras(nusc, lidarToken)) {
    const sd = nusc.get('sample_data', cam.token);
    // Checked against the image's size (sample_data width/height; the image file's header where they are 0).
    const masks = readInstanceMasks(nusc.dataroot, sd.filename, sd.width && sd.height ? { width: sd.width, height: sd.height } : undefined);
    if (!masks) continue;
    const cal = nusc.calibratedSensor(cam.token);
    if (!cal.intrinsic)
      throw new NuScenesError(`calibrated_sensor of sample_data ${cam.token} has no camera_intrinsic`, {
        table: 'calibrated_sensor', token: sd.calibrated_sensor_token, field: 'camera_intrinsic', expected: 'a 3×3 matrix', found: '[]',
      });
    views.push({
      channel: cam.channel, intrinsics: cal.intrinsic, masks,
      cameraFromLidar: transformToMatrix4(cameraFromLidar(lidar2ego, lidarEgo, nusc.egoPose(cam.token), cal.transform)),
    });
  }
  return views;
}
