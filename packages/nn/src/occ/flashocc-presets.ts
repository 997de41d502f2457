import type { DeepPartial } from '@bevzoo/core';
import { lssDetectorPresets } from '../detectors/lss-presets.js';
import type { LSSOcc2DConfig } from './occ-config.js';

/** The model sizes of a FlashOcc preset: camera branch, grid, BEV encoder and head (no training or data settings). */
export type FlashOccPresetParts = Pick<DeepPartial<LSSOcc2DConfig>, 'backbone' | 'neck' | 'viewTransform' | 'grid' | 'bevEncoder' | 'head'>;

/** The LSS family's camera branch at a size (the image backbone, FPN and view transform of `lssDetectorPresets`). */
const cameraOf = (size: 'tiny' | 'small'): FlashOccPresetParts => {
  const { backbone, neck, viewTransform } = lssDetectorPresets[size];
  return { backbone, neck, viewTransform };
};

/**
 * FlashOcc's `tiny` and `small` sizes (LSSOcc2D), shared by the FlashOcc student, the occupancy-fusion teacher (its
 * camera branch and decoder) and RadOcc's test fixture: each spreads them and adds its own training and data settings.
 */
export const flashOccPresetParts: Record<'tiny' | 'small', FlashOccPresetParts> = {
  /** BEVDet tiny's image branch → a 40×40×8 grid (2 m × 2 m × 0.8 m), a handful of channels. */
  tiny: {
    ...cameraOf('tiny'),
    grid: { cellSize: 2, zCellSize: 0.8 },
    bevEncoder: { numLayers: [1, 1, 1], channels: [8, 16, 32], firstStride: 1, neckChannels: 8 },
    head: { channels: 8 },
  },
  /**
   * BEVDet small's image branch (ResNet basic [1, 1, 1, 1] at ⅛ width, FPN 64, 49 depth bins 1–50 m, 32 context
   * channels; its shipped starting weights fit tensor for tensor) → BEV 100×100 at 0.8 m → CustomResNet 16/32/64 (first
   * stage at stride 1: 100 is not divisible by 8) + FPN_LSS 32 → channel-to-height head 32 → 16 heights × 18 classes:
   * the grid is 100×100×16 (0.8 m × 0.8 m × 0.4 m).
   */
  small: {
    ...cameraOf('small'),
    grid: { cellSize: 0.8, zCellSize: 0.4 },
    bevEncoder: { numLayers: [1, 1, 1], channels: [16, 32, 64], firstStride: 1, neckChannels: 32 },
    head: { channels: 32 },
  },
};
