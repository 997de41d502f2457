import type * as tf from '@tensorflow/tfjs-core';
import { BevzooError } from '../errors.js';

/** What the trainer needs from a model (the @bevzoo/nn `Module` implements exactly this). */
export interface TrainableModel {
  /** Every parameter with its PyTorch-style dotted name. */
  namedParameters(): [string, tf.Variable][];
  /** Parameters and buffers by name (live tensors: the model owns them). */
  stateDict(): Record<string, tf.Tensor>;
  /** Copy values in (the caller keeps ownership of the tensors passed). */
  loadStateDict(d: Record<string, tf.Tensor>, opts?: { strict?: boolean }): void;
  /** Training mode on (default) or off. */
  train(on?: boolean): void;
}

/** A trainer problem: bad options, a loss that is not a scalar, a checkpoint that does not fit. */
export class TrainError extends BevzooError {}

/** A safetensors file that cannot be read or written: what was expected, what was found, and where. */
export class SafetensorsError extends BevzooError {}

/** A checkpoint that does not match the model/optimizer it is loaded into. */
export class CheckpointError extends BevzooError {}
