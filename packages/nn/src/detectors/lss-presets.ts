import type { DeepPartial } from '@bevzoo/core';
import type { LSSDetectorConfig } from './lss-config.js';

/**
 * The sizes of the LSS family (configuration only; the schema defaults are the `paper` configuration). BEVDet uses
 * them as they are; BEVDet4D and BEVDepth add their switches over them.
 */
export const lssDetectorPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<LSSDetectorConfig>> = {
  /** Tests: images 64×176, BEV 32×32 at 3.2 m, a handful of channels. */
  tiny: {
    backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8 },
    neck: { outChannels: 16 },
    viewTransform: { contextChannels: 8, depthBins: [2, 50, 6] },
    grid: { cellSize: 3.2 },
    bevEncoder: { numLayers: [1, 1, 1], neckChannels: 16 },
    head: { sharedChannels: 8, headChannels: 8 },
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176] },
  },
  /**
   * The benchmark default, sized for ≈ 0.7 s per training step of batch 2 on one wasm thread: images 128×352, a
   * one-block-per-stage ResNet at ⅛ width (C4/C5 = 32/64 ch), FPN 64, 49 depth bins 1–50 m, 32 context channels,
   * BEV 64×64 at 1.6 m over ±51.2 m (the CenterPoint teacher's small head grid), encoder 32/64/128 → 32, head 16/8.
   */
  small: {
    backbone: { block: 'basic', layers: [1, 1, 1, 1], widths: [8, 16, 32, 64], stemWidth: 8 },
    neck: { outChannels: 64 },
    viewTransform: { contextChannels: 32, depthBins: [1, 50, 1] },
    grid: { cellSize: 1.6 },
    bevEncoder: { numLayers: [2, 2, 2], channels: [32, 64, 128], neckChannels: 32 },
    // The teacher's head widths, so that DistillBEV's inherited head fits tensor for tensor. ReLU in the velocity
    // branch (the teacher's is LeakyReLU, which has no parameters): with LeakyReLU here the distilled student scored
    // mAP / NDS 1.2 / 10.8 % against 1.6 / 14.2 % with ReLU (seed 0, see the README).
    head: { sharedChannels: 16, headChannels: 16 },
    // Validation at steps 200 and 400 (the report's curves). No image or BEV augmentation: in 600 steps the student
    // underfits (BEVDet's mAP on 48 train samples 1.6 %, as on val), and augmentation only slows it down: BEVDet's
    // val mAP / NDS 1.85 / 12.8 % with it, 2.98 / 16.6 and 3.01 / 15.9 % (seeds 0, 1) without; BEVDet4D 3.21 / 19.4 %
    // without (seed 0; README). The `paper` preset keeps BEVDet's augmentation.
    train: { steps: 600, batchSize: 2, lr: 2e-3, warmupSteps: 30, clip: 35, evalEvery: 200, augment: false },
    data: { imageSize: [128, 352] },
  },
  /** bevdet-r50 as published: ResNet-50, 256×704, 59 bins, BEV 128×128 at 0.8 m, FPN 512, encoder 128/256/512 → 256. */
  paper: {
    train: { lr: 2e-4, batchSize: 8 },
    data: { imageSize: [256, 704] },
  },
};
