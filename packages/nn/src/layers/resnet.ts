import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, Sequential } from '../module.js';
import { ConfigurationError } from '../errors.js';
import { initRng, type InitKind } from '../init.js';
import { Conv2d } from './conv2d.js';
import { BatchNorm2d, type BatchNormOptions } from './batchnorm.js';
import { MaxPool2d } from './pool.js';

export interface BlockOptions {
  stride?: number;
  /**
   * Shortcut projection: 'conv1x1-bn' (torchvision: Sequential(conv1×1 stride s, BN)), 'conv3x3'
   * (BEVDet's BEV encoder: one 3×3 conv stride s with bias), or null for the identity. Default: a
   * conv1x1-bn projection when the stride or the width changes.
   */
  downsample?: 'conv1x1-bn' | 'conv3x3' | null;
  norm?: BatchNormOptions;
  init?: InitKind;
  rng?: Rng;
}

function makeDownsample(kind: BlockOptions['downsample'], inC: number, outC: number, stride: number, opts: BlockOptions, rng: Rng): Module | null {
  if (kind === null) return null;
  if (kind === 'conv3x3') return new Conv2d(inC, outC, 3, { stride, padding: 1, init: opts.init ?? 'kaiming_normal', rng });
  return new Sequential(new Conv2d(inC, outC, 1, { stride, bias: false, init: opts.init ?? 'kaiming_normal', rng }), new BatchNorm2d(outC, opts.norm));
}

function defaultDownsample(opts: BlockOptions, inC: number, outC: number, stride: number): BlockOptions['downsample'] {
  return opts.downsample !== undefined ? opts.downsample : stride !== 1 || inC !== outC ? 'conv1x1-bn' : null;
}

/** ResNet basic block (two 3×3 convs); torchvision names conv1, bn1, conv2, bn2, downsample. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: (Module & { forward(x: tf.Tensor): tf.Tensor }) | null;

  constructor(
    readonly inChannels: number,
    readonly planes: number,
    opts: BlockOptions = {},
  ) {
    super();
    const stride = opts.stride ?? 1;
    const rng = initRng(opts.rng);
    const init = opts.init ?? 'kaiming_normal';
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, planes, 3, { stride, padding: 1, bias: false, init, rng }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes, opts.norm));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false, init, rng }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes, opts.norm));
    const ds = makeDownsample(defaultDownsample(opts, inChannels, planes, stride), inChannels, planes, stride, opts, rng);
    this.downsample = ds ? (this.registerModule('downsample', ds) as BasicBlock['downsample']) : null;
  }

  get outChannels(): number {
    return this.planes;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.bn2.forward(this.conv2.forward(tf.relu(this.bn1.forward(this.conv1.forward(x)))));
      const identity = this.downsample ? this.downsample.forward(x) : x;
      return tf.relu(tf.add(y, identity)) as tf.Tensor4D;
    });
  }
}

/** ResNet bottleneck (1×1 → 3×3 stride s → 1×1 ×4; torchvision v1.5, stride on the 3×3). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: (Module & { forward(x: tf.Tensor): tf.Tensor }) | null;

  constructor(
    readonly inChannels: number,
    readonly planes: number,
    opts: BlockOptions = {},
  ) {
    super();
    const stride = opts.stride ?? 1;
    const rng = initRng(opts.rng);
    const init = opts.init ?? 'kaiming_normal';
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', new Conv2d(inChannels, planes, 1, { bias: false, init, rng }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes, opts.norm));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false, init, rng }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes, opts.norm));
    this.conv3 = this.registerModule('conv3', new Conv2d(planes, out, 1, { bias: false, init, rng }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(out, opts.norm));
    const ds = makeDownsample(defaultDownsample(opts, inChannels, out, stride), inChannels, out, stride, opts, rng);
    this.downsample = ds ? (this.registerModule('downsample', ds) as Bottleneck['downsample']) : null;
  }

  get outChannels(): number {
    return this.planes * Bottleneck.expansion;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      let y = tf.relu(this.bn1.forward(this.conv1.forward(x)));
      y = tf.relu(this.bn2.forward(this.conv2.forward(y)));
      y = this.bn3.forward(this.conv3.forward(y));
      const identity = this.downsample ? this.downsample.forward(x) : x;
      return tf.relu(tf.add(y, identity)) as tf.Tensor4D;
    });
  }
}

export interface ResNetOptions {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage, e.g. [2, 2, 2, 2] for ResNet-18. */
  layers: number[];
  /** Planes per stage (default [64, 128, 256, 512]); a bottleneck stage outputs 4× planes. */
  widths?: number[];
  /** First-block stride per stage (default [1, 2, 2, …]). */
  strides?: number[];
  /** Input channels (default 3). */
  inChannels?: number;
  /** Stem conv7×7 s2 + BN + ReLU + maxpool3×3 s2 (default true); without it stage 1 takes the input directly. */
  stem?: boolean;
  /** Stem width (default 64). */
  stemWidth?: number;
  /** Shortcut projection of the first block of each stage (see `BlockOptions.downsample`). */
  downsample?: 'conv1x1-bn' | 'conv3x3';
  /** Stages returned by `forward`, 0-based (default all). */
  outIndices?: number[];
  norm?: BatchNormOptions;
  init?: InitKind;
  rng?: Rng;
}

/**
 * ResNet backbone with torchvision names (conv1, bn1, layer1 … layerN); `forward` returns the stages
 * listed in `outIndices` (NHWC).
 */
export class ResNet extends Module {
  readonly conv1: Conv2d | null = null;
  readonly bn1: BatchNorm2d | null = null;
  readonly maxpool: MaxPool2d | null = null;
  readonly stages: Sequential[] = [];
  /** Channels of every stage (all stages, not only the returned ones). */
  readonly stageChannels: number[] = [];
  readonly outIndices: number[];

  constructor(readonly options: ResNetOptions) {
    super();
    const { block, layers } = options;
    const widths = options.widths ?? [64, 128, 256, 512].slice(0, layers.length);
    const strides = options.strides ?? layers.map((_, i) => (i === 0 ? 1 : 2));
    if (widths.length !== layers.length || strides.length !== layers.length) {
      throw new ConfigurationError(`ResNet: layers (${layers.length}), widths (${widths.length}) and strides (${strides.length}) must have one entry per stage`);
    }
    this.outIndices = options.outIndices ?? layers.map((_, i) => i);
    if (this.outIndices.some((i) => i < 0 || i >= layers.length)) {
      throw new ConfigurationError(`ResNet: outIndices [${this.outIndices}] out of range for ${layers.length} stages`);
    }
    const rng = initRng(options.rng);
    const init = options.init ?? 'kaiming_normal';
    let c = options.inChannels ?? 3;
    if (options.stem ?? true) {
      const sw = options.stemWidth ?? 64;
      this.conv1 = this.registerModule('conv1', new Conv2d(c, sw, 7, { stride: 2, padding: 3, bias: false, init, rng }));
      this.bn1 = this.registerModule('bn1', new BatchNorm2d(sw, options.norm));
      this.maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
      c = sw;
    }
    const Block = block === 'basic' ? BasicBlock : Bottleneck;
    layers.forEach((n, i) => {
      const blocks: (BasicBlock | Bottleneck)[] = [];
      for (let j = 0; j < n; j++) {
        const stride = j === 0 ? strides[i]! : 1;
        const out = widths[i]! * Block.expansion;
        const downsample = j === 0 && (stride !== 1 || c !== out) ? (options.downsample ?? 'conv1x1-bn') : null;
        const b = new Block(c, widths[i]!, { stride, downsample, norm: options.norm, init, rng });
        blocks.push(b);
        c = out;
      }
      this.stages.push(this.registerModule(`layer${i + 1}`, new Sequential(...blocks)));
      this.stageChannels.push(c);
    });
  }

  /** Channels of the returned stages. */
  get outChannels(): number[] {
    return this.outIndices.map((i) => this.stageChannels[i]!);
  }

  forward(x: tf.Tensor): tf.Tensor4D[] {
    return tf.tidy(() => {
      let y = x;
      if (this.conv1 && this.bn1 && this.maxpool) y = this.maxpool.forward(tf.relu(this.bn1.forward(this.conv1.forward(y))));
      const outs: tf.Tensor4D[] = [];
      this.stages.forEach((s, i) => {
        y = s.forward(y);
        if (this.outIndices.includes(i)) outs.push(y as tf.Tensor4D);
      });
      return outs;
    });
  }
}

/** Named ResNet configurations; tiny variants keep the structure with fewer blocks and channels. */
export const resnetPresets = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  'resnet18-tiny': { block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128], stemWidth: 16 },
  'resnet50-tiny': { block: 'bottleneck', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 16 },
} as const satisfies Record<string, ResNetOptions>;

export type ResNetPreset = keyof typeof resnetPresets;

/** A ResNet from a preset name with overrides (e.g. `{ outIndices: [2, 3] }`). */
export function createResNet(name: ResNetPreset, overrides: Partial<ResNetOptions> = {}): ResNet {
  const preset = resnetPresets[name] as ResNetOptions | undefined;
  if (!preset) throw new ConfigurationError(`createResNet: unknown preset '${name}'; known: ${Object.keys(resnetPresets).join(', ')}`);
  return new ResNet({ ...preset, layers: [...preset.layers], ...overrides });
}
