/**
 * A faster evaluation of @bevzoo/nn's CenterHead with the same parameters and the same results. Per task, the six
 * branches (reg, height, dim, rot, vel, heatmap) read the same shared feature, so
 * - their first ConvModules (3×3 conv → BN → ReLU) run as one conv with the weights concatenated along the output
 *   channels and one BN (BN is per channel: the statistics and running-stat updates are each branch's own);
 * - their final 3×3 convs run as one conv whose weight is block-diagonal (each branch's weight placed on its own
 *   input channels, zeros elsewhere), giving [B, H, W, 10 + classes] = the anno_box code, then the heatmap logits.
 *   A one-conv branch (`numConvs` 1) reads the shared feature, appended to the hidden features for that conv.
 * On the wasm backend this replaces 12 small convolutions (and their gradients) per task by 2, and needs no channel
 * split of a large activation (the stock wasm Slice copies its whole input on every call).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DetBox } from './decode.js';
import { decodeCenterHead } from './decode.js';
import { CenterHeadError, REG_HEADS, type HeadName } from './config.js';
import type { TaskOutput } from './loss.js';
import type { CenterHead } from './head.js';
import { BatchNorm, batchNormTraining } from '../layers/batchnorm.js';
import { Conv2d } from '../layers/conv2d.js';
import { ConvModule } from '../layers/conv-module.js';
import { Sequential } from '../module.js';

/** One task's head output in fused form. */
export interface FusedTaskOutput {
  /** [B, H, W, classes] heatmap logits. */
  heatmap: tf.Tensor4D;
  /** [B, H, W, 10] regression in anno_box order: offset x, y, z, log w, l, h, sin, cos, vx, vy. */
  box: tf.Tensor4D;
}

/** Branch order of the fused convs: the anno_box code first, then the heatmap. */
const ORDER: HeadName[] = [...REG_HEADS.map(([n]) => n), 'heatmap'];

interface Branch {
  /** The hidden ConvModule; null for a one-conv branch (its output conv reads the shared feature). */
  first: ConvModule | null;
  last: Conv2d;
}

/** Each branch's layers; throws unless every branch is [ConvModule,] Conv2d (one or two convs). */
function taskBranches(head: CenterHead, task: number): Branch[] {
  const sep = head.task_heads.get(task);
  return ORDER.map((name) => {
    const layers = [...((sep.branches.get(name) as Sequential | undefined) ?? [])];
    const last = layers.at(-1), first = layers.length === 2 ? layers[0] : null;
    if (!(last instanceof Conv2d) || layers.length > 2 || (layers.length === 2 && !(first instanceof ConvModule)))
      throw new CenterHeadError(`fusedCenterHeadForward: head.task_heads.${task}.${name}: expected Sequential([ConvModule,] Conv2d), found Sequential(${layers.map((l) => l.constructor.name).join(', ')})`);
    return { first: first as ConvModule | null, last };
  });
}

const samePads = (c: Conv2d) => c.pads.every((p) => p === c.pads[0]) && c.stride.join() === '1,1' && c.dilation.join() === '1,1' && !c.depthwise;

/**
 * Whether the head can run fused: one or two convs per branch, 3×3-style convs with symmetric padding and stride 1,
 * BN + ReLU or LeakyReLU, one BN setting, at least one two-conv branch per task.
 */
export function canFuseHead(head: CenterHead): boolean {
  let tasks: Branch[][];
  try {
    tasks = head.task_heads.map((_, t) => taskBranches(head, t));
  } catch (e) {
    if (e instanceof CenterHeadError) return false;
    throw e;
  }
  const bn0 = tasks[0]!.find((b) => b.first)?.first?.bn;
  if (!(bn0 instanceof BatchNorm)) return false;
  const k1 = (tasks[0]!.find((b) => b.first)!.first!.conv as Conv2d).kernelSize.join(), k2 = tasks[0]![0]!.last.kernelSize.join();
  return tasks.every((bs) =>
    bs.some((b) => b.first) &&
    bs.every(({ first, last }) => {
      if (!(samePads(last) && last.bias !== null && last.kernelSize.join() === k2)) return false;
      if (!first) return true;
      const c = first.conv as Conv2d;
      return (
        c instanceof Conv2d && samePads(c) && c.bias === null && (first.act === 'relu' || first.act === 'leaky_relu') && c.kernelSize.join() === k1 &&
        first.bn instanceof BatchNorm && first.bn.weight !== null && first.bn.eps === bn0.eps && first.bn.momentum === bn0.momentum
      );
    }),
  );
}

/** BatchNorm over the concatenated channels of several BN layers, updating each layer's running statistics in training. */
function fusedBatchNorm(y: tf.Tensor4D, bns: BatchNorm[]): tf.Tensor4D {
  const bn0 = bns[0]!;
  const gamma = tf.concat(bns.map((b) => b.weight!)), beta = tf.concat(bns.map((b) => b.bias!));
  if (!bn0.training) return tf.batchNorm(y, tf.concat(bns.map((b) => b.running_mean)), tf.concat(bns.map((b) => b.running_var)), beta, gamma, bn0.eps) as tf.Tensor4D;
  const widths = bns.map((b) => b.numFeatures);
  const n = y.size / y.shape[3];
  const { y: out, mean, variance } = batchNormTraining(y, gamma, beta, bn0.eps);
  const means = tf.split(mean, widths), vars = tf.split(variance, widths);
  bns.forEach((b, i) => b.track(means[i]!, vars[i]!, n));
  return out as tf.Tensor4D;
}

/** The CenterHead forward with each task's branches fused (see the module comment). Call only when `canFuseHead`. */
export function fusedCenterHeadForward(head: CenterHead, x: tf.Tensor4D): FusedTaskOutput[] {
  const outs = tf.tidy(() => {
    const shared = head.shared_conv.forward(x) as tf.Tensor4D;
    return head.task_heads.map((_, t) => {
      const bs = taskBranches(head, t);
      const hidden = bs.filter((b) => b.first).map((b) => b.first!);
      const c1 = hidden[0]!.conv as Conv2d;
      const w1 = tf.concat(hidden.map((h) => h.conv.weight as tf.Tensor4D), 3);
      const z = fusedBatchNorm(tf.conv2d(shared, w1, 1, c1.pads[0]!), hidden.map((m) => m.bn as BatchNorm));
      // ReLU, or per channel PReLU with slope 0 on ReLU branches and the negative slope on LeakyReLU ones.
      const h = hidden.every((m) => m.act === 'relu')
        ? tf.relu(z)
        : (tf.prelu(z, tf.concat(hidden.map((m) => tf.fill([(m.conv as Conv2d).outChannels], m.act === 'leaky_relu' ? m.negativeSlope : 0)))) as tf.Tensor4D);
      // The final conv's input: the hidden features of the two-conv branches, then (if a branch has one conv) the
      // shared feature. Block-diagonal final weight: each branch's [kh, kw, c_in, k] on the rows of its own input.
      const hc = h.shape[3], sc = shared.shape[3];
      const oneConv = bs.some((b) => !b.first);
      const y = oneConv ? tf.concat([h, shared], 3) : h;
      const total = hc + (oneConv ? sc : 0);
      let off = 0;
      const blocks = bs.map((b) => {
        const cin = b.last.inChannels, at = b.first ? off : hc;
        if (b.first) off += cin;
        return tf.pad(b.last.weight as tf.Tensor4D, [[0, 0], [0, 0], [at, total - at - cin], [0, 0]]);
      });
      const l0 = bs[0]!.last;
      const o = tf.add(tf.conv2d(y, tf.concat(blocks, 3), 1, l0.pads[0]!), tf.concat(bs.map((b) => b.last.bias!))) as tf.Tensor4D;
      const [B, H, W, C] = o.shape;
      return {
        box: tf.slice(o, [0, 0, 0, 0], [B, H, W, 10]),
        heatmap: tf.slice(o, [0, 0, 0, 10], [B, H, W, C - 10]),
      } as FusedTaskOutput;
    }) as unknown as tf.TensorContainer;
  });
  return outs as unknown as FusedTaskOutput[];
}

/** Per task {heatmap, box}: fused when the head allows it (`canFuseHead`), else `forward` with the regressions concatenated. */
export function centerHeadBoxForward(head: CenterHead, x: tf.Tensor4D, fuse = canFuseHead(head)): FusedTaskOutput[] {
  if (fuse) return fusedCenterHeadForward(head, x);
  const tasks = head.forward(x);
  const out = tf.tidy(() => tasks.map((t) => ({ heatmap: tf.clone(t.heatmap), box: tf.concat(REG_HEADS.map(([n]) => t[n]), 3) })) as unknown as tf.TensorContainer);
  for (const t of tasks) tf.dispose(Object.values(t));
  return out as unknown as FusedTaskOutput[];
}

/** Decode fused outputs into boxes per sample (see `decodeCenterHead`); the outputs stay the caller's. */
export async function decodeBoxOutputs(tasks: readonly FusedTaskOutput[], cfg: Parameters<typeof decodeCenterHead>[1]): Promise<DetBox[][]> {
  const split = tf.tidy(() =>
    tasks.map((o) => {
      const [B, H, W] = o.box.shape;
      const r: Record<string, tf.Tensor4D> = { heatmap: o.heatmap };
      let c = 0;
      for (const [name, k] of REG_HEADS) {
        r[name] = tf.slice(o.box, [0, 0, 0, c], [B, H, W, k]);
        c += k;
      }
      return r as unknown as TaskOutput;
    }) as unknown as tf.TensorContainer,
  ) as unknown as TaskOutput[];
  try {
    return await decodeCenterHead(split, cfg);
  } finally {
    for (const t of split) tf.dispose(REG_HEADS.map(([n]) => t[n]));
  }
}

/**
 * Fused outputs as named tensors `task{i}.heatmap`, `task{i}.box` (what a model returns in `ForwardOutput.outputs`),
 * plus all tasks' heatmap logits concatenated along channels (the `heatmap` feature distillers read; a new tensor).
 */
export function boxOutputsRecord(tasks: readonly FusedTaskOutput[]): { outputs: Record<string, tf.Tensor>; heatmap: tf.Tensor4D } {
  const outputs: Record<string, tf.Tensor> = {};
  tasks.forEach((t, i) => {
    outputs[`task${i}.heatmap`] = t.heatmap;
    outputs[`task${i}.box`] = t.box;
  });
  const heatmap = tasks.length === 1 ? tasks[0]!.heatmap.clone() : (tf.concat(tasks.map((t) => t.heatmap), 3) as tf.Tensor4D);
  return { outputs, heatmap };
}

/** The inverse of `boxOutputsRecord`: the fused outputs of `numTasks` tasks from named tensors. */
export function boxOutputsFrom(outputs: Record<string, tf.Tensor>, numTasks: number, where = 'forward outputs'): FusedTaskOutput[] {
  return Array.from({ length: numTasks }, (_, i) => {
    const get = (k: string) => {
      const t = outputs[`task${i}.${k}`];
      if (!t) throw new CenterHeadError(`${where}: expected task${i}.${k}, found keys ${Object.keys(outputs).join(', ')}`);
      return t as tf.Tensor4D;
    };
    return { heatmap: get('heatmap'), box: get('box') };
  });
}
