/**
 * BEVFormer's configuration (Li et al., ECCV 2022): a zod schema whose defaults are bevformer-base's encoder
 * (ResNet C3–C5 → FPN 256 × 4 levels; BEV 200×200 queries of 256 channels, learned positional embedding; 6 encoder
 * layers of temporal self-attention → norm → spatial cross-attention → norm → FFN 512 → norm; 8 heads; 4 pillar
 * heights over z ∈ [−5, 3] with 2 sampling points each per level; 4 points in the temporal self-attention) with a
 * CenterHead on the BEV embedding instead of the DETR decoder (the dense variant DistillBEV distils). The student
 * package gives its presets (data) over it.
 */
import { z } from 'zod';
import { bevGrid, checkedSchema, ConfigError, dataSettings, trainSettings, type FeatureMap, type GridSpec } from '@bevzoo/core';
import type { CenterHeadConfig } from '../centerhead/config.js';
import { centerHeadSection, detHeadConfig } from '../detectors/lss-config.js';

const int = z.number().int().positive();
const num = z.number();

const bevformerFields = z.object({
  numCameras: int.default(6),
  /** Image backbone (torchvision/mmdet ResNet names `img_backbone.layer1.0.conv1.weight`) and the stages fed to the FPN. */
  backbone: z.object({
    block: z.enum(['basic', 'bottleneck']).default('bottleneck'),
    layers: z.array(int).min(2).default([3, 4, 23, 3]),
    widths: z.array(int).min(2).default([64, 128, 256, 512]),
    stemWidth: int.default(64),
    /** Consecutive stages fed to the FPN (C3–C5 = [1, 2, 3]); the first one's stride is the finest level's. */
    outIndices: z.array(z.number().int().min(0)).min(1).default([1, 2, 3]),
  }).prefault({}),
  /** mmdet FPN to the embedding width; `levels` ≥ the backbone outputs (extra levels by stride-2 pooling of the last). */
  neck: z.object({ levels: int.default(4) }).prefault({}),
  /** The BEV query grid (ego frame after bda; rows = y) and the pillar heights of the spatial cross-attention. */
  bev: z.object({
    range: z.tuple([num, num, num, num]).default([-51.2, -51.2, 51.2, 51.2]),
    cellSize: num.positive().default(0.512),
    /** Heights of the pillar's reference points: `pillarPoints` evenly spaced from zmin + 0.5 to zmax − 0.5 m (the reference's ref_3d). */
    zRange: z.tuple([num, num]).default([-5, 3]),
    pillarPoints: int.default(4),
  }).prefault({}),
  encoder: z.object({
    layers: int.default(6),
    embedDims: int.default(256),
    heads: int.default(8),
    ffnChannels: int.default(512),
    /** Sampling points per head and level of the spatial cross-attention (a multiple of bev.pillarPoints). */
    crossPoints: int.default(8),
    /** Sampling points per head of the temporal self-attention (over the previous and the current BEV). */
    selfPoints: int.default(4),
  }).prefault({}),
  /** `frames` 2: the previous keyframe's BEV (computed without gradient, aligned by the ego motion) in the temporal self-attention; 1: the current queries stand in, as on a scene's first frame. */
  temporal: z.object({ frames: z.union([z.literal(1), z.literal(2)]).default(2) }).prefault({}),
  head: centerHeadSection,
  /** BatchNorm in the image backbone and the head (PyTorch defaults). */
  norm: z.object({ eps: num.positive().default(1e-5), momentum: num.min(0).max(1).default(0.1) }).prefault({}),
  train: trainSettings.prefault({}),
  /** Defaults: bevformer-base's images (900×1600 in the reference, padded to 928; 896 here, a multiple of the stride 64 of the fourth level) and the previous keyframe. */
  data: dataSettings.prefault({ imageSize: [896, 1600], withPrev: true }),
});

export type BEVFormerConfig = z.infer<typeof bevformerFields>;

/** The schema: the fields plus the checks of `bevformerLayout`. */
export const bevformerSchema = checkedSchema(bevformerFields, bevformerLayout);


export interface BEVFormerLayout {
  imageSize: [number, number];
  /** Backbone channels of the stages fed to the FPN. */
  backboneChannels: number[];
  /** [H, W] of each FPN level. */
  levelShapes: [number, number][];
  /** BEV query cells [X, Y]. */
  cells: [number, number];
  grid: GridSpec;
  taskSizes: number[];
}

/** Derive and check the layout of a config (a ConfigError names the field). */
export function bevformerLayout(config: BEVFormerConfig): BEVFormerLayout {
  const fail = (path: string, message: string): never => {
    throw new ConfigError(`${path}: ${message}`, [{ path, message }]);
  };
  const b = config.backbone;
  if (b.widths.length !== b.layers.length) fail('backbone.widths', `one width per stage (${b.layers.length}), found ${b.widths.length}`);
  const idx = b.outIndices;
  if (idx.some((i, k) => i >= b.layers.length || (k > 0 && i !== idx[k - 1]! + 1))) fail('backbone.outIndices', `consecutive stages below ${b.layers.length}, found [${idx}]`);
  if (config.neck.levels < idx.length) fail('neck.levels', `at least the ${idx.length} backbone outputs, found ${config.neck.levels}`);
  const [H, W] = config.data.imageSize;
  const levelShapes: [number, number][] = [];
  for (let l = 0; l < config.neck.levels; l++) {
    const stride = 4 * 2 ** (idx[0]! + l); // stem ×4, then ×2 per stage (extra levels: ×2 pooling)
    if (H % stride !== 0 || W % stride !== 0) fail('data.imageSize', `[H, W] divisible by the stride ${stride} of FPN level ${l}, found [${H}, ${W}]`);
    levelShapes.push([H / stride, W / stride]);
  }
  const e = config.encoder;
  if (e.embedDims % e.heads !== 0) fail('encoder.heads', `a divisor of encoder.embedDims ${e.embedDims}, found ${e.heads}`);
  if (e.embedDims % 2 !== 0) fail('encoder.embedDims', `even (the positional embedding is half rows, half columns), found ${e.embedDims}`);
  if (e.crossPoints % config.bev.pillarPoints !== 0) fail('encoder.crossPoints', `a multiple of bev.pillarPoints ${config.bev.pillarPoints}, found ${e.crossPoints}`);
  const [xmin, ymin, xmax, ymax] = config.bev.range;
  const cs = config.bev.cellSize;
  const X = Math.round((xmax - xmin) / cs), Y = Math.round((ymax - ymin) / cs);
  if (!(X >= 2 && Y >= 2) || Math.abs(X * cs - (xmax - xmin)) > 1e-6 || Math.abs(Y * cs - (ymax - ymin)) > 1e-6)
    fail('bev', `range [${config.bev.range}] must be a whole number (≥ 2) of ${cs} m cells along x and y`);
  const [zmin, zmax] = config.bev.zRange;
  if (!(zmax > zmin)) fail('bev.zRange', `[zmin, zmax] with zmax > zmin, found [${zmin}, ${zmax}]`);
  if (config.temporal.frames === 2 && !config.data.withPrev) fail('data.withPrev', 'true with temporal.frames 2 (the batches must carry the previous keyframe)');
  if (config.head.circleRadii && config.head.circleRadii.length !== config.head.tasks.length)
    fail('head.circleRadii', `one radius per task (${config.head.tasks.length}), found ${config.head.circleRadii.length}`);
  const exp = b.block === 'bottleneck' ? 4 : 1;
  return {
    imageSize: [H, W],
    backboneChannels: idx.map((i) => b.widths[i]! * exp),
    levelShapes,
    cells: [X, Y],
    grid: bevGrid([xmin, ymin, xmax, ymax], X, Y),
    taskSizes: config.head.tasks.map((t) => t.length),
  };
}

/**
 * What BEVFormer provides to distillers: `pre_head`, the encoder's BEV embedding (`bev_embed`, the CenterHead input:
 * the one layer DistillBEV distils for BEVFormer, under the name its other students give the head input), and the
 * heatmap logits.
 */
export function bevformerFeatures(config: BEVFormerConfig): FeatureMap {
  const l = bevformerLayout(config);
  return {
    pre_head: { kind: 'bev', channels: config.encoder.embedDims, grid: l.grid, stage: -1, description: 'BEV embedding (bev_embed): the encoder output after the temporal fusion, the CenterHead input' },
    heatmap: { kind: 'heatmap', channels: l.taskSizes.reduce((a, b) => a + b, 0), grid: l.grid, description: 'CenterHead heatmap logits, tasks concatenated in order' },
  };
}

/** The CenterHead on the BEV embedding (stride 1 on the query grid). */
export function bevformerHeadConfig(config: BEVFormerConfig): CenterHeadConfig {
  return detHeadConfig(config.head, config.bev.range, config.bev.cellSize, config.encoder.embedDims, 1);
}
