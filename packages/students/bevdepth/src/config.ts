/**
 * BEVDepth's configuration: @bevzoo/nn's LSS detector schema with the camera-aware DepthNet and LiDAR depth
 * supervision, over the LSS family's sizes; the `-4d` presets add BEVDet4D's temporal fusion (BEVDepth4D, the
 * configuration the DistillBEV authors released).
 */
import { deepMerge, type DeepPartial } from '@bevzoo/core';
import { lssDetectorPresets, type LSSDetectorConfig } from '@bevzoo/nn';

export type BEVDepthConfig = LSSDetectorConfig;

/**
 * What BEVDepth changes: the camera-aware depth net (the reference's width 512, 3 residual blocks, ASPP), depth
 * supervision at BEVDepth's weight 3 from the keyframe LiDAR points (no sweeps: only keyframe points label depth).
 */
const SWITCHES: DeepPartial<LSSDetectorConfig> = {
  viewTransform: { depthNet: { type: 'camera-aware', midChannels: 512, blocks: 3, aspp: true } },
  depthSupervision: { weight: 3 },
  data: { points: true, sweeps: 0 },
};
/** BEVDet4D's temporal fusion, for the `-4d` presets. */
const TEMPORAL: DeepPartial<LSSDetectorConfig> = { temporal: { frames: 2, preProcessBlocks: 2 }, data: { withPrev: true } };

// No ASPP below `paper`: its 3×3 taps at dilations 6, 12 and 18 fall outside the 8×22 (small) and 4×11 (tiny) image
// feature maps, into the zero padding, so it degenerates into 1×1 convs there; it cost 1.4 s of a 3.5 s small step.
const sizes = {
  tiny: { viewTransform: { depthNet: { midChannels: 8, blocks: 1, aspp: false } } },
  small: { viewTransform: { depthNet: { midChannels: 64, blocks: 2, aspp: false } } },
  paper: {},
} satisfies Record<string, DeepPartial<LSSDetectorConfig>>;

const preset = (size: keyof typeof sizes, temporal: boolean): DeepPartial<BEVDepthConfig> =>
  deepMerge(deepMerge(deepMerge(lssDetectorPresets[size], SWITCHES), sizes[size]), temporal ? TEMPORAL : {});

/** Presets: BEVDepth at the LSS family's sizes (depth net 8 / 64 / 512 wide), and BEVDepth4D at the same sizes. */
export const bevdepthPresets: Record<'tiny' | 'small' | 'paper' | 'tiny-4d' | 'small-4d' | 'paper-4d', DeepPartial<BEVDepthConfig>> = {
  tiny: preset('tiny', false),
  small: preset('small', false),
  paper: preset('paper', false),
  'tiny-4d': preset('tiny', true),
  'small-4d': preset('small', true),
  'paper-4d': preset('paper', true),
};
