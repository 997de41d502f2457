import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';
import { checkInput } from './util.js';

/** Layer normalisation over the last axis with a learned scale and shift (PyTorch `nn.LayerNorm(C)`: keys weight, bias). */
export class LayerNorm extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.registerParameter('weight', tf.ones([channels]));
    this.bias = this.registerParameter('bias', tf.zeros([channels]));
  }

  forward(x: tf.Tensor): tf.Tensor {
    checkInput(`LayerNorm(${this.channels})`, x, [1, 2, 3, 4, 5, 6], this.channels, '[..., C]');
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps))), this.weight), this.bias);
    });
  }
}
