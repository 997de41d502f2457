/**
 * The occupancy heads of BEVDet-Occ and FlashOcc (names as the reference's `occ_head.*`):
 * - `VoxelOccHead` (BEVOCCHead3D): `final_conv` (Conv3d 3×3×3 with bias, ReLU) → `predicter` (Linear C → 2C,
 *   Softplus, Linear 2C → classes) on every voxel.
 * - `ChannelToHeightHead` (BEVOCCHead2D, FlashOcc's channel-to-height): `final_conv` (Conv2d 3×3 with bias, ReLU)
 *   → `predicter` (Linear C → 2C, Softplus, Linear 2C → Z·classes) on every BEV cell, the Z·classes channels
 *   reshaped into the vertical axis (channel z·K + k = class k at height z). No 3-D convolution.
 * Both return logits [B, X, Y, Z, K] in Occ3D's [x, y, z] order.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, Sequential } from '../module.js';
import { ShapeError } from '../errors.js';
import { initRng } from '../init.js';
import { ConvModule, ConvModule3d } from '../layers/conv-module.js';
import { Linear } from '../layers/linear.js';
import { Softplus } from '../layers/activation.js';
import { OCC3D } from './occ3d.js';

export interface OccHeadOptions {
  /** Channels of `final_conv`'s output (the reference's out_dim); the predicter's hidden layer has twice as many. */
  channels: number;
  numClasses?: number;
  rng?: Rng;
}

function predicter(channels: number, out: number, rng: Rng): Sequential {
  return new Sequential(new Linear(channels, 2 * channels, { rng }), new Softplus(), new Linear(2 * channels, out, { rng }));
}

/**
 * BEVOCCHead3D: volume [B, X, Y, Z, inChannels] (Occ3D order) → logits [B, X·sx, Y·sy, Z·sz, K]. With `subvoxels`
 * [sx, sy, sz] ≠ [1, 1, 1] (not in the reference) the predicter outputs sx·sy·sz·K logits per voxel, channel
 * ((i·sy + j)·sz + k)·K + c being class c of sub-voxel (i, j, k): a volume coarser than the output grid, as
 * FlashOcc's channel-to-height does for z.
 */
export class VoxelOccHead extends Module {
  readonly final_conv: ConvModule3d;
  readonly predicter: Sequential;
  readonly numClasses: number;
  readonly subvoxels: [number, number, number];

  constructor(readonly inChannels: number, opts: OccHeadOptions & { subvoxels?: [number, number, number] }) {
    super();
    const rng = initRng(opts.rng);
    this.numClasses = opts.numClasses ?? OCC3D.numClasses;
    this.subvoxels = opts.subvoxels ?? [1, 1, 1];
    const [sx, sy, sz] = this.subvoxels;
    this.final_conv = this.registerModule('final_conv', new ConvModule3d(inChannels, opts.channels, 3, { padding: 1, bias: true, norm: false, init: 'kaiming_normal', rng }));
    this.predicter = this.registerModule('predicter', predicter(opts.channels, sx * sy * sz * this.numClasses, rng));
  }

  forward(x: tf.Tensor): tf.Tensor5D {
    if (x.rank !== 5) throw new ShapeError('VoxelOccHead', `[B, X, Y, Z, ${this.inChannels}]`, `[${x.shape}]`);
    return tf.tidy(() => {
      const y = this.predicter.forward(this.final_conv.forward(x));
      const [sx, sy, sz] = this.subvoxels;
      if (sx * sy * sz === 1) return y as tf.Tensor5D;
      const [B, X, Y, Z] = x.shape as number[];
      const K = this.numClasses;
      // (B, X, Y, Z, sx, sy, sz, K) → (B, X, sx, Y, sy, Z, sz, K) with rank-4 transposes
      const a = tf.transpose(tf.reshape(y, [B! * X!, Y! * Z!, sx, sy * sz * K]), [0, 2, 1, 3]); // B X sx | Y Z | sy sz K
      const b = tf.transpose(tf.reshape(a, [B! * X! * sx * Y!, Z!, sy, sz * K]), [0, 2, 1, 3]); // B X sx Y | sy | Z | sz K
      return tf.reshape(b, [B!, X! * sx, Y! * sy, Z! * sz, K]) as tf.Tensor5D;
    });
  }
}

/** BEVOCCHead2D (channel-to-height): BEV map [B, Y, X, inChannels] (NHWC, rows = y) → logits [B, X, Y, Z, K]. */
export class ChannelToHeightHead extends Module {
  readonly final_conv: ConvModule;
  readonly predicter: Sequential;
  readonly numClasses: number;

  constructor(readonly inChannels: number, readonly Z: number, opts: OccHeadOptions) {
    super();
    const rng = initRng(opts.rng);
    this.numClasses = opts.numClasses ?? OCC3D.numClasses;
    this.final_conv = this.registerModule('final_conv', new ConvModule(inChannels, opts.channels, 3, { padding: 1, bias: true, norm: false, init: 'kaiming_normal', rng }));
    this.predicter = this.registerModule('predicter', predicter(opts.channels, Z * this.numClasses, rng));
  }

  forward(x: tf.Tensor): tf.Tensor5D {
    if (x.rank !== 4) throw new ShapeError('ChannelToHeightHead', `[B, Y, X, ${this.inChannels}]`, `[${x.shape}]`);
    const [B, Y, X] = x.shape as number[];
    return tf.tidy(() => {
      const f = tf.transpose(this.final_conv.forward(x), [0, 2, 1, 3]); // [B, X, Y, C] (the reference's permute)
      return tf.reshape(this.predicter.forward(f), [B!, X!, Y!, this.Z, this.numClasses]) as tf.Tensor5D;
    });
  }
}
