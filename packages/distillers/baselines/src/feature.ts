import * as tf from '@tensorflow/tfjs-core';
import { defineDistiller, type DistillerContext, type DistillerModel, type FeatureMap, type FeatureRequirement, type FeatureSpec, type ForwardOutput, type LossOutput } from '@bevzoo/core';
import { Conv2d, detach, Module, ModuleList } from '@bevzoo/nn';
import { z } from 'zod';
import { BaselineDistillError } from './errors.js';
import { featureOf, resizeTo } from './util.js';
import pkg from '../package.json' with { type: 'json' };

export const featureImitationConfigSchema = z.object({
  /** Student and teacher features to pair (both BEV, same area). */
  student: z.string().min(1).default('pre_head'),
  teacher: z.string().min(1).default('pre_head'),
  /** Loss weight. */
  weight: z.number().nonnegative().default(10),
  /** 'mse' (F.mse_loss) or 'l1', averaged over every element. */
  criterion: z.enum(['mse', 'l1']).default('mse'),
});
export type FeatureImitationConfig = z.infer<typeof featureImitationConfigSchema>;

/**
 * Plain feature imitation: L = weight · mean over (b, y, x, c) of (φ(F_S) − F_T)² (or |·| with 'l1'); φ a 1×1 conv
 * to the teacher's channels after a bilinear resize to the teacher grid when the cell counts differ. Parameter
 * keys follow the reference code's `adaptation_layers.0.{weight,bias}`.
 */
export class FeatureImitation extends Module implements DistillerModel {
  readonly adaptation_layers: ModuleList<Conv2d>;
  private readonly t: FeatureSpec;
  private readonly s: FeatureSpec;

  constructor(
    readonly config: FeatureImitationConfig,
    ctx: DistillerContext,
  ) {
    super();
    const t = ctx.teacher[config.teacher], s = ctx.student[config.student];
    if (!t || !s)
      throw new BaselineDistillError(`feature-imitation: ${!t ? `the teacher provides no feature "${config.teacher}"` : `the student provides no feature "${config.student}"`}`, { teacher: config.teacher, student: config.student });
    this.t = t;
    this.s = s;
    this.adaptation_layers = this.registerModule('adaptation_layers', new ModuleList([new Conv2d(s.channels, t.channels, 1, { rng: ctx.rng.fork('feature-imitation') })]));
  }

  /** φ(F_S): [B, Y_T, X_T, C_T]. */
  adapt(fs: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.adaptation_layers.get(0).forward(resizeTo(fs, [this.t.grid.cells[1]!, this.t.grid.cells[0]!])));
  }

  loss(args: { teacher: ForwardOutput; student: ForwardOutput; batch: unknown }): LossOutput {
    const who = 'feature-imitation';
    const ft = featureOf(args.teacher, 'teacher', this.config.teacher, this.t, who, true);
    const fs = featureOf(args.student, 'student', this.config.student, this.s, who);
    if (fs.shape[0] !== ft.shape[0]) throw new BaselineDistillError(`${who}: teacher batch ${ft.shape[0]}, student batch ${fs.shape[0]}`);
    return tf.tidy(() => {
      const diff = tf.sub(this.adapt(fs), detach(ft));
      const per = this.config.criterion === 'mse' ? tf.square(diff) : tf.abs(diff);
      const feat = tf.mul(tf.mean(per), this.config.weight) as tf.Scalar;
      return { total: tf.clone(feat) as tf.Scalar, parts: { 'distill.feat': feat } };
    });
  }
}

export function featureImitationRequires(config: FeatureImitationConfig): FeatureRequirement[] {
  const why = `feature imitation (student ${config.student} → teacher ${config.teacher})`;
  return [
    { side: 'teacher', name: config.teacher, kind: 'bev', why },
    { side: 'student', name: config.student, kind: 'bev', sameAreaAs: { side: 'teacher', name: config.teacher }, why },
  ];
}

/**
 * Presets. 'small' (default) and 'tiny': weight 10 ≈ β·C_T of DistillBEV's small preset (β = 0.2) for a
 * 50–64-channel teacher, i.e. the magnitude of DistillBEV's 'plain' ablation row (β·Σ_c averaged over the cells
 * = β·C_T·MSE); at initialisation (ReLU(N(0, 1)) features, fresh 1×1 conv: MSE ≈ 0.67) the term is ≈ 7.
 * 'reference': weight β·C_T = 4e-2 × 384 = 15.36, the same correspondence for the paper's models.
 */
export const FEATURE_IMITATION_PRESETS = {
  small: { weight: 10 },
  tiny: { weight: 10 },
  reference: { weight: 15.36 },
};

export const featureImitationPlugin = defineDistiller<FeatureImitationConfig, FeatureImitation>({
  name: 'feature-imitation',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  matrix: false, // an ablation baseline: `bevzoo ablate distillbev` runs it, the matrix does not
  description: 'Plain feature imitation: MSE over every cell between the 1×1-conv-adapted student pre-head BEV feature and the teacher pre-head feature',
  configSchema: featureImitationConfigSchema,
  presets: FEATURE_IMITATION_PRESETS,
  defaultPreset: 'small',
  requires: (config: FeatureImitationConfig, _provided: { teacher: FeatureMap; student: FeatureMap }) => featureImitationRequires(config),
  create: (config, ctx) => new FeatureImitation(config, ctx),
});
