/**
 * The configurations of the LSS occupancy models, zod schemas whose defaults are the published configurations:
 * - `lssOcc3DSchema` (BEVDet-Occ, bevdet-occ-r50): ResNet-50 C4/C5 → FPN 256 → LSS into a 3-D volume (88 depth bins
 *   1–45 m at 0.5 m, 32 channels, 200×200×16 voxels of 0.4 m) → CustomResNet3D [1, 2, 4] (32/64/128, strides 1, 2, 2)
 *   → LSSFPN3D 32 → BEVOCCHead3D (Conv3d + MLP, 32).
 * - `lssOcc2DSchema` (FlashOcc, flashocc-r50): the same camera branch with 64 context channels and z collapsed →
 *   BEV 200×200 at 0.4 m → CustomResNet 128/256/512 + FPN_LSS 256 → BEVOCCHead2D (channel-to-height, 256).
 * Both share the camera branch of the LSS family (`cameraBranchFields`), the model grid over the Occ3D volume
 * (`grid`: coarser grids train on pooled labels and predict upsampled), the pooling rule and the loss.
 */
import { checkedSchema, dataSettings, trainSettings, z, type FeatureMap, type GridSpec } from '@bevzoo/core';
import { cameraBranchFields, cameraBranchLayout, configFail, type CameraBranchLayout } from '../detectors/lss-config.js';
import type { BevPoolGrid } from '../lss/bevpool.js';
import { OCC3D, occBevGridSpec, occGrid, occGridSpec, type OccGrid } from './occ3d.js';

const int = z.number().int().positive();
const num = z.number();

/** Defaults of BEVDet-Occ / FlashOcc's camera branch (bevdet-occ-r50: CustomFPN 256, depth 1–45 m at 0.5 m). */
const occCamera = (contextChannels: number) => cameraBranchFields({ neckChannels: 256, contextChannels, depthBins: [1, 45, 0.5] });

/** Fields both occupancy models have: the grid, the label pooling, the loss, the runner's settings. */
const occCommonFields = () => ({
  /**
   * The model's voxel grid over the Occ3D volume (x, y ∈ [−40, 40], z ∈ [−1, 5.4]): metres per voxel, whole
   * multiples of Occ3D's 0.4 m. Coarser grids train on labels pooled from Occ3D's (`labels.rule`) and their
   * predictions are upsampled onto the 200×200×16 grid for evaluation.
   */
  grid: z.object({
    cellSize: num.positive().default(0.4),
    zCellSize: num.positive().default(0.4),
  }).prefault({}),
  /** How a coarse voxel's label and camera mask come from Occ3D's (see `OccPoolRule`); no effect at 0.4 m. */
  labels: z.object({ rule: z.enum(['visible', 'occupied']).default('visible') }).prefault({}),
  /**
   * Cross-entropy on the camera-visible voxels (`mask_camera`). `classWeights`: 'none' (the reference configs), 'reference'
   * (the reference's class_balance: 1 / ln(nuScenes voxel count + 0.001)), 'inverse-sqrt' (√(free count / class count)
   * on the same counts; not in the reference), or 18 weights.
   */
  loss: z.object({
    classWeights: z.union([z.enum(['none', 'reference', 'inverse-sqrt']), z.array(num.min(0)).length(OCC3D.numClasses)]).default('none'),
    weight: num.positive().default(1),
  }).prefault({}),
  train: trainSettings.prefault({}),
  /** Occupancy models read the Occ3D labels (data.occ true by default). */
  data: dataSettings.prefault({ occ: true }),
});

const occ3DFields = z.object({
  ...occCamera(32),
  ...occCommonFields(),
  /**
   * CustomResNet3D (BasicBlock3D stages; strides 1, 2, 2, …) + LSSFPN3D (all stages upsampled to the first,
   * concatenated, 1×1×1 conv).
   */
  voxelEncoder: z.object({
    /** Blocks per stage (the reference: three stages [1, 2, 4]); the volume must be divisible by 2^(stages − 1). */
    numLayers: z.array(int).min(1).max(4).default([1, 2, 4]),
    /** Stage channels (default 1×, 2×, 4×, … the context channels). */
    channels: z.array(int).nullable().default(null),
    /** LSSFPN3D output channels, the head's input (default the context channels). */
    neckChannels: int.nullable().default(null),
  }).prefault({}),
  head: z.object({
    /** BEVOCCHead3D: final_conv output channels (out_dim; the MLP's hidden layer has twice as many). */
    channels: int.default(32),
    /**
     * Sub-voxels [sx, sy, sz] of the output grid (`grid`) each volume voxel predicts (channel-to-space; the reference:
     * [1, 1, 1]). The LSS volume and the 3-D encoder run on the grid coarsened by these factors.
     */
    subvoxels: z.tuple([int, int, int]).default([1, 1, 1]),
  }).prefault({}),
});

/** FlashOcc's fields (the multi-modal occupancy model extends them). */
export const occ2DFields = z.object({
  ...occCamera(64),
  ...occCommonFields(),
  /** CustomResNet (3 stages of BasicBlocks) + FPN_LSS (stage 2 upsampled ×4 onto stage 0, concatenated, 2 convs). */
  bevEncoder: z.object({
    numLayers: z.tuple([int, int, int]).default([2, 2, 2]),
    /** Stage channels (default 2×, 4×, 8× the context channels). */
    channels: z.tuple([int, int, int]).nullable().default(null),
    /**
     * Stride of the first stage (the other two: 2). 2 (FlashOcc): FPN_LSS ends with its ×2 upsample back onto the
     * LSS grid, which must then be divisible by 8; 1: the first stage stays at the LSS grid and FPN_LSS has no
     * extra upsample (grids divisible by 4, e.g. 100×100).
     */
    firstStride: z.union([z.literal(1), z.literal(2)]).default(2),
    /** FPN_LSS output channels, the head's input. */
    neckChannels: int.default(256),
  }).prefault({}),
  /** BEVOCCHead2D: final_conv output channels (out_dim; the MLP's hidden layer has twice as many). */
  head: z.object({ channels: int.default(256) }).prefault({}),
});

export type LSSOcc3DConfig = z.infer<typeof occ3DFields>;
export type LSSOcc2DConfig = z.infer<typeof occ2DFields>;
/** What the shared occupancy model code reads. */
export type LSSOccConfig = LSSOcc3DConfig | LSSOcc2DConfig;

/** What an occupancy model builds from its config. */
export interface LSSOccLayout extends CameraBranchLayout {
  /** The model's output grid over the Occ3D volume (its logits, its pooled labels). */
  grid: OccGrid;
  /** Its voxel FeatureSpec grid (cells [X, Y, Z]). */
  voxelGrid: GridSpec;
  /** The grid of the LSS volume and the encoder: `grid`, or for BEVDet-Occ with sub-voxels, coarser. */
  volume: OccGrid;
  /** The BEV FeatureSpec grid of the encoder (cells [X, Y]). */
  bevGrid: GridSpec;
  /** The LSS output: the volume (3-D) or one z cell over it (2-D). */
  lssGrid: BevPoolGrid;
  /** Channels of the encoder stages. */
  stageChannels: number[];
  /** Channels of the head's input. */
  neckChannels: number;
}

export interface LSSOcc2DLayout extends LSSOccLayout {
  firstStride: 1 | 2;
}

/** The grids and the checks both models share; `subvoxels` coarsens the LSS volume, `zCells` 'one' collapses its z. */
function occLayoutBase(config: LSSOccConfig, zCells: 'voxels' | 'one', subvoxels: readonly [number, number, number] = [1, 1, 1]): Omit<LSSOccLayout, 'stageChannels' | 'neckChannels'> {
  const camera = cameraBranchLayout(config);
  const grid = occGrid(config.grid.cellSize, config.grid.zCellSize, (field, message) => configFail(`grid.${field}`, message));
  const [sx, sy, sz] = subvoxels;
  if (sx !== sy || grid.cells[0] % sx || grid.cells[2] % sz)
    configFail('head.subvoxels', `[s, s, sz] dividing the grid's ${grid.cells.join('×')} voxels, found [${subvoxels.join(', ')}]`);
  const volume = occGrid(grid.cellSize[0] * sx, grid.cellSize[2] * sz, (_, message) => configFail('head.subvoxels', message));
  if (!config.data.occ) configFail('data.occ', 'true (the occupancy loss reads the Occ3D labels of each batch)');
  if (config.depthSupervision.weight > 0 && !config.data.points)
    configFail('data.points', 'true with depthSupervision.weight > 0 (the depth labels come from the keyframe LiDAR points)');
  const [xmin, ymin, zmin, xmax, ymax, zmax] = OCC3D.range;
  const [cx, cy, cz] = volume.cellSize;
  const lssGrid: BevPoolGrid = { xbound: [xmin, xmax, cx], ybound: [ymin, ymax, cy], zbound: zCells === 'voxels' ? [zmin, zmax, cz] : [zmin, zmax, zmax - zmin] };
  return { ...camera, grid, voxelGrid: occGridSpec(grid), volume, bevGrid: occBevGridSpec(volume), lssGrid };
}

/** Derive and check a BEVDet-Occ config (throws a ConfigError naming the field). */
export function lssOcc3DLayout(config: LSSOcc3DConfig): LSSOccLayout {
  const base = occLayoutBase(config, 'voxels', config.head.subvoxels);
  const [X, Y, Z] = base.volume.cells;
  const n = config.voxelEncoder.numLayers.length;
  const d = 2 ** (n - 1);
  if (X % d || Y % d || Z % d)
    configFail('grid', `a volume divisible by ${d} along x, y and z (${n - 1} stride-2 encoder stages upsampled back), found ${X}×${Y}×${Z}${config.head.subvoxels.every((v) => v === 1) ? '' : ' (the grid over head.subvoxels)'}`);
  const C = config.viewTransform.contextChannels;
  const stageChannels = config.voxelEncoder.channels ?? config.voxelEncoder.numLayers.map((_, i) => C * 2 ** i);
  if (stageChannels.length !== n) configFail('voxelEncoder.channels', `one per stage (${n}), found ${stageChannels.length}`);
  return { ...base, stageChannels, neckChannels: config.voxelEncoder.neckChannels ?? C };
}

/** Derive and check a FlashOcc config (throws a ConfigError naming the field). */
export function lssOcc2DLayout(config: LSSOcc2DConfig): LSSOcc2DLayout {
  const base = occLayoutBase(config, 'one');
  const [X, Y] = base.grid.cells;
  const s = config.bevEncoder.firstStride;
  if (X % (4 * s) || Y % (4 * s))
    configFail('grid.cellSize', `BEV cells divisible by ${4 * s} (encoder strides ${s}, 2, 2; bevEncoder.firstStride 1 needs 4), found ${X}×${Y}`);
  const C = config.viewTransform.contextChannels;
  const stageChannels = (config.bevEncoder.channels ?? [2 * C, 4 * C, 8 * C]) as [number, number, number];
  return { ...base, stageChannels, neckChannels: config.bevEncoder.neckChannels, firstStride: s };
}

/** BEVDet-Occ's config schema (the fields plus the checks of `lssOcc3DLayout`). */
export const lssOcc3DSchema = checkedSchema(occ3DFields, lssOcc3DLayout);
/** FlashOcc's config schema (the fields plus the checks of `lssOcc2DLayout`). */
export const lssOcc2DSchema = checkedSchema(occ2DFields, lssOcc2DLayout);

const logitsFeature = (l: LSSOccLayout) => ({
  kind: 'voxel' as const, channels: OCC3D.numClasses, grid: l.voxelGrid,
  description: `occupancy logits of the ${OCC3D.numClasses} Occ3D classes, [B, X, Y, Z, ${OCC3D.numClasses}] in Occ3D's [x, y, z] order`,
});

/**
 * The features BEVDet-Occ provides to distillers: `voxel` (the LSSFPN3D output, the head's input, [B, X, Y, Z, C] in
 * Occ3D's order), `pre_head` (the same volume with z folded into channels, a BEV map [B, Y, X, Z·C], channel z·C + c)
 * and `occ_logits` ([B, X, Y, Z, 18]).
 */
export function lssOcc3DFeatures(config: LSSOcc3DConfig): FeatureMap {
  const l = lssOcc3DLayout(config);
  const Z = l.volume.cells[2];
  return {
    voxel: { kind: 'voxel', channels: l.neckChannels, grid: occGridSpec(l.volume), stage: -1, description: 'LSSFPN3D output (the occupancy head input), [B, X, Y, Z, C] in Occ3D order' },
    pre_head: { kind: 'bev', channels: Z * l.neckChannels, grid: l.bevGrid, stage: -1, description: 'the voxel feature with z folded into channels (channel z·C + c), NHWC [B, Y, X, Z·C]' },
    occ_logits: logitsFeature(l),
  };
}

/**
 * The features FlashOcc provides to distillers: the BEV encoder stages `stage0..2` and `pre_head` (the FPN_LSS output,
 * the channel-to-height head's input), NHWC [B, Y, X, C]; `occ_logits` ([B, X, Y, Z, 18]).
 */
export function lssOcc2DFeatures(config: LSSOcc2DConfig): FeatureMap {
  const l = lssOcc2DLayout(config);
  const stage = (i: number) => ({
    kind: 'bev' as const, channels: l.stageChannels[i]!, grid: occBevGridSpec(l.grid, l.firstStride * 2 ** i), stage: i,
    description: `BEV encoder stage ${i} (CustomResNet layers.${i}), stride ${l.firstStride * 2 ** i}`,
  });
  return {
    stage0: stage(0),
    stage1: stage(1),
    stage2: stage(2),
    pre_head: { kind: 'bev', channels: l.neckChannels, grid: l.bevGrid, stage: -1, description: 'FPN_LSS output (the channel-to-height head input)' },
    occ_logits: logitsFeature(l),
  };
}
