import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module, ModuleList, Sequential, type UnaryModule } from '../module.js';
import { Conv2d } from '../layers/conv2d.js';
import { ConvModule } from '../layers/conv-module.js';
import type { BatchNormOptions } from '../layers/batchnorm.js';
import { ShapeError } from '../errors.js';
import { centerHeadBoxForward, decodeBoxOutputs, type FusedTaskOutput } from './fused.js';
import { CenterHeadError, centerHeadConfig, REG_HEADS, type CenterHeadConfig, type CenterHeadConfigInput, type HeadName } from './config.js';
import { centerHeadBoxLoss, centerHeadLoss, type CenterHeadLoss, type TaskOutput } from './loss.js';
import { buildTargets, type CenterHeadTargets, type GtBox } from './targets.js';
import { decodeCenterHead, type DetBox } from './decode.js';

export interface CenterHeadOptions {
  /** Generator for the initial weights (default: nn's module-level one). */
  rng?: Rng;
  /** BatchNorm options of every ConvModule (default PyTorch's eps 1e-5, momentum 0.1, as mmdet3d's BN2d). */
  norm?: BatchNormOptions;
}

const leaky = (slope: number | undefined) => (slope ? { act: 'leaky_relu' as const, negativeSlope: slope } : {});

/**
 * mmdet3d SeparateHead: per output a Sequential of `numConvs[name]` − 1 ConvModules (3×3, no bias, `headChannels` wide)
 * → Conv2d(3×3, bias). Registration order reg, height, dim, rot, vel, heatmap (mmdet3d's dict order), so keys read
 * `task_heads.0.reg.0.conv.weight`, …, `task_heads.0.heatmap.1.bias` (with one conv: `task_heads.0.vel.0.weight`).
 * Weights: Kaiming normal (fan_out, relu) on the regression branches, PyTorch default on the heatmap branch, biases 0,
 * heatmap bias `heatmapBias`.
 */
export class SeparateHead extends Module {
  readonly branches = new Map<HeadName, Sequential>();

  constructor(inChannels: number, headChannels: number, numClasses: number, heatmapBias: number, opts: CenterHeadOptions & Partial<Pick<CenterHeadConfig, 'numConvs' | 'leakyRelu'>> = {}) {
    super();
    const outs: [HeadName, number][] = [...REG_HEADS.map(([n, c]) => [n, c] as [HeadName, number]), ['heatmap', numClasses]];
    for (const [name, ch] of outs) {
      // As mmdet3d 0.17's SeparateHead.init_weights (the code DistillBEV and BEVDet build on): Kaiming init on the
      // regression branches, PyTorch's default init on the heatmap branch (only its final bias is set). Kaiming
      // there starts the focal loss orders of magnitude too high.
      const init = name === 'heatmap' ? 'default' : 'kaiming_normal';
      const layers: UnaryModule[] = [];
      let c = inChannels;
      for (let i = 1; i < (opts.numConvs?.[name] ?? 2); i++, c = headChannels)
        layers.push(new ConvModule(c, headChannels, 3, { padding: 1, norm: opts.norm ?? {}, init, rng: opts.rng, ...leaky(opts.leakyRelu?.[name]) }));
      const last = new Conv2d(c, ch, 3, { padding: 1, bias: true, init, rng: opts.rng });
      if (name === 'heatmap') {
        const b = tf.fill([ch], heatmapBias);
        last.bias!.assign(b);
        b.dispose();
      }
      this.branches.set(name, this.registerModule(name, new Sequential(...layers, last)));
    }
  }

  /** x [B, H, W, inChannels] → the six NHWC outputs. */
  forward(x: tf.Tensor4D): TaskOutput {
    return tf.tidy(() => {
      const out = {} as Record<HeadName, tf.Tensor4D>;
      for (const [name, seq] of this.branches) out[name] = seq.forward(x) as tf.Tensor4D;
      return out;
    });
  }
}

/**
 * CenterPoint's CenterHead (mmdet3d): shared 3×3 ConvModule to `sharedChannels`, then one SeparateHead per task
 * group. Keys: `shared_conv.conv.weight`, `shared_conv.bn.*`, `task_heads.{t}.{reg|height|dim|rot|vel|heatmap}.{0.conv|0.bn|1}.*`.
 * Tensors are NHWC (weights in tfjs layout; `torchStateDict()` gives PyTorch layouts).
 */
export class CenterHead extends Module {
  readonly config: CenterHeadConfig;
  readonly shared_conv: ConvModule;
  readonly task_heads: ModuleList<SeparateHead>;

  constructor(config: CenterHeadConfig | CenterHeadConfigInput, opts: CenterHeadOptions = {}) {
    super();
    this.config = centerHeadConfig(config);
    const c = this.config;
    this.shared_conv = this.registerModule('shared_conv', new ConvModule(c.inChannels, c.sharedChannels, 3, { padding: 1, norm: opts.norm ?? {}, init: 'kaiming_normal', rng: opts.rng }));
    this.task_heads = this.registerModule(
      'task_heads',
      new ModuleList(c.tasks.map((t) => new SeparateHead(c.sharedChannels, c.headChannels, t.length, c.heatmapBias, { ...opts, numConvs: c.numConvs, leakyRelu: c.leakyRelu }))),
    );
  }

  /** x [B, H, W, inChannels] (the BEV feature; rows = y cells, columns = x cells) → one TaskOutput per task. */
  forward(x: tf.Tensor4D): TaskOutput[] {
    if (x.rank !== 4 || x.shape[3] !== this.config.inChannels)
      throw new ShapeError('CenterHead.forward', `[B, H, W, ${this.config.inChannels}] (NHWC)`, `[${x.shape.join(', ')}]`);
    const outs = tf.tidy(() => {
      const shared = this.shared_conv.forward(x) as tf.Tensor4D;
      return this.task_heads.map((h) => h.forward(shared)) as unknown as tf.TensorContainer;
    });
    return outs as unknown as TaskOutput[];
  }

  /** Training targets for a batch of GT box lists (pure JS; see `buildTargets`). */
  targets(boxes: readonly (readonly GtBox[])[]): CenterHeadTargets {
    return buildTargets(boxes, this.config);
  }

  loss(outputs: readonly TaskOutput[], targets: CenterHeadTargets): CenterHeadLoss {
    return centerHeadLoss(outputs, targets, this.config);
  }

  /** Boxes per sample in the ego BEV frame. */
  decode(outputs: readonly TaskOutput[]): Promise<DetBox[][]> {
    return decodeCenterHead(outputs, this.config);
  }

  /** `forward` in the fused form {heatmap, box} per task (the branches' convs fused when possible; same results, faster). */
  forwardBoxes(x: tf.Tensor4D): FusedTaskOutput[] {
    if (x.rank !== 4 || x.shape[3] !== this.config.inChannels)
      throw new ShapeError('CenterHead.forwardBoxes', `[B, H, W, ${this.config.inChannels}] (NHWC)`, `[${x.shape.join(', ')}]`);
    return centerHeadBoxForward(this, x);
  }

  lossBoxes(outputs: readonly FusedTaskOutput[], targets: CenterHeadTargets): CenterHeadLoss {
    return centerHeadBoxLoss(outputs, targets, this.config);
  }

  decodeBoxes(outputs: readonly FusedTaskOutput[]): Promise<DetBox[][]> {
    return decodeBoxOutputs(outputs, this.config);
  }
}

/** Dispose every tensor of a list of task outputs. */
export function disposeTaskOutputs(outputs: readonly TaskOutput[]): void {
  for (const o of outputs) tf.dispose(Object.values(o));
}
