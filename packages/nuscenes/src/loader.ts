/**
 * Training batches of plain typed arrays (no tensors: a batch can cross worker threads or be stored), with
 * BEVDet-style image and BEV augmentation, deterministic per-epoch shuffling, prefetch of the next batch and a
 * cache of decoded images / assembled points.
 */
import { LIDAR_POINT_FEATURES, MVP_POINT_FEATURES, createRng, mat3Inverse, mat3MulVec, transformPointsInPlace, type Mat3, type Vec3 } from '@bevzoo/core';
import {
  DEFAULT_AUGMENT, IDENTITY3, applyBdaToPoints, applyBevAugToBox, bevAugMatrix, flipOccGrid, imageAugMatrix,
  sampleBevAug, sampleImageAug, warpImage,
  type AugmentConfig, type BevAugParams,
} from './augment.js';
import { FrameCache, type FrameCacheStats } from './cache.js';
import { NuScenesError } from './errors.js';
import { describeValue } from './validate-tables.js';
import { loadFrame, type CameraFrame, type FrameBox } from './frame.js';
import { warpAffineNearest, type ResizeMode } from './io.js';
import { NUSCENES_SAMPLE_GROUPS, pasteObjects, sampleObjects, type ObjectDatabase } from './object-sample.js';
import type { NuScenes } from './reader.js';
import { CAMERA_CHANNELS, OCC_GRID, type DetectionClass } from './tables.js';

/** ImageNet normalisation (BEVDet: mean 123.675, 116.28, 103.53 / std 58.395, 57.12, 57.375 on 0–255). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface LoaderOptions {
  nusc: NuScenes;
  sampleTokens: readonly string[];
  batchSize: number;
  /** [H, W] of the batch images. */
  imageSize: readonly [number, number];
  /** Previous LiDAR sweeps per sample (default 9). */
  sweeps?: number;
  /** true = DEFAULT_AUGMENT; false/undefined = none; or a config (either part may be false). */
  augment?: boolean | Partial<AugmentConfig>;
  seed?: number;
  /** Shuffle the samples each epoch (default true). */
  shuffle?: boolean;
  /** Add the previous keyframe's images and geometry (BEVDet4D). */
  withPrev?: boolean;
  /** Occ3D gts folder; with it the BEV augmentation is restricted to flips (as FlashOcc does). */
  occGts?: string;
  /** On-disk cache folder for decoded images and assembled points. */
  cacheDir?: string;
  /** Memory budget of the frame cache in bytes (default 2 GiB). */
  memoryCacheBytes?: number;
  /** Batches prepared ahead of the consumer (default 1). */
  prefetch?: number;
  /** Load LiDAR points (default true). */
  points?: boolean;
  /**
   * Add `Batch.segments`: each camera's segment-id map (`segments/<CHANNEL>/<image name>.png`, see `segmentPathFor`),
   * resized and augmented exactly as its image, by nearest neighbour (default false). A missing PNG is a NuScenesError
   * naming the file.
   */
  segments?: boolean;
  /**
   * MVP's virtual points: `Batch.points` with 17 values per point (`Batch.pointFeatures` = MVP_POINT_FEATURES; see
   * `LidarFrame.points`), read from the virtual-point cache that `prepareVirtualPoints` writes (a missing file is a
   * NuScenesError naming it). An object gives the cache's `numVirtual` (default 50). Needs `points`; with
   * `objectSample`, the database must be built with the same option.
   */
  virtualPoints?: boolean | { numVirtual?: number };
  /** Drop GT boxes with num_lidar_pts + num_radar_pts = 0 (default true, as mmdet3d's use_valid_flag). */
  dropEmptyBoxes?: boolean;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  resizeMode?: ResizeMode;
  /** Devkit remove_close radius (default 1.0). */
  minDistance?: number;
  /**
   * GT-paste (mmdet3d ObjectSample): objects of `database` (see `buildObjectDatabase`, built from the training
   * split) pasted into each sample before the BEV augmentation, topping each class up to `sampleGroups`
   * (default NUSCENES_SAMPLE_GROUPS), in the epochs before `epochs` (default all; fewer = the "fade" strategy of
   * TransFusion and BEVFusion, whose last epochs train on unaltered scenes). For LiDAR-only training: the camera
   * images do not show pasted objects.
   */
  objectSample?: { database: ObjectDatabase; sampleGroups?: Partial<Record<DetectionClass, number>>; epochs?: number };
}

/** GT boxes of one sample, after bda, in the keyframe ego frame. */
export interface BatchBoxes {
  count: number;
  /** [N, 3] geometric centre */
  center: Float32Array;
  /** [N, 3] width, length, height */
  size: Float32Array;
  /** [N] */
  yaw: Float32Array;
  /** [N, 2] vx, vy (0 where unknown) */
  velocity: Float32Array;
  /** [N] 1 where the devkit gives a velocity */
  velocityValid: Uint8Array;
  /** [N] index into DETECTION_CLASSES */
  label: Int32Array;
  tokens: string[];
  instanceTokens: string[];
  attributeNames: string[];
}

/** Images and camera geometry of B samples. */
export interface CameraBatch {
  /** [B, 6, H, W, 3] ImageNet-normalised RGB */
  images: Float32Array;
  /** [B, 6, 3, 3] intrinsics of the (resized, un-augmented) image */
  intrinsics: Float32Array;
  /** [B, 6, 4, 4] camera → keyframe ego (of the same sample), before bda */
  sensor2ego: Float32Array;
  /** [B, 6, 3, 3] image augmentation: pixel_aug = postAug · [u, v, 1] (post_rot = top-left 2×2, post_tran = last column) */
  postAug: Float32Array;
}

export interface Batch extends CameraBatch {
  epoch: number;
  index: number;
  batchSize: number;
  imageSize: [number, number];
  sampleTokens: string[];
  /** [B, 3, 3] BEV augmentation applied to points and boxes; the model applies it after sensor2ego. */
  bda: Float32Array;
  /**
   * Per sample: x, y, z, intensity, Δt in the keyframe ego frame after bda; with `virtualPoints` 17 values per point
   * (then class one-hot ×10, mask score, virtual flag). Models that want only the real LiDAR returns read
   * `realPoints(batch)`.
   */
  points?: Float32Array[];
  /** Values per point of `points`: absent = 5 (LIDAR_POINT_FEATURES), 17 (MVP_POINT_FEATURES) with `virtualPoints`. */
  pointFeatures?: number;
  boxes: BatchBoxes[];
  /**
   * [B, 6, H, W] segment id of every pixel of each (augmented) image, 0 = no segment / outside the source image
   * (loader option `segments`).
   */
  segments?: Int32Array;
  /** [B, 200, 200, 16] each (flipped with the bda flips). */
  occ?: { semantics: Uint8Array; maskLidar: Uint8Array; maskCamera: Uint8Array };
  /** The previous keyframe (the sample itself where there is none: valid = 0), with the same image augmentation. */
  prev?: CameraBatch & {
    sampleTokens: (string | null)[];
    /** [B] 1 when a previous keyframe exists */
    valid: Uint8Array;
    /** [B, 4, 4] current ego ← previous ego (un-augmented frames; identity where invalid) */
    egoMotion: Float32Array;
    /** [B] seconds between the samples (0 where invalid) */
    dt: Float32Array;
  };
  shapes: Record<string, number[]>;
}

export interface LoaderStats extends FrameCacheStats {
  batchesStarted: number;
  batchesDone: number;
}

export interface Loader {
  readonly numBatches: number;
  readonly numSamples: number;
  /** Live counters (decodes etc. come from the frame cache). */
  readonly stats: LoaderStats;
  readonly cache: FrameCache;
  /** Sample order of an epoch. */
  order(epoch: number): string[];
  /** One batch (deterministic in seed, epoch and index). */
  batch(epoch: number, index: number): Promise<Batch>;
  /** The batches of an epoch, with `prefetch` batches prepared ahead. */
  epoch(epoch: number): AsyncGenerator<Batch>;
}

const IDENTITY4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

/** A loader option that does not hold what it must: a NuScenesError naming the option. */
function checkOption(field: string, value: unknown, ok: boolean, expected: string): void {
  if (ok) return;
  const found = describeValue(value);
  throw new NuScenesError(`createLoader: option ${field} must be ${expected}, found ${found}`, { field, expected, found });
}

export function createLoader(opts: LoaderOptions): Loader {
  const { nusc, batchSize } = opts;
  checkOption('batchSize', batchSize, Number.isInteger(batchSize) && batchSize > 0, 'an integer ≥ 1');
  const size = opts.imageSize as unknown;
  checkOption('imageSize', size, Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v > 0), '[H, W], integers ≥ 1');
  const [H, W] = opts.imageSize;
  const sweeps = opts.sweeps ?? 9;
  checkOption('sweeps', sweeps, Number.isInteger(sweeps) && sweeps >= 0, 'an integer ≥ 0');
  checkOption('prefetch', opts.prefetch, opts.prefetch === undefined || (Number.isInteger(opts.prefetch) && opts.prefetch >= 0), 'an integer ≥ 0');
  checkOption('virtualPoints', opts.virtualPoints, !opts.virtualPoints || (opts.points ?? true), 'false when points is false (virtual points are LiDAR points)');
  const pointFeatures = opts.virtualPoints ? MVP_POINT_FEATURES : LIDAR_POINT_FEATURES;
  if (opts.objectSample) {
    const dbFeatures = opts.objectSample.database.pointFeatures ?? LIDAR_POINT_FEATURES;
    checkOption('objectSample.database', `a database of ${dbFeatures}-value points`, dbFeatures === pointFeatures,
      `a database of ${pointFeatures}-value points (build it with the loader's virtualPoints option)`);
  }
  const tokens = [...opts.sampleTokens];
  for (const t of tokens) nusc.get('sample', t); // fail early on unknown tokens
  const seed = opts.seed ?? 0;
  const augmentConfig: AugmentConfig =
    opts.augment === true ? DEFAULT_AUGMENT
      : !opts.augment ? { image: false, bev: false }
        : { image: opts.augment.image ?? DEFAULT_AUGMENT.image, bev: opts.augment.bev ?? DEFAULT_AUGMENT.bev };
  if (opts.occGts && augmentConfig.bev) augmentConfig.bev = { ...augmentConfig.bev, rotLim: [0, 0], scaleLim: [1, 1] };
  const cache = new FrameCache({ cacheDir: opts.cacheDir, memoryBytes: opts.memoryCacheBytes });
  const prefetch = opts.prefetch ?? 1;
  const numBatches = opts.dropLast ? Math.floor(tokens.length / batchSize) : Math.ceil(tokens.length / batchSize);
  const counters = { batchesStarted: 0, batchesDone: 0 };
  const frameOpts = { imageSize: [H, W] as const, resizeMode: opts.resizeMode, sweeps, minDistance: opts.minDistance, cache };
  const virtualPoints = opts.virtualPoints || undefined;

  const order = (epoch: number): string[] => (opts.shuffle ?? true) ? createRng(seed).fork(`shuffle/${epoch}`).shuffle([...tokens]) : [...tokens];

  const batch = async (epoch: number, index: number): Promise<Batch> => {
    if (!(index >= 0 && index < numBatches)) throw new RangeError(`batch index ${index} out of range 0..${numBatches - 1}`);
    counters.batchesStarted++;
    const sampleTokens = order(epoch).slice(index * batchSize, (index + 1) * batchSize);
    const B = sampleTokens.length;
    const frames = await Promise.all(sampleTokens.map((t) =>
      loadFrame(nusc, t, { ...frameOpts, lidar: opts.points ?? true, occGts: opts.occGts, segments: opts.segments ?? false, virtualPoints })));
    const prevFrames = opts.withPrev
      ? await Promise.all(frames.map((f) => (f.prevSampleToken ? loadFrame(nusc, f.prevSampleToken, { ...frameOpts, lidar: false }) : Promise.resolve(f))))
      : undefined;

    const camSize = B * 6 * H * W * 3;
    const out: Batch = {
      epoch, index, batchSize: B, imageSize: [H, W], sampleTokens,
      images: new Float32Array(camSize), intrinsics: new Float32Array(B * 54), sensor2ego: new Float32Array(B * 96), postAug: new Float32Array(B * 54),
      bda: new Float32Array(B * 9), boxes: [], shapes: {},
    };
    if (opts.points ?? true) out.points = [];
    if (opts.virtualPoints) out.pointFeatures = MVP_POINT_FEATURES;
    if (opts.segments) out.segments = new Int32Array(B * 6 * H * W);
    if (prevFrames)
      out.prev = {
        images: new Float32Array(camSize), intrinsics: new Float32Array(B * 54), sensor2ego: new Float32Array(B * 96), postAug: new Float32Array(B * 54),
        sampleTokens: [], valid: new Uint8Array(B), egoMotion: new Float32Array(B * 16), dt: new Float32Array(B),
      };
    const occSize = OCC_GRID.size[0] * OCC_GRID.size[1] * OCC_GRID.size[2];
    if (opts.occGts) out.occ = { semantics: new Uint8Array(B * occSize), maskLidar: new Uint8Array(B * occSize), maskCamera: new Uint8Array(B * occSize) };

    const scratch = new Uint8Array(H * W * 3);
    for (let b = 0; b < B; b++) {
      const f = frames[b]!;
      const rng = createRng(seed).fork(`aug/${epoch}/${f.sampleToken}`);
      const postAugs: Mat3[] = f.cameras.map(() => {
        if (!augmentConfig.image) return IDENTITY3;
        return imageAugMatrix(sampleImageAug(rng, augmentConfig.image, W, H), W, H);
      });
      writeCameras(out, b, f.cameras, postAugs, scratch, H, W);
      if (out.segments) writeSegments(out.segments, b, f.cameras, postAugs, H, W);
      const bev: BevAugParams = augmentConfig.bev ? sampleBevAug(rng, augmentConfig.bev) : { rotate: 0, scale: 1, flipX: false, flipY: false };
      const bda = augmentConfig.bev ? bevAugMatrix(bev) : IDENTITY3;
      out.bda.set(bda, b * 9);

      let boxes = (opts.dropEmptyBoxes ?? true) ? f.boxes.filter((bx) => bx.numLidarPts + bx.numRadarPts > 0) : f.boxes;
      if (out.points && f.lidar) {
        let pts: Float32Array = f.lidar.points.slice();
        transformPointsInPlace(f.lidar2egoMatrix, pts, pointFeatures);
        if (opts.objectSample && epoch < (opts.objectSample.epochs ?? Infinity)) {
          const pasted = sampleObjects(opts.objectSample.database, createRng(seed).fork(`paste/${epoch}/${f.sampleToken}`), boxes, opts.objectSample.sampleGroups ?? NUSCENES_SAMPLE_GROUPS);
          pts = pasteObjects(pts, pasted, pointFeatures);
          boxes = [...boxes, ...pasted.map((o) => o.box)];
        }
        applyBdaToPoints(bda, pts, pointFeatures);
        out.points.push(pts);
      }
      out.boxes.push(boxesOf(boxes, bev, bda));
      if (out.occ && f.occ) {
        out.occ.semantics.set(flipOccGrid(f.occ.semantics, bev.flipX, bev.flipY), b * occSize);
        out.occ.maskLidar.set(flipOccGrid(f.occ.maskLidar, bev.flipX, bev.flipY), b * occSize);
        out.occ.maskCamera.set(flipOccGrid(f.occ.maskCamera, bev.flipX, bev.flipY), b * occSize);
      }
      if (out.prev && prevFrames) {
        const p = prevFrames[b]!;
        const valid = f.prevSampleToken !== null;
        writeCameras(out.prev, b, p.cameras, postAugs, scratch, H, W);
        out.prev.sampleTokens.push(f.prevSampleToken);
        out.prev.valid[b] = valid ? 1 : 0;
        out.prev.egoMotion.set(valid ? f.egoFromPrevMatrix! : IDENTITY4, b * 16);
        out.prev.dt[b] = valid ? f.dtPrev! : 0;
      }
    }
    out.shapes = {
      images: [B, 6, H, W, 3], intrinsics: [B, 6, 3, 3], sensor2ego: [B, 6, 4, 4], postAug: [B, 6, 3, 3], bda: [B, 3, 3],
      ...(out.occ ? { occ: [B, ...OCC_GRID.size] } : {}),
      ...(out.segments ? { segments: [B, 6, H, W] } : {}),
      ...(out.prev ? { prevImages: [B, 6, H, W, 3], egoMotion: [B, 4, 4] } : {}),
    };
    counters.batchesDone++;
    return out;
  };

  async function* epochGen(epoch: number): AsyncGenerator<Batch> {
    const pending: Promise<Batch>[] = [];
    let next = 0;
    const fill = () => {
      while (next < numBatches && pending.length < prefetch + 1) {
        const p = batch(epoch, next++);
        p.catch(() => {}); // a prefetched batch that is never awaited must not become an unhandled rejection
        pending.push(p);
      }
    };
    while (next < numBatches || pending.length > 0) {
      fill(); // the batch to hand out now + `prefetch` batches that run while the consumer works on it
      yield await pending.shift()!;
    }
  }

  return {
    numBatches,
    numSamples: tokens.length,
    cache,
    get stats(): LoaderStats {
      return { ...cache.stats, ...counters };
    },
    order,
    batch,
    epoch: epochGen,
  };
}

const MEAN255 = IMAGENET_MEAN.map((m) => m * 255);
const STD255 = IMAGENET_STD.map((s) => s * 255);

function writeCameras(out: CameraBatch, b: number, cams: CameraFrame[], postAugs: Mat3[], scratch: Uint8Array, H: number, W: number): void {
  cams.forEach((cam, c) => {
    if (cam.width !== W || cam.height !== H) throw new Error(`internal: camera image ${cam.width}×${cam.height}, expected ${W}×${H}`);
    const k = b * 6 + c;
    const P = postAugs[c]!;
    const pix = P === IDENTITY3 ? cam.image : warpImage(cam.image, W, H, P, scratch);
    const base = k * H * W * 3;
    for (let i = 0; i < H * W * 3; i += 3) {
      out.images[base + i] = (pix[i]! - MEAN255[0]!) / STD255[0]!;
      out.images[base + i + 1] = (pix[i + 1]! - MEAN255[1]!) / STD255[1]!;
      out.images[base + i + 2] = (pix[i + 2]! - MEAN255[2]!) / STD255[2]!;
    }
    out.intrinsics.set(cam.intrinsics, k * 9);
    out.sensor2ego.set(cam.sensor2keyEgoMatrix, k * 16);
    out.postAug.set(P, k * 9);
  });
  if (cams.length !== CAMERA_CHANNELS.length) throw new Error(`internal: ${cams.length} cameras`);
}

/** Each camera's segment ids warped with its image augmentation (nearest neighbour; 0 outside the source image). */
function writeSegments(out: Int32Array, b: number, cams: CameraFrame[], postAugs: Mat3[], H: number, W: number): void {
  cams.forEach((cam, c) => {
    if (!cam.segments) throw new Error(`internal: camera ${cam.channel} has no segment map`);
    const P = postAugs[c]!;
    const dst = out.subarray((b * 6 + c) * H * W, (b * 6 + c + 1) * H * W);
    if (P === IDENTITY3) dst.set(cam.segments);
    else {
      const inv = mat3Inverse(P);
      warpAffineNearest(cam.segments, W, H, W, H, [inv[0], inv[1], inv[2], inv[3], inv[4], inv[5]], 0, dst);
    }
  });
}

function boxesOf(list: readonly FrameBox[], bev: BevAugParams, bda: Mat3): BatchBoxes {
  const n = list.length;
  const out: BatchBoxes = {
    count: n, center: new Float32Array(n * 3), size: new Float32Array(n * 3), yaw: new Float32Array(n), velocity: new Float32Array(n * 2),
    velocityValid: new Uint8Array(n), label: new Int32Array(n), tokens: [], instanceTokens: [], attributeNames: [],
  };
  list.forEach((bx, i) => {
    const valid = Number.isFinite(bx.velocity[0]) && Number.isFinite(bx.velocity[1]);
    const r = applyBevAugToBox(bev, bda, bx.center, bx.size, bx.yaw, valid ? bx.velocity : [0, 0]);
    out.center.set(r.center, i * 3);
    out.size.set(r.size, i * 3);
    out.yaw[i] = r.yaw;
    out.velocity.set(r.velocity, i * 2);
    out.velocityValid[i] = valid ? 1 : 0;
    out.label[i] = bx.label;
    out.tokens.push(bx.token);
    out.instanceTokens.push(bx.instanceToken);
    out.attributeNames.push(bx.attributeName);
  });
  return out;
}

/**
 * Project a point given in a batch's augmented ego frame (after bda) into camera `cam` of sample `b`, through
 * bda⁻¹, sensor2ego⁻¹, the intrinsics and postAug. Returns [u, v, depth] in the augmented image (depth in metres
 * along the camera axis; u, v meaningless when depth ≤ 0).
 */
export function projectToImage(batch: CameraBatch & { bda: Float32Array }, b: number, cam: number, point: readonly number[]): Vec3 {
  const bda = Array.from(batch.bda.subarray(b * 9, b * 9 + 9)) as Mat3;
  const pe = mat3MulVec(mat3Inverse(bda), [point[0]!, point[1]!, point[2]!]);
  const k = b * 6 + cam;
  const m = batch.sensor2ego.subarray(k * 16, k * 16 + 16);
  // camera = Rᵀ (p − t)
  const d = [pe[0] - m[3]!, pe[1] - m[7]!, pe[2] - m[11]!];
  const pc: Vec3 = [
    m[0]! * d[0]! + m[4]! * d[1]! + m[8]! * d[2]!,
    m[1]! * d[0]! + m[5]! * d[1]! + m[9]! * d[2]!,
    m[2]! * d[0]! + m[6]! * d[1]! + m[10]! * d[2]!,
  ];
  const K = Array.from(batch.intrinsics.subarray(k * 9, k * 9 + 9)) as Mat3;
  const uvw = mat3MulVec(K, pc);
  const P = Array.from(batch.postAug.subarray(k * 9, k * 9 + 9)) as Mat3;
  const q = mat3MulVec(P, [uvw[0] / uvw[2], uvw[1] / uvw[2], 1]);
  return [q[0], q[1], pc[2]];
}
