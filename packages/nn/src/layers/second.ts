import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, ModuleList, Sequential, type UnaryModule } from '../module.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { initRng, type InitKind } from '../init.js';
import { Conv2d } from './conv2d.js';
import { ConvTranspose2d } from './conv-transpose2d.js';
import { BatchNorm2d, type BatchNormOptions } from './batchnorm.js';
import { ReLU } from './activation.js';

/** mmdet3d's norm_cfg for SECOND / SECONDFPN / PillarFeatureNet: BN eps 1e-3, momentum 0.01. */
export const SECOND_NORM: BatchNormOptions = { eps: 1e-3, momentum: 0.01 };

export interface SECONDOptions {
  inChannels?: number;
  /** Channels per stage (default [64, 128, 256]). */
  outChannels?: number[];
  /** 3×3 convs after the strided conv, per stage (default [3, 5, 5]). */
  layerNums?: number[];
  /** Stride of each stage's first conv (default [2, 2, 2]). */
  layerStrides?: number[];
  norm?: BatchNormOptions;
  init?: InitKind;
  rng?: Rng;
}

/**
 * SECOND RPN backbone (mmdet3d): each stage is Sequential[conv3×3 stride s, BN, ReLU, n × (conv3×3, BN,
 * ReLU)], so keys read blocks.i.0.weight (conv), blocks.i.1.running_mean (BN), blocks.i.3.weight, ….
 * `forward` returns every stage's output (NHWC).
 */
export class SECOND extends Module {
  readonly blocks: ModuleList<Sequential>;
  readonly outChannels: number[];
  readonly layerStrides: number[];

  constructor(opts: SECONDOptions = {}) {
    super();
    const inC = opts.inChannels ?? 64;
    this.outChannels = opts.outChannels ?? [64, 128, 256];
    const layerNums = opts.layerNums ?? [3, 5, 5];
    this.layerStrides = opts.layerStrides ?? [2, 2, 2];
    if (layerNums.length !== this.outChannels.length || this.layerStrides.length !== this.outChannels.length) {
      throw new ConfigurationError(`SECOND: outChannels, layerNums and layerStrides must have the same length (${this.outChannels.length}, ${layerNums.length}, ${this.layerStrides.length})`);
    }
    const norm = opts.norm ?? SECOND_NORM;
    const init = opts.init ?? 'kaiming_normal';
    const rng = initRng(opts.rng);
    this.blocks = this.registerModule('blocks', new ModuleList<Sequential>());
    let c = inC;
    this.outChannels.forEach((out, i) => {
      const mods: UnaryModule[] = [new Conv2d(c, out, 3, { stride: this.layerStrides[i], padding: 1, bias: false, init, rng }), new BatchNorm2d(out, norm), new ReLU()];
      for (let j = 0; j < layerNums[i]!; j++) {
        mods.push(new Conv2d(out, out, 3, { padding: 1, bias: false, init, rng }), new BatchNorm2d(out, norm), new ReLU());
      }
      this.blocks.push(new Sequential(...mods));
      c = out;
    });
  }

  forward(x: tf.Tensor): tf.Tensor4D[] {
    return tf.tidy(() => {
      const outs: tf.Tensor4D[] = [];
      let y = x;
      for (const b of this.blocks) {
        y = b.forward(y);
        outs.push(y as tf.Tensor4D);
      }
      return outs;
    });
  }
}

export interface SECONDFPNOptions {
  /** Channels of each input level (default [128, 128, 256]). */
  inChannels?: number[];
  /** Channels after each deblock (default [256, 256, 256]). */
  outChannels?: number[];
  /**
   * Per level: > 1 upsample with ConvTranspose2d(k = s, stride s); 1 a 1×1 ConvTranspose2d (or Conv2d
   * with `useConvForNoStride`); < 1 downsample with Conv2d(k = 1/s, stride 1/s). Default [1, 2, 4].
   */
  upsampleStrides?: number[];
  useConvForNoStride?: boolean;
  norm?: BatchNormOptions;
  init?: InitKind;
  rng?: Rng;
}

/**
 * SECONDFPN neck (mmdet3d): per level deblock Sequential[deconv/conv, BN, ReLU] to a common stride, then
 * concatenated along channels. Keys: deblocks.i.0.weight, deblocks.i.1.running_var, ….
 */
export class SECONDFPN extends Module {
  readonly deblocks: ModuleList<Sequential>;
  readonly inChannels: number[];
  readonly outChannels: number[];

  constructor(opts: SECONDFPNOptions = {}) {
    super();
    this.inChannels = opts.inChannels ?? [128, 128, 256];
    this.outChannels = opts.outChannels ?? [256, 256, 256];
    const strides = opts.upsampleStrides ?? [1, 2, 4];
    if (this.outChannels.length !== this.inChannels.length || strides.length !== this.inChannels.length) {
      throw new ConfigurationError(`SECONDFPN: inChannels, outChannels and upsampleStrides must have the same length (${this.inChannels.length}, ${this.outChannels.length}, ${strides.length})`);
    }
    const norm = opts.norm ?? SECOND_NORM;
    const init = opts.init ?? 'kaiming_normal';
    const rng = initRng(opts.rng);
    this.deblocks = this.registerModule('deblocks', new ModuleList<Sequential>());
    this.inChannels.forEach((inC, i) => {
      const s = strides[i]!;
      const out = this.outChannels[i]!;
      let up: UnaryModule;
      if (s > 1 || (s === 1 && !opts.useConvForNoStride)) {
        if (!Number.isInteger(s)) throw new ConfigurationError(`SECONDFPN: upsample stride ${s} must be an integer or 1/integer`);
        up = new ConvTranspose2d(inC, out, s, { stride: s, bias: false, init, rng });
      } else {
        const k = Math.round(1 / s);
        if (!(k >= 1) || Math.abs(1 / k - s) > 1e-6) throw new ConfigurationError(`SECONDFPN: upsample stride ${s} must be an integer or 1/integer`);
        up = new Conv2d(inC, out, k, { stride: k, bias: false, init, rng });
      }
      this.deblocks.push(new Sequential(up, new BatchNorm2d(out, norm), new ReLU()));
    });
  }

  /** Total output channels (sum of outChannels). */
  get channels(): number {
    return this.outChannels.reduce((a, b) => a + b, 0);
  }

  forward(inputs: tf.Tensor[]): tf.Tensor4D {
    if (inputs.length !== this.inChannels.length) throw new ShapeError('SECONDFPN', `${this.inChannels.length} input levels`, `${inputs.length}`);
    return tf.tidy(() => {
      const ups = this.deblocks.map((d, i) => d.forward(inputs[i]!));
      const [h, w] = [ups[0]!.shape[1], ups[0]!.shape[2]];
      ups.forEach((u, i) => {
        if (u.shape[1] !== h || u.shape[2] !== w) {
          throw new ShapeError(`SECONDFPN deblock ${i}`, `output ${h}×${w} like level 0`, `${u.shape[1]}×${u.shape[2]}`);
        }
      });
      return tf.concat(ups, -1) as tf.Tensor4D;
    });
  }
}
