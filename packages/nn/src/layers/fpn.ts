import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, ModuleList } from '../module.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { initRng, type InitKind } from '../init.js';
import type { BatchNormOptions } from './batchnorm.js';
import { ConvModule } from './conv-module.js';

export interface FPNOptions {
  /** Number of output levels (default: the number of used inputs); extra levels are max-pool(1, stride 2) of the last. */
  numOuts?: number;
  /** First input level used (default 0). */
  startLevel?: number;
  /** Norm in the lateral and output convs (default none, as mmdet's FPN). */
  norm?: BatchNormOptions | false;
  /** Activation in the lateral and output convs (default none). */
  act?: 'relu' | null;
  init?: InitKind;
  rng?: Rng;
}

/**
 * Feature pyramid network (mmdet FPN): lateral 1×1 convs, top-down pathway (nearest upsampling to the
 * finer level's size, added), 3×3 output convs. Keys: lateral_convs.i.conv.weight, fpn_convs.i.conv.weight.
 */
export class FPN extends Module {
  readonly lateral_convs: ModuleList<ConvModule>;
  readonly fpn_convs: ModuleList<ConvModule>;
  readonly startLevel: number;
  readonly numOuts: number;

  constructor(
    readonly inChannels: number[],
    readonly outChannels: number,
    opts: FPNOptions = {},
  ) {
    super();
    this.startLevel = opts.startLevel ?? 0;
    const used = inChannels.length - this.startLevel;
    if (used < 1) throw new ConfigurationError(`FPN: startLevel ${this.startLevel} leaves no input among ${inChannels.length}`);
    this.numOuts = opts.numOuts ?? used;
    if (this.numOuts < used) throw new ConfigurationError(`FPN: numOuts ${this.numOuts} < used input levels ${used}`);
    const rng = initRng(opts.rng);
    const common = { norm: opts.norm ?? false, act: opts.act ?? null, init: opts.init ?? 'xavier_uniform', rng } as const;
    this.lateral_convs = this.registerModule('lateral_convs', new ModuleList<ConvModule>());
    this.fpn_convs = this.registerModule('fpn_convs', new ModuleList<ConvModule>());
    for (let i = this.startLevel; i < inChannels.length; i++) {
      this.lateral_convs.push(new ConvModule(inChannels[i]!, outChannels, 1, common));
      this.fpn_convs.push(new ConvModule(outChannels, outChannels, 3, { ...common, padding: 1 }));
    }
  }

  forward(inputs: tf.Tensor[]): tf.Tensor4D[] {
    if (inputs.length !== this.inChannels.length) {
      throw new ShapeError('FPN', `${this.inChannels.length} input levels`, `${inputs.length}`);
    }
    return tf.tidy(() => {
      const laterals = this.lateral_convs.map((l, i) => l.forward(inputs[i + this.startLevel]!) as tf.Tensor4D);
      for (let i = laterals.length - 1; i > 0; i--) {
        const fine = laterals[i - 1]!;
        const up = tf.image.resizeNearestNeighbor(laterals[i]!, [fine.shape[1], fine.shape[2]]);
        laterals[i - 1] = tf.add(fine, up);
      }
      const outs = laterals.map((l, i) => this.fpn_convs.get(i).forward(l) as tf.Tensor4D);
      while (outs.length < this.numOuts) outs.push(tf.maxPool(outs[outs.length - 1]!, 1, 2, 'valid'));
      return outs;
    });
  }
}
