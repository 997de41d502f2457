import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, ModuleList } from '../module.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { initRng } from '../init.js';
import type { BatchNormOptions } from '../layers/batchnorm.js';
import { ConvModule } from '../layers/conv-module.js';
import { resize2d } from '../layers/interpolate.js';

export interface FPNForBEVDetOptions {
  /** Levels whose 3×3 output conv is built and returned (default [0], the finest input). */
  outIds?: number[];
  /** Norm in the convs (default none, as BEVDet's config). */
  norm?: BatchNormOptions | false;
  rng?: Rng;
}

/**
 * BEVDet's image neck (FPNForBEVDet): mmdet's FPN top-down pathway (1×1 laterals, nearest upsampling to the finer
 * level's size, added) with 3×3 output convs only on `outIds`; returns those levels (BEVDet: one map at the
 * stride of the first input, e.g. C4 → stride 16). Keys: `lateral_convs.{i}.conv.*`, `fpn_convs.{j}.conv.*`.
 */
export class FPNForBEVDet extends Module {
  readonly lateral_convs: ModuleList<ConvModule>;
  readonly fpn_convs: ModuleList<ConvModule>;
  readonly outIds: number[];

  constructor(
    readonly inChannels: number[],
    readonly outChannels: number,
    opts: FPNForBEVDetOptions = {},
  ) {
    super();
    this.outIds = opts.outIds ?? [0];
    if (this.outIds.some((i) => !(i >= 0 && i < inChannels.length)))
      throw new ConfigurationError(`FPNForBEVDet: outIds [${this.outIds}] must index the ${inChannels.length} input levels`);
    const rng = initRng(opts.rng);
    const common = { norm: opts.norm ?? false, act: null, init: 'xavier_uniform', rng } as const;
    this.lateral_convs = this.registerModule('lateral_convs', new ModuleList<ConvModule>());
    this.fpn_convs = this.registerModule('fpn_convs', new ModuleList<ConvModule>());
    inChannels.forEach((c) => this.lateral_convs.push(new ConvModule(c, outChannels, 1, common)));
    for (const _ of this.outIds) this.fpn_convs.push(new ConvModule(outChannels, outChannels, 3, { ...common, padding: 1 }));
  }

  forward(inputs: tf.Tensor[]): tf.Tensor4D[] {
    if (inputs.length !== this.inChannels.length) throw new ShapeError('FPNForBEVDet', `${this.inChannels.length} input levels`, `${inputs.length}`);
    return tf.tidy(() => {
      const laterals = this.lateral_convs.map((l, i) => l.forward(inputs[i]!) as tf.Tensor4D);
      for (let i = laterals.length - 1; i > 0; i--) {
        const fine = laterals[i - 1]!;
        laterals[i - 1] = tf.add(fine, resize2d(laterals[i]!, [fine.shape[1], fine.shape[2]], 'nearest'));
      }
      return this.outIds.map((id, j) => this.fpn_convs.get(j).forward(laterals[id]!) as tf.Tensor4D);
    });
  }
}
