/**
 * The multi-modal occupancy teacher's configuration: @bevzoo/nn's `lssOccFusionSchema` (FlashOcc's camera branch and
 * decoder, whose defaults are flashocc-r50's, plus the LiDAR branch and the fuser), and presets (data) that shrink
 * widths, depths and resolutions.
 */
import type { DeepPartial } from '@bevzoo/core';
import { flashOccPresetParts, lssOccFusionFeatures, lssOccFusionLayout, lssOccFusionSchema, type LSSOccFusionConfig, type LSSOccFusionLayout } from '@bevzoo/nn';

export type OccFusionConfig = LSSOccFusionConfig;
export type OccFusionLayout = LSSOccFusionLayout;
/** The config schema (the checks of `occFusionLayout` included). */
export const occFusionConfigSchema = lssOccFusionSchema;
/** Grids, strides and channels of a config (throws a ConfigError naming the field). */
export const occFusionLayout = lssOccFusionLayout;
/** The features the teacher provides to distillers: `stage0..2`, `pre_head` (BEV, after the fusion) and `occ_logits` (voxel). */
export const occFusionFeatures = lssOccFusionFeatures;

/** Presets: configuration only (the defaults are the `paper` configuration). */
export const occFusionPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<OccFusionConfig>> = {
  /** Tests: the FlashOcc tiny camera branch and grid (40×40×8 at 2 m × 2 m × 0.8 m), a small LiDAR branch, 1 sweep. */
  tiny: {
    ...flashOccPresetParts.tiny,
    lidar: { pfnChannels: [8], numConvs: 1, channels: 8, maxPointsPerPillar: 8 },
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176], sweeps: 1 },
  },
  /**
   * The benchmark size, on the occupancy students' grid (100×100×16, 0.8 m × 0.8 m × 0.4 m): FlashOcc small's camera
   * branch (BEVDet small's image branch, 128×352) and decoder, a LiDAR branch of 0.8 m pillars (PFN 32) beside the
   * height histogram (2 × 16 channels) through two 3×3 convs of 32, keyframe + 4 sweeps.
   */
  small: {
    ...flashOccPresetParts.small,
    lidar: { pfnChannels: [32], numConvs: 2, channels: 32 },
    // The students' class weights (√(free / class) voxel counts), so that the teacher's logits rank the same classes.
    loss: { classWeights: 'inverse-sqrt' },
    train: { steps: 1200, batchSize: 2, lr: 2e-3, warmupSteps: 30, clip: 35, evalEvery: 400 },
    data: { imageSize: [128, 352], sweeps: 4 },
  },
  /** RadOcc's teacher setting: flashocc-r50's camera branch, 200×200×16 at 0.4 m, 9 sweeps; AdamW 2e-4, wd 0.01, cosine with 500 warm-up steps, clip 35. */
  paper: {
    train: { lr: 2e-4, batchSize: 4, warmupSteps: 500, clip: 35, schedule: 'cosine' },
    data: { imageSize: [256, 704] },
  },
};
