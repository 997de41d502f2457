import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, TrainError } from './types.js';

export interface EmaConfig {
  /** ema ← d·ema + (1 − d)·param after every optimizer step. */
  decay: number;
  /** Ramp the decay early on: d = min(decay, (1 + n)/(10 + n)) after n updates (TensorFlow's num_updates rule). */
  warmup?: boolean;
}

/** Exponential moving average of parameters (a shadow copy per parameter). */
export class Ema {
  readonly decay: number;
  readonly warmup: boolean;
  /** Updates made so far. */
  updates = 0;
  private readonly shadow = new Map<string, { param: tf.Variable; avg: tf.Variable }>();

  constructor(params: readonly [string, tf.Variable][], cfg: EmaConfig) {
    if (!(cfg.decay >= 0 && cfg.decay <= 1)) throw new TrainError(`Ema: decay must be in [0, 1], found ${cfg.decay}`);
    this.decay = cfg.decay;
    this.warmup = cfg.warmup ?? false;
    for (const [name, param] of params) this.shadow.set(name, { param, avg: ownedVariable(param.clone()) });
  }

  /** The decay the next update uses. */
  currentDecay(): number {
    return this.warmup ? Math.min(this.decay, (1 + this.updates) / (10 + this.updates)) : this.decay;
  }

  update(): void {
    const d = this.currentDecay();
    for (const s of this.shadow.values()) {
      tf.tidy(() => s.avg.assign(tf.add(tf.mul(s.avg, d), tf.mul(s.param, 1 - d))));
    }
    this.updates++;
  }

  /** The averages by parameter name (live variables: do not dispose). */
  stateTensors(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [n, s] of this.shadow) out[n] = s.avg;
    return out;
  }

  /** Exchange the parameters' values with the averages (call again to swap back), e.g. to evaluate EMA weights. */
  swap(): void {
    for (const s of this.shadow.values()) {
      const p = s.param.clone();
      s.param.assign(s.avg);
      s.avg.assign(p);
      p.dispose();
    }
  }

  loadState(tensors: Record<string, tf.Tensor>, updates: number, where = 'Ema.loadState'): void {
    const problems: string[] = [];
    for (const [n, s] of this.shadow) {
      const t = tensors[n];
      if (!t) problems.push(`missing '${n}'`);
      else if (!tf.util.arraysEqual(t.shape, s.param.shape)) problems.push(`'${n}': expected shape [${s.param.shape}], found [${t.shape}]`);
    }
    for (const k of Object.keys(tensors)) if (!this.shadow.has(k)) problems.push(`unexpected '${k}'`);
    if (problems.length) throw new CheckpointError(`${where}: EMA state does not match the parameters: ${problems.join('; ')}`, { problems });
    for (const [n, s] of this.shadow) s.avg.assign(tensors[n]!);
    this.updates = updates;
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.avg.dispose();
    this.shadow.clear();
  }
}

/** A non-trainable variable holding `init`'s values; `init` is disposed (tf.variable would leave it registered). */
export function ownedVariable(init: tf.Tensor): tf.Variable {
  const v = tf.variable(init, false);
  init.dispose();
  return v;
}
