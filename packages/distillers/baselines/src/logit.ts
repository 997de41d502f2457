import * as tf from '@tensorflow/tfjs-core';
import { defineDistiller, type DistillerContext, type DistillerModel, type FeatureMap, type FeatureRequirement, type FeatureSpec, type ForwardOutput, type LossOutput } from '@bevzoo/core';
import { detach, Module } from '@bevzoo/nn';
import { z } from 'zod';
import { BaselineDistillError } from './errors.js';
import pkg from '../package.json' with { type: 'json' };
import { featureOf, resizeTo } from './util.js';

export const logitImitationConfigSchema = z.object({
  /** The heatmap logits on each side ([B, Y, X, classes], the CenterHead task outputs concatenated). */
  student: z.string().min(1).default('heatmap'),
  teacher: z.string().min(1).default('heatmap'),
  /** Loss weight. */
  weight: z.number().nonnegative().default(50),
  /** 'mse': mean squared difference (of sigmoids or logits, see `on`); 'kl': binary KL(σ(t/T) ‖ σ(s/T))·T² per element. */
  mode: z.enum(['mse', 'kl']).default('mse'),
  /** What 'mse' compares: the sigmoid probabilities (default) or the raw logits. */
  on: z.enum(['sigmoid', 'logits']).default('sigmoid'),
  /** Temperature T of 'kl'. */
  temperature: z.number().positive().default(1),
});
export type LogitImitationConfig = z.infer<typeof logitImitationConfigSchema>;

/**
 * Heatmap logit imitation, averaged over (b, y, x, class):
 * - mse/sigmoid: weight · mean (σ(s) − σ(t))²;  mse/logits: weight · mean (s − t)²;
 * - kl: weight · T² · mean [p (log p − log q) + (1 − p)(log(1 − p) − log(1 − q))], p = σ(t/T), q = σ(s/T)
 *   (log-sigmoids, so saturated logits stay finite).
 * The student's logits are resized (bilinear) to the teacher's grid when the cell counts differ. No parameters.
 */
export class LogitImitation extends Module implements DistillerModel {
  private readonly t: FeatureSpec;
  private readonly s: FeatureSpec;

  constructor(
    readonly config: LogitImitationConfig,
    ctx: DistillerContext,
  ) {
    super();
    const t = ctx.teacher[config.teacher], s = ctx.student[config.student];
    if (!t || !s)
      throw new BaselineDistillError(`logit-imitation: ${!t ? `the teacher provides no feature "${config.teacher}"` : `the student provides no feature "${config.student}"`}`, { teacher: config.teacher, student: config.student });
    if (t.channels !== s.channels)
      throw new BaselineDistillError(`logit-imitation: the student's "${config.student}" has ${s.channels} classes, the teacher's "${config.teacher}" ${t.channels}; they must match`);
    this.t = t;
    this.s = s;
  }

  loss(args: { teacher: ForwardOutput; student: ForwardOutput; batch: unknown }): LossOutput {
    const who = 'logit-imitation';
    const ft = featureOf(args.teacher, 'teacher', this.config.teacher, this.t, who, true);
    const fs = featureOf(args.student, 'student', this.config.student, this.s, who);
    if (fs.shape[0] !== ft.shape[0]) throw new BaselineDistillError(`${who}: teacher batch ${ft.shape[0]}, student batch ${fs.shape[0]}`);
    const { mode, on, temperature: T, weight } = this.config;
    return tf.tidy(() => {
      const s = resizeTo(fs, [this.t.grid.cells[1]!, this.t.grid.cells[0]!]);
      const t = detach(ft);
      let per: tf.Tensor;
      if (mode === 'mse') per = on === 'sigmoid' ? tf.square(tf.sub(tf.sigmoid(s), tf.sigmoid(t))) : tf.square(tf.sub(s, t));
      else {
        const st = tf.div(s, T), tt = tf.div(t, T);
        const p = tf.sigmoid(tt);
        // log σ(x) = −softplus(−x), log(1 − σ(x)) = −softplus(x). (tf.logSigmoid's gradient closes over an input that
        // tf.tidy may have disposed by the time the gradient runs.)
        const logP = tf.neg(tf.softplus(tf.neg(tt))), log1mP = tf.neg(tf.softplus(tt));
        const logQ = tf.neg(tf.softplus(tf.neg(st))), log1mQ = tf.neg(tf.softplus(st));
        per = tf.mul(tf.add(tf.mul(p, tf.sub(logP, logQ)), tf.mul(tf.sub(1, p), tf.sub(log1mP, log1mQ))), T * T);
      }
      const logit = tf.mul(tf.mean(per), weight) as tf.Scalar;
      return { total: tf.clone(logit) as tf.Scalar, parts: { 'distill.logit': logit } };
    });
  }
}

export function logitImitationRequires(config: LogitImitationConfig, provided: { teacher: FeatureMap; student: FeatureMap }): FeatureRequirement[] {
  const why = `logit imitation (student ${config.student} → teacher ${config.teacher})`;
  const t = provided.teacher[config.teacher];
  return [
    { side: 'teacher', name: config.teacher, kind: 'heatmap', why },
    { side: 'student', name: config.student, kind: 'heatmap', ...(t ? { channels: t.channels } : {}), sameAreaAs: { side: 'teacher', name: config.teacher }, why },
  ];
}

/**
 * Presets: weight 50 on the sigmoid MSE ('small', 'tiny', default): with the student's heatmap near its prior
 * σ(−2.19) ≈ 0.1 and a trained teacher's ≈ 0 away from objects, the mean squared difference is ≈ 0.01, so the
 * term is ≈ 0.5 — it refines the CenterHead focal loss rather than replacing it.
 * 'kl': the same imitation as binary KL at T = 1 (≈ 0.1 per element in that state), weight 5.
 */
export const LOGIT_IMITATION_PRESETS = {
  small: { weight: 50, mode: 'mse' as const },
  tiny: { weight: 50, mode: 'mse' as const },
  kl: { weight: 5, mode: 'kl' as const, temperature: 1 },
};

export const logitImitationPlugin = defineDistiller<LogitImitationConfig, LogitImitation>({
  name: 'logit-imitation',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  matrix: false, // an ablation baseline: `bevzoo ablate distillbev` runs it, the matrix does not
  description: 'Heatmap logit imitation: MSE (of sigmoids or logits) or binary KL between the student and teacher class heatmaps',
  configSchema: logitImitationConfigSchema,
  presets: LOGIT_IMITATION_PRESETS,
  defaultPreset: 'small',
  requires: logitImitationRequires,
  create: (config, ctx) => new LogitImitation(config, ctx),
});
