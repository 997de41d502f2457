/**
 * BEVDet4D's configuration: @bevzoo/nn's LSS detector schema with the temporal fusion on (two keyframes: the
 * current one and the previous one, `data.withPrev`), over the LSS family's sizes.
 */
import { deepMerge, type DeepPartial } from '@bevzoo/core';
import { lssDetectorPresets, type LSSDetectorConfig } from '@bevzoo/nn';

export type BEVDet4DConfig = LSSDetectorConfig;

/** What BEVDet4D changes in every size: the previous keyframe fused after its own pre-processing. */
export const BEVDET4D_SWITCHES: DeepPartial<LSSDetectorConfig> = { temporal: { frames: 2, preProcessBlocks: 2 }, data: { withPrev: true } };

/** Presets: the LSS family's `tiny`, `small` and `paper` sizes with the temporal fusion. */
export const bevdet4dPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<BEVDet4DConfig>> = {
  tiny: deepMerge(lssDetectorPresets.tiny, BEVDET4D_SWITCHES),
  small: deepMerge(lssDetectorPresets.small, BEVDET4D_SWITCHES),
  paper: deepMerge(lssDetectorPresets.paper, BEVDET4D_SWITCHES),
};
