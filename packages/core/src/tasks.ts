/**
 * What a model of each task predicts (`TaskModel.predict` returns one per sample). The runner evaluates `det`
 * predictions with the nuScenes detection metrics and `occ` predictions with Occ3D mIoU.
 */
import type { Task } from './plugin.js';

/** A detected box in the keyframe ego frame (BEV augmentation undone); `label` indexes the 10 detection classes. */
export interface DetPrediction {
  /** Geometric centre (x, y, z), metres. */
  center: readonly number[];
  /** (w, l, h), metres: l along the heading. */
  size: readonly number[];
  yaw: number;
  /** (vx, vy), m/s. */
  velocity: readonly number[];
  score: number;
  label: number;
}

/** Occupancy of one sample on the Occ3D grid (200×200×16, [x, y, z] order, 18 labels, 17 = free). */
export interface OccPrediction {
  semantics: Uint8Array;
}

export interface TaskPredictions {
  det: DetPrediction;
  occ: OccPrediction;
}

/** The prediction type of a task. */
export type PredictionOf<T extends Task> = TaskPredictions[T];
