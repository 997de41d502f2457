import type * as tf from '@tensorflow/tfjs-core';
import type { TrainableModel } from './train/types.js';

/**
 * Runtime contracts of what plugin factories return. They are generic over the batch type (defined by the
 * data package) and the prediction type (per task), so that core stays independent of both.
 */

/** Named scalar losses; `total` is what the optimiser minimises. */
export interface LossOutput {
  total: tf.Scalar;
  parts: Record<string, tf.Scalar>;
}

/** What a forward pass returns: named features (for distillers, by the names in `provides`) and task outputs. */
export interface ForwardOutput {
  features: Record<string, tf.Tensor>;
  outputs: Record<string, tf.Tensor>;
}

/** A teacher or student model of one task. */
export interface TaskModel<B = unknown, P = unknown> extends TrainableModel {
  /** Forward pass; in training mode batch statistics are used and updated. */
  forward(batch: B, opts: { training: boolean }): ForwardOutput;
  /** The task loss (detection or occupancy; plus auxiliary terms such as depth supervision). */
  loss(out: ForwardOutput, batch: B): LossOutput;
  /** Decode outputs into per-sample predictions (outside any gradient tape). */
  predict(out: ForwardOutput, batch: B): Promise<P[]>;
  dispose(): void;
}

/** A distiller: trainable adapters plus the distillation loss terms. */
export interface DistillerModel<B = unknown> extends TrainableModel {
  /** Distillation loss from the frozen teacher's and the student's forward outputs. */
  loss(args: { teacher: ForwardOutput; student: ForwardOutput; batch: B }): LossOutput;
  /** Called once after construction, e.g. to initialise the student's head from the teacher's ("inherit head"). */
  /** Before training (e.g. copy teacher weights into the student); may return a one-line summary for the run's log. */
  init?(args: { teacher: TaskModel<B>; student: TaskModel<B> }): unknown;
  dispose(): void;
}
