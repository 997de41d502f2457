/**
 * BEVDet's BEV encoder: `ResNetForBEVDet` (CustomResNet: ResNet stages without a stem, first block of each stage
 * strided with a 3×3-conv shortcut) and `FPN_LSS` (upsample the coarsest stage, concatenate with the finest,
 * two 3×3 convs, then an extra ×2 upsample head). Keys as in BEVDet: `layers.{stage}.{block}.conv1.weight`,
 * `layers.0.0.downsample.weight`; `conv.{0,1,3,4}.*`, `up2.{1,2,4}.*`, `lateral_conv.{0,1}.*`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, Sequential } from '../module.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { initRng } from '../init.js';
import { Conv2d } from '../layers/conv2d.js';
import { BatchNorm2d, type BatchNormOptions } from '../layers/batchnorm.js';
import { ReLU } from '../layers/activation.js';
import { BasicBlock, Bottleneck } from '../layers/resnet.js';

export interface CustomResNetOptions {
  /** Channels of the BEV input (BEVDet's numC_input). */
  inChannels: number;
  /** Blocks per stage (default [2, 2, 2]). */
  numLayers?: number[];
  /** Output channels per stage (default inChannels·2^(i+1)). */
  channels?: number[];
  /** Stride of the first block of each stage (default 2 each). */
  strides?: number[];
  /** Stages returned by forward (default all). */
  outIndices?: number[];
  blockType?: 'basic' | 'bottleneck';
  norm?: BatchNormOptions;
  rng?: Rng;
}

/** BEVDet's ResNetForBEVDet: `layers` = Sequential of stages; forward returns the stages in `outIndices`. */
export class CustomResNet extends Module {
  readonly layers: Sequential;
  readonly channels: number[];
  readonly strides: number[];
  readonly outIndices: number[];

  constructor(readonly options: CustomResNetOptions) {
    super();
    const numLayers = options.numLayers ?? [2, 2, 2];
    this.channels = options.channels ?? numLayers.map((_, i) => options.inChannels * 2 ** (i + 1));
    this.strides = options.strides ?? numLayers.map(() => 2);
    if (this.channels.length !== numLayers.length || this.strides.length !== numLayers.length)
      throw new ConfigurationError(`CustomResNet: numLayers (${numLayers.length}), channels (${this.channels.length}) and strides (${this.strides.length}) need one entry per stage`);
    this.outIndices = options.outIndices ?? numLayers.map((_, i) => i);
    const rng = initRng(options.rng);
    const bottleneck = options.blockType === 'bottleneck';
    const stages: Sequential[] = [];
    let c = options.inChannels;
    numLayers.forEach((n, i) => {
      const out = this.channels[i]!;
      if (bottleneck && out % 4 !== 0) throw new ConfigurationError(`CustomResNet: bottleneck stage ${i} needs channels divisible by 4, found ${out}`);
      const blocks: (BasicBlock | Bottleneck)[] = [];
      const common = { norm: options.norm, init: 'kaiming_normal' as const, rng };
      blocks.push(bottleneck
        ? new Bottleneck(c, out / 4, { ...common, stride: this.strides[i], downsample: 'conv3x3' })
        : new BasicBlock(c, out, { ...common, stride: this.strides[i], downsample: 'conv3x3' }));
      for (let j = 1; j < n; j++) blocks.push(bottleneck ? new Bottleneck(out, out / 4, { ...common, downsample: null }) : new BasicBlock(out, out, { ...common, downsample: null }));
      stages.push(new Sequential(...blocks));
      c = out;
    });
    this.layers = this.registerModule('layers', new Sequential(...stages));
  }

  /** x [B, Y, X, inChannels] → the selected stages, finest first. */
  forward(x: tf.Tensor): tf.Tensor4D[] {
    return tf.tidy(() => {
      const outs: tf.Tensor4D[] = [];
      let y = x;
      [...this.layers].forEach((stage, i) => {
        y = stage.forward(y);
        if (this.outIndices.includes(i)) outs.push(y as tf.Tensor4D);
      });
      return outs;
    });
  }
}

/** [out, in] weights of 1-D linear interpolation with align_corners=True (src = o·(in − 1)/(out − 1)). */
function alignCornersMatrix(n: number, out: number): Float32Array {
  const a = new Float32Array(out * n);
  for (let o = 0; o < out; o++) {
    const src = out > 1 ? (o * (n - 1)) / (out - 1) : 0;
    const i0 = Math.min(Math.floor(src), n - 1), i1 = Math.min(i0 + 1, n - 1), t = src - i0;
    a[o * n + i0] += 1 - t;
    a[o * n + i1] += t;
  }
  return a;
}

/**
 * nn.Upsample(scale_factor, mode='bilinear', align_corners=True) on NHWC as a module (no parameters). Each axis
 * is one matmul with the interpolation matrix, so forward and backward are dense matmuls (fast on every
 * backend, exact gradients) instead of gathers and segment sums.
 */
export class BilinearUpsample extends Module {
  constructor(readonly scale: number) {
    super();
    if (!(Number.isInteger(scale) && scale >= 1)) throw new ConfigurationError(`BilinearUpsample: scale must be a positive integer, found ${scale}`);
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    if (x.rank !== 4) throw new ShapeError('BilinearUpsample', 'rank 4 (NHWC)', `shape [${x.shape}]`);
    const [B, H, W, C] = x.shape as [number, number, number, number];
    const s = this.scale;
    if (s === 1) return x.clone() as tf.Tensor4D;
    return tf.tidy(() => {
      const ah = tf.tensor2d(alignCornersMatrix(H, H * s), [H * s, H]);
      const aw = tf.tensor2d(alignCornersMatrix(W, W * s), [W * s, W]);
      // rows: [H, B·W·C] → [H·s, B·W·C]
      const rows = tf.matMul(ah, tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [H, B * W * C]));
      // columns: [W, B·H·s·C] → [W·s, B·H·s·C]
      const y = tf.reshape(rows, [H * s, B, W, C]);
      const cols = tf.matMul(aw, tf.reshape(tf.transpose(y, [2, 1, 0, 3]), [W, B * H * s * C]));
      return tf.transpose(tf.reshape(cols, [W * s, B, H * s, C]), [1, 2, 0, 3]) as tf.Tensor4D;
    });
  }
}

export interface FPNLSSOptions {
  /** Channels of the concatenation (finest stage + upsampled coarsest stage). */
  inChannels: number;
  outChannels: number;
  /** Upsampling of the coarse input (default 4). */
  scaleFactor?: number;
  /** [fine, coarse] indices into the input list (default [0, 2]). */
  inputFeatureIndex?: [number, number];
  /** The ×k upsample head after the convs (default 2; null: none, output at the fine input's resolution). */
  extraUpsample?: number | null;
  /** Channels of an optional 1×1 conv + BN + ReLU on the fine input (default none). */
  lateral?: number | null;
  norm?: BatchNormOptions;
  rng?: Rng;
}

/** BEVDet's FPN_LSS neck. */
export class FPNLSS extends Module {
  readonly conv: Sequential;
  readonly up2: Sequential | null = null;
  readonly lateral_conv: Sequential | null = null;
  readonly up: BilinearUpsample;
  readonly inputFeatureIndex: [number, number];

  constructor(readonly options: FPNLSSOptions) {
    super();
    const rng = initRng(options.rng);
    const init = 'kaiming_normal' as const;
    this.inputFeatureIndex = options.inputFeatureIndex ?? [0, 2];
    const extra = options.extraUpsample === undefined ? 2 : options.extraUpsample;
    const k = extra !== null ? 2 : 1;
    const out = options.outChannels, mid = out * k;
    this.up = new BilinearUpsample(options.scaleFactor ?? 4);
    this.conv = this.registerModule('conv', new Sequential(
      new Conv2d(options.inChannels, mid, 3, { padding: 1, bias: false, init, rng }), new BatchNorm2d(mid, options.norm), new ReLU(),
      new Conv2d(mid, mid, 3, { padding: 1, bias: false, init, rng }), new BatchNorm2d(mid, options.norm), new ReLU(),
    ));
    if (extra !== null) {
      this.up2 = this.registerModule('up2', new Sequential(
        new BilinearUpsample(extra),
        new Conv2d(mid, out, 3, { padding: 1, bias: false, init, rng }), new BatchNorm2d(out, options.norm), new ReLU(),
        new Conv2d(out, out, 1, { init, rng }),
      ));
    }
    if (options.lateral != null) {
      const l = options.lateral;
      this.lateral_conv = this.registerModule('lateral_conv', new Sequential(new Conv2d(l, l, 1, { bias: false, init, rng }), new BatchNorm2d(l, options.norm), new ReLU()));
    }
  }

  /** The BEV encoder stages (finest first) → [B, Y·s, X·s, outChannels] (s = the extra upsample). */
  forward(feats: tf.Tensor[]): tf.Tensor4D {
    const [fi, ci] = this.inputFeatureIndex;
    const fine = feats[fi], coarse = feats[ci];
    if (!fine || !coarse) throw new ShapeError('FPN_LSS', `input features ${fi} and ${ci}`, `${feats.length} features`);
    return tf.tidy(() => {
      const x2 = this.lateral_conv ? this.lateral_conv.forward(fine) : fine;
      const x1 = this.up.forward(coarse);
      if (x1.shape[1] !== x2.shape[1] || x1.shape[2] !== x2.shape[2])
        throw new ShapeError('FPN_LSS', `the upsampled coarse map at the fine map's size [${x2.shape.slice(1, 3)}]`, `[${x1.shape.slice(1, 3)}]`);
      const x = this.conv.forward(tf.concat([x2, x1], 3));
      return (this.up2 ? this.up2.forward(x) : x) as tf.Tensor4D;
    });
  }
}
