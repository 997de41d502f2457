import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import { ConfigurationError } from '../errors.js';
import { initBias, initRng, initWeight, type InitKind } from '../init.js';
import { checkInput, triple, type Triple } from './util.js';

export interface Conv3dOptions {
  stride?: Triple;
  /** A number pads both sides of each axis (PyTorch); 'same' pads ⌊(k−1)/2⌋ before and the rest after. */
  padding?: Triple | 'same' | 'valid';
  bias?: boolean;
  init?: InitKind;
  rng?: Rng;
}

/** 3-D convolution on NDHWC tensors (PyTorch `nn.Conv3d`, groups 1, dilation 1). Weight [kd, kh, kw, in, out]. */
export class Conv3d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernelSize: [number, number, number];
  readonly stride: [number, number, number];
  /** [before, after] per spatial axis (D, H, W). */
  readonly pads: [number, number][];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Triple,
    opts: Conv3dOptions = {},
  ) {
    super();
    this.kernelSize = triple(kernelSize);
    this.stride = triple(opts.stride ?? 1);
    const padding = opts.padding ?? 0;
    if (padding === 'same' || padding === 'valid') {
      this.pads = this.kernelSize.map((k) => (padding === 'valid' ? [0, 0] : [Math.floor((k - 1) / 2), k - 1 - Math.floor((k - 1) / 2)]));
    } else {
      this.pads = triple(padding).map((p) => [p, p]);
    }
    if (this.kernelSize.some((k) => !(k >= 1))) throw new ConfigurationError(`Conv3d: invalid kernel size [${this.kernelSize}]`);
    const [kd, kh, kw] = this.kernelSize;
    const rng = initRng(opts.rng);
    const kind = opts.init ?? 'default';
    const rf = kd * kh * kw;
    this.weight = this.registerParameter('weight', initWeight(kind, [kd, kh, kw, inChannels, outChannels], inChannels * rf, outChannels * rf, rng), 'conv3d');
    this.bias = opts.bias ?? true ? this.registerParameter('bias', initBias(kind, outChannels, inChannels * rf, rng)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor5D {
    checkInput(`Conv3d(${this.inChannels}→${this.outChannels})`, x, 5, this.inChannels, 'NDHWC');
    return tf.tidy(() => {
      const padded = this.pads.some(([a, b]) => a || b)
        ? tf.pad(x, [[0, 0], ...this.pads, [0, 0]] as [number, number][])
        : x;
      const y = tf.conv3d(padded as tf.Tensor5D, this.weight as tf.Tensor5D, this.stride, 'valid');
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }
}
