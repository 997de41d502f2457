/**
 * The MVP config: @bevzoo/nn's CenterPoint-pillar schema reading MVP's 17-value points (`data.virtualPoints`), and
 * the presets.
 */
import { MVP_POINT_FEATURES, type DeepPartial } from '@bevzoo/core';
import { PILLAR_FEATURE_SCALE, pillarCenterPointPresetParts, pillarCenterPointSchema, type CenterPointConfig } from '@bevzoo/nn';

/** The values of each point the model reads (`Batch.points[b]` with `data.virtualPoints`). */
export const MVP_POINT_LAYOUT = 'x, y, z, intensity, Δt, class one-hot ×10, mask score, virtual flag';

/** What every MVP config reads: LiDAR points with MVP's paintings and virtual points, no images. */
const MVP_DATA = { images: false, points: true, virtualPoints: true } as const;

/**
 * The MVP schema: CenterPoint-pillar's (defaults: the published mmdet3d 02pillar configuration) with 17 raw features
 * per point and `data.virtualPoints` on. A config that turns virtual points off, or reads another number of point
 * features, is rejected naming the field.
 */
export const mvpConfigSchema = pillarCenterPointSchema({ pointFeatures: MVP_POINT_FEATURES, data: { ...MVP_DATA, sweeps: 9 } }).superRefine((cfg, ctx) => {
  if (cfg.data.virtualPoints !== true)
    ctx.addIssue({ code: 'custom', path: ['data', 'virtualPoints'], message: `MVP reads virtual points: expected true, found ${String(cfg.data.virtualPoints)}` });
  if (cfg.voxelEncoder.pointFeatures !== MVP_POINT_FEATURES)
    ctx.addIssue({ code: 'custom', path: ['voxelEncoder', 'pointFeatures'], message: `MVP's points have ${MVP_POINT_FEATURES} values (${MVP_POINT_LAYOUT}): expected ${MVP_POINT_FEATURES}, found ${cfg.voxelEncoder.pointFeatures}` });
});

/** An MVP config (CenterPoint-pillar's, `voxelEncoder.pointFeatures` = 17). */
export type MVPConfig = CenterPointConfig;

/**
 * Factors on the 22 decorated point features (PillarFeatureNet.decorate's order: the 17 raw values, the offsets to the
 * pillar's point mean x, y, z, the offsets to the pillar centre x, y): CenterPoint small's factors on x, y, z,
 * intensity, Δt and on the offsets, 1 on the one-hot, the mask score and the virtual flag (already in [0, 1]).
 */
export const MVP_FEATURE_SCALE: readonly number[] = [
  ...PILLAR_FEATURE_SCALE.raw, // x, y, z, intensity, Δt
  ...Array<number>(10).fill(1), 1, 1, // class one-hot, mask score, virtual flag
  ...PILLAR_FEATURE_SCALE.offsets, // offsets to the pillar's point mean x, y, z and to the pillar centre x, y
];

/**
 * Presets (data only). `small` is CenterPoint small with the wider input (same grid, widths, head and schedule: 4000
 * steps, GT-paste until 0.75, evaluation every 500 steps), so that the two teachers compare fairly; `paper` is the
 * MVP repository's CenterPoint-pillar config (`configs/mvp/nusc_centerpoint_pp_fix_bn_z_scale_virtual.py`: pillars
 * 0.2 m, PFN [64, 64], 30000 / 60000 pillars, rotated NMS, no GT-paste; the paper's best numbers use the VoxelNet
 * variant at 0.075 m voxels, which bevzoo does not have); `tiny` is for tests.
 */
export const MVP_PRESETS: Record<'tiny' | 'small' | 'paper', DeepPartial<MVPConfig>> = {
  tiny: {
    ...pillarCenterPointPresetParts.tiny,
    voxelEncoder: { ...pillarCenterPointPresetParts.tiny.voxelEncoder, featureScale: [...MVP_FEATURE_SCALE] },
    data: { ...MVP_DATA, sweeps: 2 },
  },
  small: {
    ...pillarCenterPointPresetParts.small,
    voxelEncoder: { ...pillarCenterPointPresetParts.small.voxelEncoder, featureScale: [...MVP_FEATURE_SCALE] },
    data: { ...MVP_DATA, sweeps: 9 },
  },
  paper: {
    pillars: { maxPillarsTest: 60000 },
    voxelEncoder: { featChannels: [64, 64] },
    head: { decode: { nms: 'rotate', iouThreshold: 0.2, preMaxSize: 1000, postMaxSize: 83 } },
    // Adam with weight decay 0.01, one-cycle to 1e-3 (here: warm-up + cosine to the same peak), clip 35; GT-AUG off.
    train: { lr: 1e-3, weightDecay: 0.01, clip: 35, objectSample: false },
    data: { ...MVP_DATA, sweeps: 9 },
  },
};
