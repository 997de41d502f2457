import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import type { InitKind } from '../init.js';
import { Conv2d } from './conv2d.js';
import { Conv3d } from './conv3d.js';
import { BatchNorm2d, BatchNorm3d, type BatchNormOptions } from './batchnorm.js';
import type { Pair, Triple } from './util.js';

export interface ConvModuleOptions {
  stride?: number;
  padding?: number | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  /** 'auto' (default): a bias only when there is no norm (mmcv). */
  bias?: boolean | 'auto';
  /** BatchNorm options, or false for no norm (default: BatchNorm with PyTorch defaults). */
  norm?: BatchNormOptions | false;
  /** Activation after the norm (default 'relu'). */
  act?: 'relu' | 'leaky_relu' | null;
  /** Negative slope of 'leaky_relu' (default 0.01, as PyTorch's LeakyReLU). */
  negativeSlope?: number;
  init?: InitKind;
  rng?: Rng;
}

/**
 * conv → BN → ReLU (or LeakyReLU, or none) with mmcv ConvModule names (`conv`, `bn`), so keys read like
 * `lateral_convs.0.conv.weight`, `lateral_convs.0.bn.running_mean`.
 */
export class ConvModule extends Module {
  readonly conv: Conv2d | Conv3d;
  readonly bn: BatchNorm2d | BatchNorm3d | null;
  readonly act: 'relu' | 'leaky_relu' | null;
  readonly negativeSlope: number;

  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: ConvModuleOptions = {}, dims: 2 | 3 = 2) {
    super();
    const norm = opts.norm ?? {};
    const bias = opts.bias === undefined || opts.bias === 'auto' ? norm === false : opts.bias;
    const common = { stride: opts.stride ?? 1, padding: opts.padding ?? 0, bias, init: opts.init, rng: opts.rng };
    this.conv = this.registerModule(
      'conv',
      dims === 2
        ? new Conv2d(inChannels, outChannels, kernelSize, { ...common, dilation: opts.dilation, groups: opts.groups })
        : new Conv3d(inChannels, outChannels, kernelSize as Triple, common),
    );
    this.bn = norm === false ? null : this.registerModule('bn', dims === 2 ? new BatchNorm2d(outChannels, norm) : new BatchNorm3d(outChannels, norm));
    this.act = opts.act === undefined ? 'relu' : opts.act;
    this.negativeSlope = opts.negativeSlope ?? 0.01;
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y: tf.Tensor = this.conv.forward(x);
      if (this.bn) y = this.bn.forward(y);
      return this.act === 'relu' ? tf.relu(y) : this.act === 'leaky_relu' ? tf.leakyRelu(y, this.negativeSlope) : y;
    });
  }
}

/** Conv3d → BN3d → ReLU (mmcv ConvModule with conv_cfg Conv3d). */
export class ConvModule3d extends ConvModule {
  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: Omit<ConvModuleOptions, 'dilation' | 'groups'> = {}) {
    super(inChannels, outChannels, kernelSize, opts, 3);
  }
}
