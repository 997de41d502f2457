import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';
import { ShapeError } from '../errors.js';
import { checkInput } from './util.js';

export interface BatchNormOptions {
  /** Default 1e-5 (PyTorch); mmdet3d's SECOND/SECONDFPN/PFN use 1e-3. */
  eps?: number;
  /** PyTorch convention: running = (1 − momentum)·running + momentum·batch. Default 0.1 (mmdet3d: 0.01). */
  momentum?: number;
  /** Learnable weight and bias (default true). */
  affine?: boolean;
}

/** The fused training batch norm that @bevzoo/engine registers (its fused.ts); other backends use tfjs ops. */
const BATCH_NORM_TRAINING = 'BevzooBatchNormTraining';

/**
 * Batch normalisation in training over every axis but the last: y, the batch mean and the biased batch variance.
 * One fused kernel (forward and gradient) where the active backend has @bevzoo/engine's, else tfjs's moments and
 * batchNorm (whose gradient handles rank ≤ 4 only, hence the [1, 1, S, C] view).
 */
export function batchNormTraining(x: tf.Tensor, scale: tf.Tensor | undefined, offset: tf.Tensor | undefined, eps: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const c = x.shape[x.shape.length - 1]!;
  if (tf.getKernel(BATCH_NORM_TRAINING, tf.getBackend()) != null) {
    const [y, mean, invstd] = tf.engine().runKernel(BATCH_NORM_TRAINING, { x, scale: scale ?? tf.ones([c]), offset: offset ?? tf.zeros([c]) }, { epsilon: eps }) as tf.Tensor[];
    return { y: y!, mean: mean!, variance: tf.sub(tf.reciprocal(tf.square(invstd!)), eps) };
  }
  const x4 = x.rank === 4 ? (x as tf.Tensor4D) : tf.reshape(x, [1, 1, -1, c]);
  const { mean, variance } = tf.moments(x4, [0, 1, 2]);
  const y = tf.batchNorm(x4, mean, variance, offset as tf.Tensor1D | undefined, scale as tf.Tensor1D | undefined, eps);
  return { y: x.rank === 4 ? y : tf.reshape(y, x.shape), mean, variance };
}

/**
 * Batch normalisation over the last (channel) axis: batch statistics in training (running mean/var
 * updated with the unbiased variance, like PyTorch), running statistics in eval.
 * State-dict keys: weight, bias, running_mean, running_var, num_batches_tracked.
 */
export class BatchNorm extends Module {
  readonly weight: tf.Variable | null;
  readonly bias: tf.Variable | null;
  readonly running_mean: tf.Variable;
  readonly running_var: tf.Variable;
  readonly num_batches_tracked: tf.Variable;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    readonly numFeatures: number,
    opts: BatchNormOptions = {},
    private readonly ranks: number[] = [2, 3, 4, 5],
    private readonly label = 'BatchNorm',
  ) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', tf.ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter('bias', tf.zeros([numFeatures])) : null;
    this.running_mean = this.registerBuffer('running_mean', tf.zeros([numFeatures]));
    this.running_var = this.registerBuffer('running_var', tf.ones([numFeatures]));
    this.num_batches_tracked = this.registerBuffer('num_batches_tracked', tf.scalar(0, 'int32'));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const where = `${this.label}(${this.numFeatures})`;
    checkInput(where, x, this.ranks, this.numFeatures, this.ranks.length === 1 ? '' : 'channels last');
    return tf.tidy(() => {
      const scale = this.weight ?? undefined;
      const offset = this.bias ?? undefined;
      if (!this.training) {
        // tfjs's batchNorm handles rank ≤ 4: normalise a [1, 1, S, C] view.
        const x4 = x.rank === 4 ? (x as tf.Tensor4D) : tf.reshape(x, [1, 1, -1, this.numFeatures]);
        const y = tf.batchNorm(x4, this.running_mean, this.running_var, offset, scale, this.eps);
        return x.rank === 4 ? y : tf.reshape(y, x.shape);
      }
      const n = x.size / this.numFeatures;
      if (n <= 1) throw new ShapeError(where, 'more than 1 value per channel in training', `shape [${x.shape}]`);
      const { y, mean, variance } = batchNormTraining(x, scale, offset, this.eps);
      this.track(mean, variance, n);
      return y;
    });
  }

  /**
   * Running statistics after a training batch of `n` values per channel with this batch `mean` and biased `variance`
   * (PyTorch: running = (1 − momentum)·running + momentum·batch, the variance made unbiased).
   */
  track(mean: tf.Tensor, variance: tf.Tensor, n: number): void {
    tf.tidy(() => {
      const m = this.momentum;
      this.running_mean.assign(tf.add(tf.mul(this.running_mean, 1 - m), tf.mul(mean, m)));
      this.running_var.assign(tf.add(tf.mul(this.running_var, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
      this.num_batches_tracked.assign(tf.add(this.num_batches_tracked, tf.scalar(1, 'int32')));
    });
  }
}

/** BatchNorm over [N, C] or [N, L, C] (channels last; PyTorch's [N, C, L] transposed). */
export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts, [2, 3], 'BatchNorm1d');
  }
}

/** BatchNorm over NHWC. */
export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts, [4], 'BatchNorm2d');
  }
}

/** BatchNorm over NDHWC. */
export class BatchNorm3d extends BatchNorm {
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts, [5], 'BatchNorm3d');
  }
}
