import { z, type DeepPartial } from '@bevzoo/core';

const weight = z.number().nonnegative();

/**
 * RadOcc's config. Every term is a switch with its weight; defaults are the authors' development code (the
 * `aaai-redocc-…-all` configuration) where the paper is silent, except RSC's mode: the segment affinity is the
 * paper's method (the reference configs use the per-ray KL, `rsc.mode: 'kl'`, preset `reference`).
 */
export const radOccConfigSchema = z.object({
  /** The voxel logits each side provides ([B, X, Y, Z, 18] in Occ3D's [x, y, z] order, class 17 = free). */
  teacherLogits: z.string().min(1).default('occ_logits'),
  studentLogits: z.string().min(1).default('occ_logits'),
  /** Rays and samples shared by teacher and student. */
  render: z.object({
    /**
     * Rays per step: pixels hit by the keyframe LiDAR, uniformly drawn (seeded, per step) down to this budget;
     * 0 = every such pixel (the reference, at its render size).
     */
    rays: z.number().int().min(0).default(2048),
    /** Camera depths [near, far) of the LiDAR points that pick pixels (the reference: 1–45 m). */
    depthRange: z.tuple([z.number().nonnegative(), z.number().positive()]).default([1, 45]),
    /** δ as a fraction of the voxel edge (cube root of the voxel volume; 0.5 → 0.2 m for 0.4 m voxels). */
    stepSize: z.number().positive().default(0.5),
    /** ξ ~ U[0, 1) per ray while training (the reference samples fixed t_k = δ·k: false). Never in evaluation. */
    jitter: z.boolean().default(true),
  }).prefault({}),
  /** Rendered depth consistency. */
  rdc: z.object({
    enabled: z.boolean().default(true),
    /**
     * 'kl': λ_d·τ²·KL(softmax(w_T/τ) ‖ softmax(w_S/τ)) of the per-ray weight distributions (RadOcc); 'depth': the
     * rendered depth values aligned (`depthLoss`), the variant that transfers badly (kept for the ablation).
     */
    mode: z.enum(['kl', 'depth']).default('kl'),
    /** λ_d (reference: 100). */
    weight: weight.default(100),
    /** τ (reference: 1; the library default 10 also appears there). */
    tau: z.number().positive().default(1),
    /** 'depth' mode: smooth L1 (β = 1; the reference head's default), L1, or SILog (variance focus 0.85). */
    depthLoss: z.enum(['smooth_l1', 'l1', 'silog']).default('smooth_l1'),
    /** 'depth' mode weight (the reference head's `loss_depth_align_weight`: 1). */
    depthWeight: weight.default(1),
  }).prefault({}),
  /** Rendered semantic consistency. */
  rsc: z.object({
    enabled: z.boolean().default(true),
    /**
     * 'affinity' (the paper): per sample, rendered semantics mean-pooled over the rays of each segment → F [M, 17];
     * A = normalise(F·Fᵀ); λ_s·mean (A_T − A_S)². Needs `batch.segments`. 'kl' (the reference configs): per-ray KL of
     * softmax(S_T) ‖ softmax(S_S).
     */
    mode: z.enum(['affinity', 'kl']).default('affinity'),
    /** λ_s of the affinity. The paper states none; 1 is the reference code's (unweighted) affinity loss. */
    weight: weight.default(1),
    /** Weight of the per-ray KL (reference: 10). */
    klWeight: weight.default(10),
    /** 'rows': F·Fᵀ with L2-normalised rows (the reference's affinity); 'cosine': cosine similarity of the F rows. */
    affinity: z.enum(['rows', 'cosine']).default('rows'),
    /** Segments with fewer rays than this are left out (0 and negative ids never form a segment). */
    minRays: z.number().int().positive().default(1),
  }).prefault({}),
  /** KL between the voxel logits over the 18 classes (the reference: weight 10; its softmax ran over the X axis, a bug). */
  voxelKl: z.object({
    enabled: z.boolean().default(true),
    weight: weight.default(10),
    tau: z.number().positive().default(1),
    /** Average over every voxel ('none', the reference) or over the camera-visible ones ('camera': reads batch.occ). */
    mask: z.enum(['none', 'camera']).default('none'),
    /**
     * Weigh each voxel's KL by a class weight of the teacher's arg-max class there (a weighted mean, as the students'
     * class-balanced cross-entropy): 'none' (the reference, whose students balance no classes either), 'reference',
     * 'inverse-sqrt' (the weights of the `small` students' cross-entropy: `loss.classWeights` in @bevzoo/nn's
     * occupancy loss) or 18 weights. Not in the reference: an unweighted KL pulls a class-balanced student back
     * towards the frequent classes (the README's figures).
     */
    classWeights: z.union([z.enum(['none', 'reference', 'inverse-sqrt']), z.array(z.number().nonnegative()).length(18)]).default('none'),
  }).prefault({}),
  /**
   * Feature imitation (the negative-transfer baseline of the paper's ablation): φ(F_S) against F_T, φ = bilinear resize
   * to the teacher's grid + 1×1 conv (BEV features) or a linear map of the channels (voxel features, same grid).
   */
  feature: z.object({
    enabled: z.boolean().default(false),
    student: z.string().min(1).default('pre_head'),
    teacher: z.string().min(1).default('pre_head'),
    /** The reference's high-level feature loss: L1, weight 0.1. */
    loss: z.enum(['l1', 'mse']).default('l1'),
    weight: weight.default(0.1),
  }).prefault({}),
  /**
   * How each KL is reduced over its distribution: 'mean' divides the KL by the number of entries (samples, classes)
   * as mmdet's KnowledgeDistillationKLDivLoss and F.kl_div's default do in the reference; 'sum' is the plain KL.
   */
  klReduction: z.enum(['mean', 'sum']).default('mean'),
});
export type RadOccConfig = z.infer<typeof radOccConfigSchema>;

/**
 * Presets (partial configs over the defaults).
 * - small (default): 2048 rays a step, jittered samples, the paper's segment affinity.
 * - reference: the authors' all-terms configuration: every LiDAR pixel a ray, fixed samples, per-ray semantic KL 10,
 *   RDC KL 100, voxel KL 10.
 * - tiny: tests and smoke runs: 256 rays a step.
 */
export const RADOCC_PRESETS: Record<string, DeepPartial<RadOccConfig>> = {
  small: {},
  reference: { render: { rays: 0, jitter: false }, rsc: { mode: 'kl', klWeight: 10 }, rdc: { mode: 'kl', weight: 100, tau: 1 }, voxelKl: { weight: 10 } },
  tiny: { render: { rays: 256 } },
};

const off = { enabled: false } as const;

/**
 * The component ablation (the paper's table: logits alignment, RDC, RSC, both, and feature alignment), each row a
 * set of overrides over the chosen preset; `bevzoo ablate radocc` adds the student baseline first.
 */
export const RADOCC_ABLATION: readonly { name: string; overrides: DeepPartial<RadOccConfig> }[] = [
  { name: '+ voxel-logit KL', overrides: { voxelKl: { enabled: true }, rdc: off, rsc: off, feature: off } },
  { name: '+ depth consistency (RDC)', overrides: { voxelKl: off, rdc: { enabled: true, mode: 'kl' }, rsc: off, feature: off } },
  { name: '+ semantic consistency (RSC)', overrides: { voxelKl: off, rdc: off, rsc: { enabled: true }, feature: off } },
  { name: 'all (RDC + RSC + voxel-logit KL)', overrides: { voxelKl: { enabled: true }, rdc: { enabled: true, mode: 'kl' }, rsc: { enabled: true }, feature: off } },
  { name: 'feature imitation', overrides: { voxelKl: off, rdc: off, rsc: off, feature: { enabled: true } } },
  { name: 'rendered depth values (naive RDC)', overrides: { voxelKl: off, rdc: { enabled: true, mode: 'depth' }, rsc: off, feature: off } },
];
