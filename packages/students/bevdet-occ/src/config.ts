/**
 * BEVDet-Occ's configuration: @bevzoo/nn's `lssOcc3DSchema`, whose defaults are the published configuration
 * (bevdet-occ-r50: ResNet-50 C4/C5 → FPN 256 → LSS into a 3-D volume (88 depth bins 1–45 m, 32 channels,
 * 200×200×16 voxels of 0.4 m) → CustomResNet3D [1, 2, 4] (32/64/128) → LSSFPN3D 32 → BEVOCCHead3D 32), and presets
 * (data) that shrink widths, depths and resolutions.
 */
import type { DeepPartial } from '@bevzoo/core';
import { lssOcc3DFeatures, lssOcc3DLayout, lssOcc3DSchema, type LSSOcc3DConfig, type LSSOccLayout } from '@bevzoo/nn';

export type BEVDetOccConfig = LSSOcc3DConfig;
export type BEVDetOccLayout = LSSOccLayout;
/** The config schema (the checks of `bevdetOccLayout` included). */
export const bevdetOccConfigSchema = lssOcc3DSchema;
/** Grids, strides and channels of a config (throws a ConfigError naming the field). */
export const bevdetOccLayout = lssOcc3DLayout;
/** The features BEVDet-Occ provides to distillers: `voxel`, `occ_logits` (voxel) and `pre_head` (BEV). */
export const bevdetOccFeatures = lssOcc3DFeatures;

/** Presets: configuration only (the defaults are the `paper` configuration). */
export const bevdetOccPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<BEVDetOccConfig>> = {
  /** Tests: images 64×176, a 40×40×8 output grid (2 m × 2 m × 0.8 m) from a 20×20×4 volume, a handful of channels. */
  tiny: {
    backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8 },
    neck: { outChannels: 16 },
    viewTransform: { contextChannels: 8, depthBins: [2, 50, 6] },
    grid: { cellSize: 2, zCellSize: 0.8 },
    voxelEncoder: { numLayers: [1, 1], channels: [8, 16], neckChannels: 8 },
    head: { channels: 8, subvoxels: [2, 2, 2] },
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176] },
  },
  /**
   * The benchmark size: BEVDet small's image branch (128×352 images, ResNet basic [1, 1, 1, 1] at ⅛ width, FPN 64, 49
   * depth bins 1–50 m) with 16 context channels → LSS volume 50×50×8 (1.6 m × 1.6 m × 0.8 m) → CustomResNet3D [1, 1]
   * (16/32, strides 1, 2) → LSSFPN3D 16 → BEVOCCHead3D 16 predicting 2×2×2 sub-voxels each: the output grid is
   * 100×100×16 (0.8 m × 0.8 m × 0.4 m; Occ3D's z resolution kept, see the README).
   */
  small: {
    backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8 },
    neck: { outChannels: 64 },
    viewTransform: { contextChannels: 16, depthBins: [1, 50, 1] },
    grid: { cellSize: 0.8, zCellSize: 0.4 },
    voxelEncoder: { numLayers: [1, 1], channels: [16, 32], neckChannels: 16 },
    head: { channels: 16, subvoxels: [2, 2, 2] },
    // √(free / class) voxel-count weights (not the reference's): unweighted, 600 steps never predict an object class
    // (FlashOcc small: mIoU 13.5 %, every object class 0; weighted: 16.1 %, see the README).
    loss: { classWeights: 'inverse-sqrt' },
    // No augmentation: in 600 steps the student underfits (mIoU 15.8 % without, 14.4 % with; see the README).
    train: { steps: 600, batchSize: 2, lr: 2e-3, warmupSteps: 30, clip: 35, evalEvery: 200, augment: false },
    data: { imageSize: [128, 352] },
  },
  /** bevdet-occ-r50 as published, trained as RadOcc's student: ResNet-50, 256×704, AdamW 2e-4, cosine, 500 warm-up steps, clip 35. */
  paper: {
    train: { lr: 2e-4, batchSize: 4, warmupSteps: 500, clip: 35 },
    data: { imageSize: [256, 704] },
  },
};
