/**
 * The CenterPoint-pillar config: the schema (whose defaults are the published nuScenes configuration, mmdet3d
 * `centerpoint_02pillar_second_secfpn_nus.py`), the grid geometry and the named features live in @bevzoo/nn beside
 * the detector (MVP's teacher uses them too) and are re-exported here; this file gives CenterPoint's presets.
 */
import type { DeepPartial } from '@bevzoo/core';
import { PILLAR_FEATURE_SCALE, pillarCenterPointPresetParts, type CenterPointConfig } from '@bevzoo/nn';

export { centerPointConfigSchema, centerPointFeatures, centerPointGeometry, type CenterPointConfig, type CenterPointGeometry } from '@bevzoo/nn';

/**
 * Presets (data only). `paper` is the published configuration (the schema defaults); `small` is the benchmark
 * default (4000 steps: 56 min at 1.2 steps/s on one core of this machine beside another run, GT-paste included;
 * 43 min at 1.55 steps/s on both cores before GT-paste; its trained weights ship in `checkpoints/`); `tiny` is for
 * tests.
 */
export const CENTERPOINT_PRESETS: Record<'tiny' | 'small' | 'paper', DeepPartial<CenterPointConfig>> = {
  tiny: { ...pillarCenterPointPresetParts.tiny, data: { sweeps: 2 } },
  small: {
    ...pillarCenterPointPresetParts.small,
    voxelEncoder: { ...pillarCenterPointPresetParts.small.voxelEncoder, featureScale: [...PILLAR_FEATURE_SCALE.raw, ...PILLAR_FEATURE_SCALE.offsets] },
    data: { sweeps: 9 },
  },
  paper: {},
};
