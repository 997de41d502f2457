import * as tf from '@tensorflow/tfjs-core';
import { ownedVariable } from './ema.js';
import { CheckpointError, TrainError } from './types.js';

/** The fused update that @bevzoo/engine registers (its fused.ts: the same arithmetic in one kernel per parameter). */
const ADAMW_KERNEL = 'BevzooAdamW';

export interface AdamWConfig {
  /** Base learning rate (the schedule scales it). */
  lr: number;
  betas?: [number, number];
  eps?: number;
  /** Decoupled weight decay (PyTorch's AdamW default 0.01). */
  weightDecay?: number;
  /**
   * Parameters exempt from weight decay: 'none' (default; PyTorch), 'bias-and-norm' (rank ≤ 1 tensors: biases and
   * norm scales/shifts, like mmcv's bias_decay_mult = norm_decay_mult = 0), or a predicate on the name and shape.
   */
  noDecay?: 'none' | 'bias-and-norm' | ((name: string, shape: number[]) => boolean);
}

interface Slot {
  name: string;
  param: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  /** Updates this parameter has had (PyTorch's per-parameter state['step']). */
  step: number;
  decay: boolean;
}

/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW, amsgrad off), per parameter with gradient g at update t:
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε).
 * Moments are allocated (zeros) at construction, so a step allocates nothing that outlives it.
 */
export class AdamW {
  readonly lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** Optimizer steps taken (calls of `step`). */
  stepCount = 0;
  private readonly slots = new Map<string, Slot>();

  constructor(params: readonly [string, tf.Variable][], cfg: AdamWConfig) {
    this.lr = cfg.lr;
    this.betas = cfg.betas ?? [0.9, 0.999];
    this.eps = cfg.eps ?? 1e-8;
    this.weightDecay = cfg.weightDecay ?? 0.01;
    if (!(this.lr >= 0) || !(this.eps >= 0) || !(this.weightDecay >= 0) || !this.betas.every((b) => b >= 0 && b < 1))
      throw new TrainError(`AdamW: expected lr ≥ 0, eps ≥ 0, weightDecay ≥ 0, betas in [0, 1), found ${JSON.stringify(cfg)}`);
    const nd = cfg.noDecay ?? 'none';
    const noDecay = nd === 'none' ? () => false : nd === 'bias-and-norm' ? (_: string, s: number[]) => s.length <= 1 : nd;
    for (const [name, param] of params) {
      if (this.slots.has(name)) throw new TrainError(`AdamW: parameter name '${name}' appears twice`);
      this.slots.set(name, {
        name,
        param,
        m: ownedVariable(tf.zerosLike(param)),
        v: ownedVariable(tf.zerosLike(param)),
        step: 0,
        decay: !noDecay(name, param.shape),
      });
    }
  }

  /** Parameter names in order. */
  names(): string[] {
    return [...this.slots.keys()];
  }

  /**
   * One update at learning rate `lr` with the given gradients by parameter name. A parameter without a gradient
   * is left alone (no decay, no moment update), as PyTorch skips params whose grad is None.
   */
  step(grads: ReadonlyMap<string, tf.Tensor> | Record<string, tf.Tensor>, lr: number = this.lr): void {
    const get = (n: string): tf.Tensor | undefined => (grads instanceof Map ? grads.get(n) : (grads as Record<string, tf.Tensor>)[n]);
    const [b1, b2] = this.betas;
    const fused = tf.getKernel(ADAMW_KERNEL, tf.getBackend()) != null;
    this.stepCount++;
    for (const s of this.slots.values()) {
      const g = get(s.name);
      if (!g) continue;
      s.step++;
      const bc1 = 1 - b1 ** s.step;
      const bc2Sqrt = Math.sqrt(1 - b2 ** s.step);
      const decay = s.decay ? 1 - lr * this.weightDecay : 1;
      tf.tidy(() => {
        if (fused) {
          const attrs = { beta1: b1, beta2: b2, eps: this.eps, decay, stepSize: lr / bc1, bc2Sqrt };
          const [p, m, v] = tf.engine().runKernel(ADAMW_KERNEL, { param: s.param, m: s.m, v: s.v, grad: g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          s.param.assign(p!);
          s.m.assign(m!);
          s.v.assign(v!);
          return;
        }
        const m = tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), this.eps);
        const p = decay === 1 ? s.param : tf.mul(s.param, decay);
        s.param.assign(tf.sub(p, tf.mul(tf.div(m, denom), lr / bc1)));
        s.m.assign(m);
        s.v.assign(v);
      });
    }
  }

  /** The moments as `exp_avg.<name>` / `exp_avg_sq.<name>` (live variables: do not dispose). */
  stateTensors(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const s of this.slots.values()) {
      out[`exp_avg.${s.name}`] = s.m;
      out[`exp_avg_sq.${s.name}`] = s.v;
    }
    return out;
  }

  /** JSON-able scalars of the state: step count, per-parameter steps that differ from it, hyper-parameters. */
  stateInfo(): AdamWStateInfo {
    const paramSteps: Record<string, number> = {};
    for (const s of this.slots.values()) if (s.step !== this.stepCount) paramSteps[s.name] = s.step;
    return { type: 'AdamW', step: this.stepCount, paramSteps, lr: this.lr, betas: this.betas, eps: this.eps, weightDecay: this.weightDecay };
  }

  /** Restore from `stateTensors()`-style tensors and `stateInfo()`; values are copied (the caller keeps the tensors). */
  loadState(tensors: Record<string, tf.Tensor>, info: AdamWStateInfo, where = 'AdamW.loadState'): void {
    const problems: string[] = [];
    for (const s of this.slots.values()) {
      for (const key of [`exp_avg.${s.name}`, `exp_avg_sq.${s.name}`]) {
        const t = tensors[key];
        if (!t) problems.push(`missing '${key}'`);
        else if (!tf.util.arraysEqual(t.shape, s.param.shape)) problems.push(`'${key}': expected shape [${s.param.shape}], found [${t.shape}]`);
      }
    }
    const known = new Set(this.names().flatMap((n) => [`exp_avg.${n}`, `exp_avg_sq.${n}`]));
    for (const k of Object.keys(tensors)) if (!known.has(k)) problems.push(`unexpected '${k}'`);
    if (problems.length) throw new CheckpointError(`${where}: optimizer state does not match the parameters: ${problems.join('; ')}`, { problems });
    for (const s of this.slots.values()) {
      s.m.assign(tensors[`exp_avg.${s.name}`]!);
      s.v.assign(tensors[`exp_avg_sq.${s.name}`]!);
      s.step = info.paramSteps[s.name] ?? info.step;
    }
    this.stepCount = info.step;
  }

  /** Free the moments (not the parameters). */
  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}

export interface AdamWStateInfo {
  type: 'AdamW';
  step: number;
  paramSteps: Record<string, number>;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}
