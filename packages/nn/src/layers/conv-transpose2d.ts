import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import { initBias, initRng, initWeight, type InitKind } from '../init.js';
import { checkInput, pair, type Pair } from './util.js';

export interface ConvTranspose2dOptions {
  stride?: Pair;
  /** Crops `padding` from each side (PyTorch semantics). */
  padding?: Pair;
  /** Extra rows/columns at the end (PyTorch `output_padding`, < stride). */
  outputPadding?: Pair;
  bias?: boolean;
  init?: InitKind;
  rng?: Rng;
}

/**
 * Transposed 2-D convolution on NHWC (PyTorch `nn.ConvTranspose2d`, groups 1, dilation 1):
 * output = (in − 1)·stride − 2·padding + kernel + outputPadding. Weight in tfjs layout [kh, kw, out, in]
 * (PyTorch [in, out, kh, kw]).
 */
export class ConvTranspose2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: ConvTranspose2dOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.outputPadding = pair(opts.outputPadding ?? 0);
    const [kh, kw] = this.kernelSize;
    const rng = initRng(opts.rng);
    const kind = opts.init ?? 'default';
    // PyTorch computes fans on its weight [in, out, kh, kw]: fan_in = out·kh·kw, fan_out = in·kh·kw.
    const fanIn = outChannels * kh * kw, fanOut = inChannels * kh * kw;
    this.weight = this.registerParameter('weight', initWeight(kind, [kh, kw, outChannels, inChannels], fanIn, fanOut, rng), 'conv-transpose2d');
    this.bias = opts.bias ?? true ? this.registerParameter('bias', initBias(kind, outChannels, fanIn, rng)) : null;
  }

  /** Output spatial size for an input of size (h, w). */
  outputSize(h: number, w: number): [number, number] {
    const f = (n: number, i: 0 | 1) => (n - 1) * this.stride[i] - 2 * this.padding[i] + this.kernelSize[i] + this.outputPadding[i];
    return [f(h, 0), f(w, 1)];
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    checkInput(`ConvTranspose2d(${this.inChannels}→${this.outChannels})`, x, 4, this.inChannels);
    return tf.tidy(() => {
      const [b, h, w] = x.shape as number[];
      const [sh, sw] = this.stride, [kh, kw] = this.kernelSize, [oph, opw] = this.outputPadding;
      const fullH = (h! - 1) * sh + kh + oph, fullW = (w! - 1) * sw + kw + opw;
      let y = tf.conv2dTranspose(x as tf.Tensor4D, this.weight as tf.Tensor4D, [b!, fullH, fullW, this.outChannels], this.stride, 'valid');
      const [ph, pw] = this.padding;
      if (ph || pw) y = tf.slice(y, [0, ph, pw, 0], [b!, fullH - 2 * ph, fullW - 2 * pw, this.outChannels]);
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }
}
