import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';
import { checkInput, pair, type Pair } from './util.js';

/** Max pooling on NHWC (PyTorch `nn.MaxPool2d`: padding counts as −∞, floor rounding). */
export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: number;

  constructor(kernelSize: Pair, opts: { stride?: Pair; padding?: number } = {}) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? kernelSize);
    this.padding = opts.padding ?? 0;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    checkInput('MaxPool2d', x, 4);
    return tf.maxPool(x as tf.Tensor4D, this.kernelSize, this.stride, this.padding);
  }
}
