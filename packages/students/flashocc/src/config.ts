/**
 * FlashOcc's configuration: @bevzoo/nn's `lssOcc2DSchema`, whose defaults are the published configuration
 * (flashocc-r50: ResNet-50 C4/C5 → FPN 256 → LSS (88 depth bins 1–45 m, 64 context channels, z collapsed) → BEV
 * 200×200 at 0.4 m → CustomResNet 128/256/512 + FPN_LSS 256 → channel-to-height head 256 → 16 × 18), and presets
 * (data) that shrink widths, depths and resolutions.
 */
import type { DeepPartial } from '@bevzoo/core';
import { flashOccPresetParts, lssOcc2DFeatures, lssOcc2DLayout, lssOcc2DSchema, type LSSOcc2DConfig, type LSSOcc2DLayout } from '@bevzoo/nn';

export type FlashOccConfig = LSSOcc2DConfig;
export type FlashOccLayout = LSSOcc2DLayout;
/** The config schema (the checks of `flashoccLayout` included). */
export const flashoccConfigSchema = lssOcc2DSchema;
/** Grids, strides and channels of a config (throws a ConfigError naming the field). */
export const flashoccLayout = lssOcc2DLayout;
/** The features FlashOcc provides to distillers: `stage0..2`, `pre_head` (BEV) and `occ_logits` (voxel). */
export const flashoccFeatures = lssOcc2DFeatures;

/** Presets: configuration only (the defaults are the `paper` configuration). */
export const flashoccPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<FlashOccConfig>> = {
  /** Tests (`flashOccPresetParts.tiny` of @bevzoo/nn): images 64×176, a 40×40×8 grid (2 m × 2 m × 0.8 m), a handful of channels. */
  tiny: {
    ...flashOccPresetParts.tiny,
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176] },
  },
  /**
   * The benchmark size (`flashOccPresetParts.small` of @bevzoo/nn): BEVDet small's image branch on 128×352 images →
   * BEV 100×100 at 0.8 m → CustomResNet 16/32/64 + FPN_LSS 32 → channel-to-height head 32 → 16 heights × 18 classes:
   * the grid is 100×100×16 (0.8 m × 0.8 m × 0.4 m; Occ3D's z resolution kept, see the README).
   */
  small: {
    ...flashOccPresetParts.small,
    // √(free / class) voxel-count weights (not the reference's): unweighted, 600 steps never predict an object class
    // (FlashOcc small: mIoU 13.5 %, every object class 0; weighted: 16.1 %, see the README).
    loss: { classWeights: 'inverse-sqrt' },
    // No augmentation: in 600 steps the student underfits (mIoU 18.6 % without, 16.1 % with; see the README).
    train: { steps: 600, batchSize: 2, lr: 2e-3, warmupSteps: 30, clip: 35, evalEvery: 200, augment: false },
    data: { imageSize: [128, 352] },
  },
  /** flashocc-r50 as published: ResNet-50, 256×704, 200×200×16 at 0.4 m, AdamW 1e-4, clip 5, 200 warm-up steps, step schedule (constant for 24 epochs). */
  paper: {
    train: { lr: 1e-4, batchSize: 4, warmupSteps: 200, clip: 5, schedule: 'constant' },
    data: { imageSize: [256, 704] },
  },
};
