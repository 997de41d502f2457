/**
 * Adaptation modules φ: student feature → the teacher feature's channels and grid. Keys mirror the reference
 * code's `channel_wise_adaptations.{i}` entries: a plain `nn.Conv2d` (`weight`, `bias`) for the pre-head layer and
 * `nn.Sequential(nn.Upsample, ThreeLayer)` (`1.conv1.weight`, `1.norm1.running_mean`, …) for backbone stages.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { BatchNorm2d, Conv2d, Module, resize2d } from '@bevzoo/nn';
import { DistillBevError } from './errors.js';

export interface Adapter extends Module {
  forward(x: tf.Tensor): tf.Tensor4D;
  /** Output [H, W] (the teacher feature's rows and columns). */
  readonly size: [number, number];
  readonly outChannels: number;
}

/** Bilinear resize (align_corners, as the reference's nn.Upsample) to `size` unless the input already has it. */
function resizeTo(x: tf.Tensor, size: [number, number]): tf.Tensor4D {
  if (x.rank !== 4) throw new DistillBevError(`adapter: expected an NHWC feature [B, H, W, C]; found shape [${x.shape}]`);
  return x.shape[1] === size[0] && x.shape[2] === size[1] ? (x as tf.Tensor4D) : resize2d(x, size, 'linear', true);
}

/** Pre-head adapter: bilinear resize to the teacher grid when the cell counts differ, then a 1×1 conv to the teacher's channels. */
export class PreHeadAdapter extends Conv2d implements Adapter {
  constructor(inChannels: number, outChannels: number, readonly size: [number, number], rng?: Rng) {
    super(inChannels, outChannels, 1, { rng });
  }

  override forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => super.forward(resizeTo(x, this.size)));
  }
}

/** The reference's ThreeLayer with 1×1 kernels: [conv, BN, ReLU] × 3, hidden width = the student's, last block to the teacher's channels (with BN and ReLU). */
export class ThreeLayer extends Module {
  readonly conv1: Conv2d;
  readonly norm1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly norm2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly norm3: BatchNorm2d;

  constructor(inChannels: number, hidden: number, outChannels: number, rng?: Rng) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, hidden, 1, { rng }));
    this.norm1 = this.registerModule('norm1', new BatchNorm2d(hidden));
    this.conv2 = this.registerModule('conv2', new Conv2d(hidden, hidden, 1, { rng }));
    this.norm2 = this.registerModule('norm2', new BatchNorm2d(hidden));
    this.conv3 = this.registerModule('conv3', new Conv2d(hidden, outChannels, 1, { rng }));
    this.norm3 = this.registerModule('norm3', new BatchNorm2d(outChannels));
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      let y = tf.relu(this.norm1.forward(this.conv1.forward(x)));
      y = tf.relu(this.norm2.forward(this.conv2.forward(y)));
      return tf.relu(this.norm3.forward(this.conv3.forward(y))) as tf.Tensor4D;
    });
  }
}

/** Stage adapter: bilinear upsample to the teacher stage's grid, then ThreeLayer (registered as '1', after the parameterless Upsample '0'). */
export class StageAdapter extends Module implements Adapter {
  readonly layers: ThreeLayer;

  constructor(inChannels: number, readonly outChannels: number, readonly size: [number, number], rng?: Rng) {
    super();
    this.layers = this.registerModule('1', new ThreeLayer(inChannels, inChannels, outChannels, rng));
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => this.layers.forward(resizeTo(x, this.size)));
  }
}
