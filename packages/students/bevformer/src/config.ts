/**
 * BEVFormer's presets over @bevzoo/nn's schema (whose defaults are bevformer-base's encoder with a CenterHead).
 */
import type { DeepPartial } from '@bevzoo/core';
import type { BEVFormerConfig } from '@bevzoo/nn';

export type { BEVFormerConfig };

export const bevformerPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<BEVFormerConfig>> = {
  /** Tests: images 64×176, two levels (strides 8, 16), BEV 16×16 at 6.4 m, one encoder layer of 16 channels. */
  tiny: {
    backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8, outIndices: [1, 2] },
    neck: { levels: 2 },
    bev: { cellSize: 6.4 },
    encoder: { layers: 1, embedDims: 16, heads: 2, ffnChannels: 32, crossPoints: 4, selfPoints: 2 },
    head: { sharedChannels: 8, headChannels: 8 },
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176], withPrev: true },
  },
  /**
   * The benchmark size: BEVDet small's image backbone (one block per stage at ⅛ width; C4/C5 = 32/64 ch, strides
   * 16/32 of 128×352 images) → FPN 32 × 2 levels; BEV 64×64 queries at 1.6 m over ±51.2 m (the CenterPoint teacher's
   * small head grid), 2 encoder layers of 32 channels, 4 heads, FFN 64; 4 pillar heights × 2 points per level; the
   * teacher's head widths (16), so that DistillBEV's head inheritance fits.
   */
  small: {
    backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8, outIndices: [2, 3] },
    neck: { levels: 2 },
    bev: { cellSize: 1.6 },
    encoder: { layers: 2, embedDims: 32, heads: 4, ffnChannels: 64, crossPoints: 8, selfPoints: 4 },
    head: { sharedChannels: 16, headChannels: 16 },
    // validation at steps 200 and 400 (the report's curves); no augmentation: in 600 steps the student underfits, as
    // the LSS students do (their `small` presets turn it off too; README, "Augmentation in `small`")
    train: { steps: 600, batchSize: 2, lr: 1e-3, warmupSteps: 30, clip: 35, evalEvery: 200, augment: false },
    data: { imageSize: [128, 352], withPrev: true },
  },
  /**
   * bevformer-base's encoder: ResNet-101 C3–C5 → FPN 256 × 4 levels, 200×200 queries at 0.512 m, 6 layers; images
   * 896×1600 (the reference pads 900 to 928; the fourth level's stride 64 needs a multiple of 64), batch 8, lr 2e-4.
   */
  paper: {
    train: { lr: 2e-4, batchSize: 8 },
    data: { imageSize: [896, 1600], withPrev: true },
  },
};
