import { z } from 'zod';
import { BevzooError } from './errors.js';

/**
 * Conventions shared by every teacher and student config, read by the runner:
 * `train` says how the model is trained, `data` what each batch must contain. Plugins embed these schemas
 * (`train: trainSettings.prefault({})`, `data: dataSettings.prefault({})` — zod 4: `.prefault` applies the inner defaults, `.default({})` would not) and set values in their presets.
 */
export const trainSettings = z.object({
  /** Optimiser steps of one training run. */
  steps: z.number().int().positive().default(1000),
  batchSize: z.number().int().positive().default(2),
  /** AdamW base learning rate. */
  lr: z.number().positive().default(2e-4),
  weightDecay: z.number().min(0).default(0.01),
  /** Linear warm-up steps. */
  warmupSteps: z.number().int().min(0).default(50),
  schedule: z.enum(['cosine', 'constant']).default('cosine'),
  /** Gradient clipping by global norm (0 = off). */
  clip: z.number().min(0).default(35),
  /** Image and BEV augmentation while training. */
  augment: z.boolean().default(true),
  /**
   * GT-paste (mmdet3d ObjectSample) while training, with `augment`: objects of the training split (with the points
   * inside their boxes) pasted into each sample, topping rare classes up. LiDAR-only models: images do not show them.
   */
  objectSample: z.boolean().default(false),
  /**
   * With objectSample: paste during this fraction of the steps (whole epochs, rounded up), then train on unaltered
   * scenes (the "fade" strategy of TransFusion and BEVFusion). 1 = paste to the end, as mmdet3d's CenterPoint.
   */
  objectSampleUntil: z.number().gt(0).lte(1).default(1),
  /** Write a checkpoint every N steps (0 = only at the end). */
  checkpointEvery: z.number().int().min(0).default(0),
  /** Evaluate on the val split every N steps (0 = only at the end); the runner logs each to `evals.jsonl`. */
  evalEvery: z.number().int().min(0).default(0),
});
export type TrainSettings = z.infer<typeof trainSettings>;

export const dataSettings = z.object({
  /** [H, W] of the camera images fed to the model. */
  imageSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([128, 352]),
  /** The model reads the 6 camera images. */
  images: z.boolean().default(true),
  /** The model reads LiDAR points (keyframe + `sweeps` sweeps). */
  points: z.boolean().default(false),
  sweeps: z.number().int().min(0).default(9),
  /** The model reads the previous keyframe (temporal students). */
  withPrev: z.boolean().default(false),
  /** The model reads Occ3D labels. */
  occ: z.boolean().default(false),
  /**
   * Batches carry per-camera segment-id maps (`Batch.segments`, [B, 6, H, W], resized and augmented with the images,
   * nearest neighbour): `segments/<CHANNEL>/<image name>.png`, 16-bit gray, beside `samples/` (SAM masks for real
   * nuScenes; the synthetic dataset writes exact instance segments). Read by distillers (RadOcc's RSC). No default:
   * a config that leaves it out resolves to the same JSON as before the field existed (packaged checkpoints record it).
   */
  segments: z.boolean().optional(),
  /**
   * LiDAR points carry MVP's virtual points and paintings (`Batch.points[b]` with `MVP_POINT_FEATURES` = 17 values per
   * point: x, y, z, intensity, Δt, class one-hot ×10, mask score, virtual flag; `Batch.pointFeatures` = 17), made from
   * 2-D instance masks (`masks/<CHANNEL>/<image name>.png|json` beside `samples/`). The runner prepares the masks of
   * the synthetic dataset and the virtual-point cache before training. Implies `points`. No default, as `segments`.
   */
  virtualPoints: z.boolean().optional(),
});
export type DataSettings = z.infer<typeof dataSettings>;

/** Read the `train` and `data` sections of a resolved plugin config (defaults where a plugin omits them). */
export function runSettings(config: unknown): { train: TrainSettings; data: DataSettings } {
  const c = (config ?? {}) as { train?: unknown; data?: unknown };
  return { train: trainSettings.parse(c.train ?? {}), data: dataSettings.parse(c.data ?? {}) };
}

/** What a batch must hold to serve several models at once (e.g. a camera student and a LiDAR teacher). */
export function mergeDataSettings(...all: DataSettings[]): DataSettings {
  const withImages = all.filter((d) => d.images);
  return {
    imageSize: (withImages[0] ?? all[0])?.imageSize ?? [128, 352],
    images: all.some((d) => d.images),
    points: all.some((d) => d.points),
    sweeps: Math.max(0, ...all.filter((d) => d.points).map((d) => d.sweeps)),
    withPrev: all.some((d) => d.withPrev),
    occ: all.some((d) => d.occ),
    ...(all.some((d) => d.segments) ? { segments: true } : {}),
    ...(all.some((d) => d.virtualPoints) ? { virtualPoints: true } : {}),
  };
}

/** Values per LiDAR point in a batch without virtual points: x, y, z, intensity, Δt. */
export const LIDAR_POINT_FEATURES = 5;
/**
 * Values per point with `data.virtualPoints` (MVP): x, y, z, intensity, Δt, class one-hot (10, the nuScenes
 * detection classes' order), mask score, virtual flag (1 = virtual point, 0 = real LiDAR return).
 */
export const MVP_POINT_FEATURES = 17;

/**
 * The real LiDAR returns of each sample of a batch as x, y, z, intensity, Δt: the clouds themselves when the batch has
 * 5 values per point, else (`pointFeatures` = 17) a copy of the points whose virtual flag is 0, their first 5 values.
 * For models that read LiDAR but not MVP's paintings (a student or distiller sharing a batch with the MVP teacher).
 */
export function realPoints(batch: { points?: readonly Float32Array[]; pointFeatures?: number }): Float32Array[] {
  if (!batch.points) throw new BevzooError('realPoints: the batch carries no LiDAR points (set data.points)', { field: 'points', expected: 'one cloud per sample' });
  const f = batch.pointFeatures ?? LIDAR_POINT_FEATURES;
  if (f === LIDAR_POINT_FEATURES) return [...batch.points];
  if (f !== MVP_POINT_FEATURES) throw new BevzooError(`realPoints: batch.pointFeatures is ${f}; expected ${LIDAR_POINT_FEATURES} or ${MVP_POINT_FEATURES}`, { field: 'pointFeatures', expected: `${LIDAR_POINT_FEATURES} or ${MVP_POINT_FEATURES}`, found: String(f) });
  return batch.points.map((pts, b) => {
    if (pts.length % f) throw new BevzooError(`realPoints: batch.points[${b}] has ${pts.length} values, not a whole number of ${f}-value points`, { field: `points[${b}]`, expected: `a multiple of ${f}`, found: String(pts.length) });
    let n = 0;
    for (let o = f - 1; o < pts.length; o += f) if (pts[o] === 0) n++;
    const out = new Float32Array(n * LIDAR_POINT_FEATURES);
    for (let o = 0, w = 0; o < pts.length; o += f)
      if (pts[o + f - 1] === 0) {
        out.set(pts.subarray(o, o + LIDAR_POINT_FEATURES), w);
        w += LIDAR_POINT_FEATURES;
      }
    return out;
  });
}
