import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import { ConfigurationError } from '../errors.js';
import { initBias, initRng, initWeight, type InitKind } from '../init.js';
import { checkInput, pair, type Pair } from './util.js';

export interface Conv2dOptions {
  stride?: Pair;
  /** PyTorch semantics: a number pads both sides; 'same' pads ⌊d(k−1)/2⌋ before and the rest after. */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  /** 1, or `inChannels` for a depthwise convolution (outChannels a multiple of inChannels). */
  groups?: number;
  bias?: boolean;
  init?: InitKind;
  rng?: Rng;
}

/** [top, bottom, left, right] padding in PyTorch semantics. */
export function convPadding(padding: Pair | 'same' | 'valid', kernel: [number, number], dilation: [number, number]): [number, number, number, number] {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding === 'same') {
    const th = dilation[0] * (kernel[0] - 1), tw = dilation[1] * (kernel[1] - 1);
    return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  }
  const [ph, pw] = pair(padding);
  return [ph, ph, pw, pw];
}

/**
 * Dilated convolution through space-to-batch (tfjs has no gradients for dilation > 1): valid padding,
 * stride 1; `conv` applies the undilated kernel.
 */
export function atrous(x: tf.Tensor4D, dilation: [number, number], conv: (x: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D {
  const [dh, dw] = dilation;
  const [, h, w] = x.shape;
  const ph = Math.ceil(h / dh) * dh - h, pw = Math.ceil(w / dw) * dw - w;
  const s2b = tf.spaceToBatchND(x, [dh, dw], [[0, ph], [0, pw]]) as tf.Tensor4D;
  return tf.batchToSpaceND(conv(s2b), [dh, dw], [[0, ph], [0, pw]]) as tf.Tensor4D;
}

/** Every stride-th row and column (tfjs has no StridedSlice gradient; gather has one). */
function subsample(y: tf.Tensor4D, [sh, sw]: [number, number]): tf.Tensor4D {
  const rows = tf.range(0, y.shape[1], sh, 'int32'), cols = tf.range(0, y.shape[2], sw, 'int32');
  return tf.gather(tf.gather(y, rows, 1), cols, 2) as tf.Tensor4D;
}

/**
 * 2-D convolution on NHWC tensors (PyTorch `nn.Conv2d`). Weight in tfjs layout [kh, kw, in, out]
 * (depthwise: [kh, kw, in, mult]).
 */
export class Conv2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly dilation: [number, number];
  readonly pads: [number, number, number, number];
  readonly depthwise: boolean;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: Conv2dOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.dilation = pair(opts.dilation ?? 1);
    this.pads = convPadding(opts.padding ?? 0, this.kernelSize, this.dilation);
    const groups = opts.groups ?? 1;
    this.depthwise = groups !== 1;
    if (this.depthwise && (groups !== inChannels || outChannels % inChannels !== 0)) {
      throw new ConfigurationError(
        `Conv2d: groups must be 1 or inChannels with outChannels a multiple of it (depthwise); found groups=${groups}, in=${inChannels}, out=${outChannels}`,
      );
    }
    const [kh, kw] = this.kernelSize;
    const rng = initRng(opts.rng);
    const kind = opts.init ?? 'default';
    const fanIn = (inChannels / groups) * kh * kw;
    const fanOut = outChannels * kh * kw;
    const shape = this.depthwise ? [kh, kw, inChannels, outChannels / inChannels] : [kh, kw, inChannels, outChannels];
    this.weight = this.registerParameter('weight', initWeight(kind, shape, fanIn, fanOut, rng), this.depthwise ? 'conv2d-depthwise' : 'conv2d');
    this.bias = opts.bias ?? true ? this.registerParameter('bias', initBias(kind, outChannels, fanIn, rng)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    checkInput(`Conv2d(${this.inChannels}→${this.outChannels})`, x, 4, this.inChannels);
    return tf.tidy(() => {
      const w = this.weight as tf.Tensor4D;
      const conv = (inp: tf.Tensor4D, stride: [number, number], pad: number | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]]) =>
        this.depthwise
          ? tf.depthwiseConv2d(inp, w, stride, pad as number | 'valid')
          : tf.conv2d(inp, w, stride, pad as number | 'valid');
      const [pt, pb, pl, pr] = this.pads;
      let y: tf.Tensor4D;
      if (this.dilation[0] === 1 && this.dilation[1] === 1) {
        if (pt === pb && pl === pr && pt === pl) {
          y = conv(x as tf.Tensor4D, this.stride, pt);
        } else if (this.depthwise) {
          y = conv(tf.pad(x as tf.Tensor4D, [[0, 0], [pt, pb], [pl, pr], [0, 0]]), this.stride, 'valid');
        } else {
          y = conv(x as tf.Tensor4D, this.stride, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
        }
      } else {
        const padded = tf.pad(x as tf.Tensor4D, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
        y = atrous(padded, this.dilation, (s) => conv(s, [1, 1], 'valid'));
        if (this.stride[0] !== 1 || this.stride[1] !== 1) y = subsample(y, this.stride);
      }
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }
}
