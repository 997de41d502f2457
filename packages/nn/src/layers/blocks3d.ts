import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, ModuleList, Sequential } from '../module.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { initRng, type InitKind } from '../init.js';
import type { BatchNormOptions } from './batchnorm.js';
import { ConvModule3d } from './conv-module.js';
import { checkInput } from './util.js';
import { resize3d } from './interpolate.js';

/**
 * Upsample an NDHWC volume by integer factors [fd, fh, fw]: 'trilinear' with align_corners=True (as
 * BEVDet-Occ's nn.Upsample) or 'nearest'.
 */
export function upsample3d(x: tf.Tensor, factor: number | [number, number, number], mode: 'trilinear' | 'nearest' = 'trilinear'): tf.Tensor5D {
  checkInput('upsample3d', x, 5, undefined, 'NDHWC');
  const f = typeof factor === 'number' ? [factor, factor, factor] : factor;
  const [, d, h, w] = x.shape as number[];
  return resize3d(x, [d! * f[0]!, h! * f[1]!, w! * f[2]!], mode === 'trilinear' ? 'linear' : 'nearest', mode === 'trilinear');
}

export interface Block3DOptions {
  stride?: number;
  /** Shortcut ConvModule3d(3×3×3 stride s, BN, no act); default when stride or width changes. */
  downsample?: boolean;
  norm?: BatchNormOptions;
  init?: InitKind;
  rng?: Rng;
}

/**
 * 3-D basic block (BEVDet-Occ BasicBlock3D): conv1 = ConvModule3d(3³, stride s, BN, ReLU), conv2 =
 * ConvModule3d(3³, BN), shortcut downsample = ConvModule3d(3³, stride s, BN), sum, ReLU.
 */
export class BasicBlock3D extends Module {
  readonly conv1: ConvModule3d;
  readonly conv2: ConvModule3d;
  readonly downsample: ConvModule3d | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    opts: Block3DOptions = {},
  ) {
    super();
    const stride = opts.stride ?? 1;
    const rng = initRng(opts.rng);
    const common = { padding: 1, bias: false, norm: opts.norm ?? {}, init: opts.init ?? 'kaiming_normal', rng } as const;
    this.conv1 = this.registerModule('conv1', new ConvModule3d(inChannels, outChannels, 3, { ...common, stride }));
    this.conv2 = this.registerModule('conv2', new ConvModule3d(outChannels, outChannels, 3, { ...common, act: null }));
    const ds = opts.downsample ?? (stride !== 1 || inChannels !== outChannels);
    this.downsample = ds ? this.registerModule('downsample', new ConvModule3d(inChannels, outChannels, 3, { ...common, stride, act: null })) : null;
  }

  forward(x: tf.Tensor): tf.Tensor5D {
    return tf.tidy(() => {
      const y = this.conv2.forward(this.conv1.forward(x));
      return tf.relu(tf.add(y, this.downsample ? this.downsample.forward(x) : x)) as tf.Tensor5D;
    });
  }
}

export interface ResNet3DOptions {
  inChannels: number;
  /** Blocks per stage (default [1, 2, 4]). */
  numLayers?: number[];
  /** Channels per stage (default [in·2, in·4, in·8]). */
  numChannels?: number[];
  /** First-block stride per stage (default [1, 2, 2]). */
  strides?: number[];
  /** Stages returned (default all). */
  outIndices?: number[];
  norm?: BatchNormOptions;
  init?: InitKind;
  rng?: Rng;
}

/** Stages of BasicBlock3D (BEVDet-Occ CustomResNet3D); keys layers.i.j.conv1.conv.weight, …. */
export class ResNet3D extends Module {
  readonly layers: ModuleList<Sequential>;
  readonly stageChannels: number[];
  readonly outIndices: number[];

  constructor(opts: ResNet3DOptions) {
    super();
    const c0 = opts.inChannels;
    const numLayers = opts.numLayers ?? [1, 2, 4];
    this.stageChannels = opts.numChannels ?? numLayers.map((_, i) => c0 * 2 ** (i + 1));
    const strides = opts.strides ?? numLayers.map((_, i) => (i === 0 ? 1 : 2));
    if (this.stageChannels.length !== numLayers.length || strides.length !== numLayers.length) {
      throw new ConfigurationError(`ResNet3D: numLayers, numChannels and strides must have the same length`);
    }
    this.outIndices = opts.outIndices ?? numLayers.map((_, i) => i);
    const rng = initRng(opts.rng);
    this.layers = this.registerModule('layers', new ModuleList<Sequential>());
    let c = c0;
    numLayers.forEach((n, i) => {
      const blocks: BasicBlock3D[] = [];
      for (let j = 0; j < n; j++) {
        blocks.push(new BasicBlock3D(c, this.stageChannels[i]!, { stride: j === 0 ? strides[i] : 1, norm: opts.norm, init: opts.init, rng }));
        c = this.stageChannels[i]!;
      }
      this.layers.push(new Sequential(...blocks));
    });
  }

  forward(x: tf.Tensor): tf.Tensor5D[] {
    return tf.tidy(() => {
      const outs: tf.Tensor5D[] = [];
      let y = x;
      this.layers.map((l, i) => {
        y = l.forward(y);
        if (this.outIndices.includes(i)) outs.push(y as tf.Tensor5D);
      });
      return outs;
    });
  }
}

/**
 * Small 3-D FPN (BEVDet-Occ LSSFPN3D): every level upsampled (trilinear, align_corners) to the finest
 * level's size, concatenated, then ConvModule3d 1×1×1 (BN, ReLU). Keys conv.conv.weight, conv.bn.*.
 */
export class FPN3D extends Module {
  readonly conv: ConvModule3d;
  readonly mode: 'trilinear' | 'nearest';

  constructor(
    readonly inChannels: number[],
    readonly outChannels: number,
    opts: { norm?: BatchNormOptions; init?: InitKind; rng?: Rng; mode?: 'trilinear' | 'nearest' } = {},
  ) {
    super();
    this.mode = opts.mode ?? 'trilinear';
    const total = inChannels.reduce((a, b) => a + b, 0);
    this.conv = this.registerModule('conv', new ConvModule3d(total, outChannels, 1, { bias: false, norm: opts.norm ?? {}, init: opts.init ?? 'kaiming_normal', rng: initRng(opts.rng) }));
  }

  forward(feats: tf.Tensor[]): tf.Tensor5D {
    if (feats.length !== this.inChannels.length) throw new ShapeError('FPN3D', `${this.inChannels.length} levels`, `${feats.length}`);
    return tf.tidy(() => {
      const [, D, H, W] = feats[0]!.shape as number[];
      const ups = feats.map((f, i) => {
        checkInput(`FPN3D level ${i}`, f, 5, this.inChannels[i], 'NDHWC');
        const [, d, h, w] = f.shape as number[];
        const factor: [number, number, number] = [D! / d!, H! / h!, W! / w!];
        if (!factor.every((v) => Number.isInteger(v) && v >= 1)) {
          throw new ShapeError(`FPN3D level ${i}`, `a size dividing ${D}×${H}×${W}`, `${d}×${h}×${w}`);
        }
        return factor.every((v) => v === 1) ? f : upsample3d(f, factor, this.mode);
      });
      return this.conv.forward(tf.concat(ups, -1)) as tf.Tensor5D;
    });
  }
}
