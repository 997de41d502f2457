import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';

export const relu = (x: tf.Tensor): tf.Tensor => tf.relu(x);
export const sigmoid = (x: tf.Tensor): tf.Tensor => tf.sigmoid(x);
export const softplus = (x: tf.Tensor): tf.Tensor => tf.softplus(x);
/** sigmoid clamped to [eps, 1 − eps] (CenterPoint heatmaps use eps 1e-4). */
export const clampedSigmoid = (x: tf.Tensor, eps = 1e-4): tf.Tensor => tf.tidy(() => tf.clipByValue(tf.sigmoid(x), eps, 1 - eps));

export class ReLU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.sigmoid(x);
  }
}

export class Softplus extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.softplus(x);
  }
}
