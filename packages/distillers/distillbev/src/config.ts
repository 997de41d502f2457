import { z } from 'zod';
import type { DeepPartial } from '@bevzoo/core';
import { HEAD_NAMES } from '@bevzoo/nn';

/** One distilled layer: a student feature, the teacher feature it imitates, whether the FP term applies there. */
export const layerSchema = z.object({
  student: z.string().min(1),
  teacher: z.string().min(1),
  /** FP region term at this layer (default: on for a teacher `pre_head`, the only layer semantic enough). */
  fp: z.boolean().optional(),
  /** '1x1': (resize +) 1×1 conv; 'upsample3': upsample + three [1×1 conv, BN, ReLU]. Default: '1x1' for a pre_head pair, else 'upsample3'. */
  adapter: z.enum(['1x1', 'upsample3']).optional(),
});
export type LayerConfig = z.infer<typeof layerSchema>;

export const distillBevConfigSchema = z.object({
  /** 'auto': pre_head ↔ pre_head (with FP), then stage1 ↔ stage1 and stage2 ↔ stage2 where both sides provide them. */
  layers: z.union([z.literal('auto'), z.array(layerSchema).min(1)]).default('auto'),
  /** Split the cells into foreground / false-positive / true-negative regions; false: one uniform region weighted β. */
  regions: z.boolean().default(true),
  /** Spatial attention map A: mean of teacher and student maps (CNN students), teacher only (BEVFormer), or none (A = 1). */
  attention: z.enum(['teacher_student', 'teacher', 'none']).default('teacher_student'),
  /** Adaptive scaling S: 'sqrt' 1/√(H_k·W_k) (reference code), 'area' 1/(H_k·W_k) (paper), 'count' 1/N per region, 'none' 1. */
  scaling: z.enum(['sqrt', 'area', 'count', 'none']).default('sqrt'),
  /** The false-positive region term (at layers whose `fp` is on). */
  fp: z.boolean().default(true),
  /** FP scaling: 1/N_fp per sample ('count'), or 1/(size of the connected FP region) ('component', the reference's 'dfs' mode). */
  fpScaling: z.enum(['count', 'component']).default('count'),
  /** Channel attention A_c on the FP term only ('fp'), or on every region term ('all', the reference's channel_mask). */
  channelAttention: z.enum(['fp', 'all']).default('fp'),
  /** Attention imitation L_att (a learnable 3×3 conv per layer). */
  attentionImitation: z.boolean().default(true),
  /** setup(): copy the teacher's head.* parameters and buffers into the student where name and shape match. */
  inheritHead: z.boolean().default(true),
  /** Which part of the head to inherit: all of `head.*`, or `head.task_heads.*` only (the reference code). */
  inheritHeadScope: z.enum(['head', 'task_heads']).default('head'),
  /**
   * Task-head branches the student keeps from its own initialisation (e.g. ['rot', 'vel']): every
   * `head.task_heads.<i>.<branch>.*` tensor of these branches is left out of the inheritance.
   */
  inheritHeadExclude: z.array(z.enum(HEAD_NAMES)).default([]),
  /** α: foreground weight. */
  alpha: z.number().nonnegative().default(6e-3),
  /** β: true-negative (background) weight; the uniform weight when `regions` is off. */
  beta: z.number().nonnegative().default(4e-2),
  /** γ: false-positive weight. */
  gamma: z.number().nonnegative().default(6e-2),
  /** Weight of attention imitation. */
  wAtt: z.number().nonnegative().default(2.5e-3),
  /** Temperature of the spatial attention softmax. */
  tau: z.number().positive().default(0.5),
  /** Temperature of the channel attention softmax. */
  channelTau: z.number().positive().default(0.5),
  /** FP: teacher cells with max-class sigmoid above this. */
  teacherThreshold: z.number().min(0).max(1).default(0.1),
  /** FP: cells whose GT Gaussian heatmap is below this; null = the teacher threshold. */
  gtThreshold: z.number().min(0).max(1).nullable().default(null),
  /** GT heatmap (for FP): minimum Gaussian radius in cells and CornerNet overlap. */
  minRadius: z.number().int().nonnegative().default(2),
  gaussianOverlap: z.number().gt(0).lt(1).default(0.1),
  /** The point of a cell tested against the boxes: its centre, or its lower corner (reference code). */
  cellPoint: z.enum(['center', 'corner']).default('center'),
});
export type DistillBevConfig = z.infer<typeof distillBevConfigSchema>;

const PRE_HEAD_ONLY: LayerConfig[] = [{ student: 'pre_head', teacher: 'pre_head', fp: true }];

/**
 * Presets (partial configs over the schema defaults, which are the reference's BEVDepth4D values).
 * - reference: the BEVDepth4D column of the reference code (3 layers where the student has stages).
 * - bevformer: the BEVFormer column (1 layer, teacher attention, no FP).
 * - small (default): the small synthetic benchmark: the reference weights × 0.1. In its 600 steps the student learns
 *   most from the inherited head, and the reference weights' feature terms (≈ 100 at initialisation against a task
 *   loss ≈ 25 with the packaged CenterPoint `small` and BEVDet `small`) held it back: BEVDet `small`, seed 0, mAP / NDS
 *   in %: reference 2.14 / 16.80, × 0.5 3.05 / 19.37, × 0.25 4.50 / 16.44, × 0.1 5.35 / 20.24, × 0 (head inheritance
 *   alone) 5.20 / 17.56; baseline 2.98 / 16.58 (README, "Weights in short schedules").
 * - tiny: tests and smoke runs: the reference weights, pre-head layer only.
 */
export const DISTILLBEV_PRESETS: Record<string, DeepPartial<DistillBevConfig>> = {
  reference: { layers: 'auto', alpha: 6e-3, beta: 4e-2, gamma: 6e-2, wAtt: 2.5e-3, tau: 0.5, attention: 'teacher_student', fp: true },
  bevformer: { layers: [{ student: 'pre_head', teacher: 'pre_head', fp: false }], alpha: 5e-3, beta: 4e-3, gamma: 0, fp: false, wAtt: 5e-4, tau: 0.5, attention: 'teacher' },
  small: { layers: 'auto', alpha: 6e-4, beta: 4e-3, gamma: 6e-3, wAtt: 2.5e-4, inheritHeadExclude: ['rot', 'vel'] },
  tiny: { layers: PRE_HEAD_ONLY, alpha: 6e-3, beta: 4e-2, gamma: 6e-2, wAtt: 2.5e-3 },
};

/**
 * The component ablation (paper Table: plain → + fg/bg → + attention → + scaling → + FP), each row a config
 * override set over the chosen preset. 'plain' is DistillBEV with every component off: one uniform region,
 * S = 1/(H·W), A = 1, no FP, no attention imitation — i.e. β·Σ_c MSE over cells, the baselines package's
 * `feature-imitation` up to the weight (β·C_T) and with the same multi-scale layers. Rows before '+ scaling'
 * normalise each region by its cell count ('count'), so that only the per-object scaling is added by that row.
 */
export const DISTILLBEV_ABLATION: readonly { name: string; overrides: DeepPartial<DistillBevConfig> }[] = [
  { name: 'plain', overrides: { regions: false, attention: 'none', scaling: 'count', fp: false, attentionImitation: false } },
  { name: '+ fg/bg', overrides: { regions: true, attention: 'none', scaling: 'count', fp: false, attentionImitation: false } },
  { name: '+ attention', overrides: { regions: true, attention: 'teacher_student', scaling: 'count', fp: false, attentionImitation: true } },
  { name: '+ scaling', overrides: { regions: true, attention: 'teacher_student', scaling: 'sqrt', fp: false, attentionImitation: true } },
  { name: '+ FP', overrides: { regions: true, attention: 'teacher_student', scaling: 'sqrt', fp: true, attentionImitation: true } },
];
