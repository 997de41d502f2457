import { z } from 'zod';

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
  };
}
