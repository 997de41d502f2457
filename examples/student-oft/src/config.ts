/**
 * OFT-lite's configuration: a zod schema whose defaults give a complete model, presets (data only) that shrink it,
 * and the layout (grid cells, strides, channels) every other part derives from the config.
 */
import { bevGrid, checkedSchema, ConfigError, dataSettings, trainSettings, z, type DeepPartial, type FeatureMap, type GridSpec } from '@bevzoo/core';
import { NUSCENES_TASKS } from '@bevzoo/nn';

const int = z.number().int().positive();
const num = z.number();

const oftFields = z.object({
  /** Cameras per sample (the nuScenes rig). */
  numCameras: int.default(6),
  /** Image backbone: a basic-block ResNet; its last stage is the feature map (stride 4 · 2^(stages − 1)). */
  backbone: z.object({
    layers: z.array(int).min(1).default([2, 2, 2]),
    widths: z.array(int).min(1).default([64, 128, 256]),
    stemWidth: int.default(64),
  }).prefault({}),
  /** Channels C of the image features after the 1×1 neck (what the orthographic transform samples). */
  featureChannels: int.default(64),
  /** The BEV grid (ego frame after bda) of the transform, the encoder and the head. */
  grid: z.object({
    /** [xmin, ymin, xmax, ymax] metres. */
    range: z.tuple([num, num, num, num]).default([-51.2, -51.2, 51.2, 51.2]),
    cellSize: num.positive().default(0.8),
    /** Heights (m, ego z) at which each cell centre is projected into the cameras; the BEV map has C per height. */
    heights: z.array(num).min(1).default([-1, 0.5, 2]),
    /** Points closer to a camera than this (along its axis) are not seen by it. */
    minDepth: num.positive().default(0.5),
  }).prefault({}),
  /** BEV encoder: `numBlocks` ResNet basic blocks at stride 1 (the first one maps heights × C to `channels`). */
  bevEncoder: z.object({ channels: int.default(128), numBlocks: int.default(4) }).prefault({}),
  head: z.object({
    sharedChannels: int.default(64),
    headChannels: int.default(64),
    /** Task groups of class names (CenterPoint's six nuScenes groups). */
    tasks: z.array(z.array(z.string()).min(1)).min(1).default(NUSCENES_TASKS.map((t) => [...t])),
    scoreThreshold: num.min(0).max(1).default(0.1),
    postMaxSize: int.default(83),
  }).prefault({}),
  train: trainSettings.prefault({}),
  data: dataSettings.prefault({}),
});

export type OftConfig = z.infer<typeof oftFields>;

/** The config schema: the fields above plus the checks of `oftLayout`. */
export const oftConfigSchema = checkedSchema(oftFields, oftLayout);


/** Presets on the grids of the bevdet student's presets of the same name (tiny: 32×32 at 3.2 m, small: 64×64 at 1.6 m). */
export const oftPresets: Record<'tiny' | 'small', DeepPartial<OftConfig>> = {
  /** Tests: images 64×176, features at stride 8 (8×22), BEV 32×32 at 3.2 m. */
  tiny: {
    backbone: { layers: [1, 1], widths: [8, 16], stemWidth: 8 },
    featureChannels: 16,
    grid: { cellSize: 3.2 },
    bevEncoder: { channels: 16, numBlocks: 1 },
    head: { sharedChannels: 8, headChannels: 8 },
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176] },
  },
  /** Benchmark size: images 128×352, features at stride 16 (8×22), BEV 64×64 at 1.6 m, encoder 32 ch. */
  small: {
    backbone: { layers: [1, 1, 1], widths: [8, 16, 32], stemWidth: 8 },
    featureChannels: 32,
    grid: { cellSize: 1.6 },
    bevEncoder: { channels: 32, numBlocks: 2 },
    head: { sharedChannels: 16, headChannels: 8 },
    train: { steps: 1000, batchSize: 2, lr: 1e-3, warmupSteps: 50, clip: 35 },
    data: { imageSize: [128, 352] },
  },
};

export interface OftLayout {
  imageSize: [number, number];
  /** Image pixels per feature cell. */
  featureStride: number;
  /** [fH, fW] of the image feature map. */
  featureSize: [number, number];
  /** BEV cells [X, Y]. */
  cells: [number, number];
  /** Channels of the transformed BEV map: heights × featureChannels. */
  bevChannels: number;
  /** Classes per task (their sum = heatmap channels). */
  taskSizes: number[];
  grid: GridSpec;
}

/** Derive and check the layout of a config (throws a ConfigError naming the field). */
export function oftLayout(cfg: OftConfig): OftLayout {
  const fail = (path: string, message: string): never => {
    throw new ConfigError(`student "oft": ${path}: ${message}`, [{ path, message }]);
  };
  const b = cfg.backbone;
  if (b.widths.length !== b.layers.length) fail('backbone.widths', `one width per stage (${b.layers.length}), found ${b.widths.length}`);
  const featureStride = 4 * 2 ** (b.layers.length - 1); // stem (conv s2 + maxpool s2), then s2 per later stage
  const [H, W] = cfg.data.imageSize;
  if (H % featureStride !== 0 || W % featureStride !== 0) fail('data.imageSize', `[H, W] divisible by the feature stride ${featureStride}, found [${H}, ${W}]`);
  const [xmin, ymin, xmax, ymax] = cfg.grid.range;
  const cs = cfg.grid.cellSize;
  const X = Math.round((xmax - xmin) / cs), Y = Math.round((ymax - ymin) / cs);
  if (!(X >= 1 && Y >= 1) || Math.abs(X * cs - (xmax - xmin)) > 1e-6 || Math.abs(Y * cs - (ymax - ymin)) > 1e-6)
    fail('grid', `range [${cfg.grid.range}] must be a whole number of ${cs} m cells along x and y`);
  return {
    imageSize: [H, W],
    featureStride,
    featureSize: [H / featureStride, W / featureStride],
    cells: [X, Y],
    bevChannels: cfg.grid.heights.length * cfg.featureChannels,
    taskSizes: cfg.head.tasks.map((t) => t.length),
    grid: bevGrid([xmin, ymin, xmax, ymax], X, Y),
  };
}

/** What OFT-lite provides to distillers (NHWC [B, Y, X, C], rows = y): the head input and the heatmap logits. */
export function oftFeatures(cfg: OftConfig): FeatureMap {
  const l = oftLayout(cfg);
  return {
    pre_head: { kind: 'bev', channels: cfg.bevEncoder.channels, grid: l.grid, stage: -1, description: 'BEV encoder output (the CenterHead input)' },
    heatmap: { kind: 'heatmap', channels: l.taskSizes.reduce((a, c) => a + c, 0), grid: l.grid, description: 'CenterHead heatmap logits, tasks concatenated in order' },
  };
}
