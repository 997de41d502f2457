import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import { initBias, initRng, initWeight, type InitKind } from '../init.js';
import { checkInput } from './util.js';

export interface LinearOptions {
  bias?: boolean;
  init?: InitKind;
  rng?: Rng;
}

/** Fully connected layer over the last axis (PyTorch `nn.Linear`). Weight in tfjs layout [in, out]. */
export class Linear extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    const rng = initRng(opts.rng);
    const kind = opts.init ?? 'default';
    this.weight = this.registerParameter('weight', initWeight(kind, [inFeatures, outFeatures], inFeatures, outFeatures, rng), 'linear');
    this.bias = opts.bias ?? true ? this.registerParameter('bias', initBias(kind, outFeatures, inFeatures, rng)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    checkInput(`Linear(${this.inFeatures}→${this.outFeatures})`, x, [1, 2, 3, 4, 5, 6], this.inFeatures, '[..., in]');
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      let y = tf.matMul(tf.reshape(x, [-1, this.inFeatures]), this.weight as tf.Tensor2D);
      if (this.bias) y = tf.add(y, this.bias);
      return tf.reshape(y, [...lead, this.outFeatures]);
    });
  }
}
