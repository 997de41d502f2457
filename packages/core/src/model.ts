import type * as tf from '@tensorflow/tfjs-core';
import type { TrainableModel } from './train/types.js';

/**
 * Runtime contracts of what plugin factories return. They are generic over the batch type (defined by the
 * data package) and the prediction type (per task, see tasks.ts), so that core stays independent of both.
 */

/** Named scalar losses; `total` is what the optimiser minimises. */
export interface LossOutput {
  total: tf.Scalar;
  parts: Record<string, tf.Scalar>;
  /**
   * Seconds spent in named parts of the loss computation (a distillation reports `distill`, its distiller's loss), so
   * that the trainer can split a step's time (`StepRecord.phases`).
   */
  seconds?: Record<string, number>;
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

/** What a distiller's `setup` did before training, for the run's log and result. */
export interface DistillerSetupReport {
  /** One line for the log, e.g. "the student's head starts from the teacher's: 38 tensors copied". */
  summary: string;
  /** Student (or adapter) parameter names whose values were set from the teacher. */
  copied: string[];
  /** Names that were considered but kept, and why. */
  skipped: { key: string; reason: string }[];
}

/** A distiller: trainable adapters plus the distillation loss terms. */
export interface DistillerModel<B = unknown> extends TrainableModel {
  /** Distillation loss from the frozen teacher's and the student's forward outputs. */
  loss(args: { teacher: ForwardOutput; student: ForwardOutput; batch: B }): LossOutput;
  /**
   * Called once, after the teacher's weights are loaded and before training: e.g. initialise the student's head
   * from the teacher's (DistillBEV's head inheritance) or the adapters from the teacher. Null: nothing to do.
   */
  setup?(args: { teacher: TaskModel<B>; student: TaskModel<B> }): DistillerSetupReport | null;
  dispose(): void;
}

/**
 * What the trainer trains when it is given no loss function: a model that computes its own training loss.
 * `prepareBatch` runs before the step's gradient tape (e.g. a frozen teacher's forward pass), `releaseBatch`
 * after the step (freeing what `prepareBatch` kept). A `TaskModel` trains as `loss(forward(batch))`.
 * `prepare`, where a target has it, is awaited by the trainer before `prepareBatch` (asynchronous work for the step,
 * e.g. a frozen teacher's forward pass on onnxruntime); what it keeps is freed by `releaseBatch` too.
 */
export interface TrainingTarget<B = unknown> extends TrainableModel {
  prepare?(batch: B): Promise<void>;
  prepareBatch?(batch: B): void;
  trainingLoss(batch: B): LossOutput;
  releaseBatch?(): void;
}

/** Whether a model computes its own training loss. */
export function isTrainingTarget<B>(m: TrainableModel): m is TrainingTarget<B> {
  return typeof (m as Partial<TrainingTarget<B>>).trainingLoss === 'function';
}

/** Whether a model is a task model (forward, loss, predict). */
export function isTaskModel<B>(m: unknown): m is TaskModel<B> {
  const t = m as Partial<TaskModel<B>> | null;
  return !!t && typeof t.forward === 'function' && typeof t.loss === 'function' && typeof t.predict === 'function';
}
