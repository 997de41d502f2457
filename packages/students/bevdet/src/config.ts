/**
 * BEVDet's configuration: a zod schema whose defaults are the published configuration (bevdet-r50: ResNet-50
 * C4/C5 → FPN 512 → LSS (59 depth bins 1–60 m, 64 context channels) → BEV 128×128 at 0.8 m → CustomResNet
 * 128/256/512 + FPN_LSS 256 → CenterHead), and presets (data) that shrink widths, depths and resolutions.
 */
import { z } from 'zod';
import { bevGrid, ConfigError, dataSettings, scaleGrid, trainSettings, type DeepPartial, type FeatureMap, type GridSpec } from '@bevzoo/core';
import { depthBinCount, NUSCENES_TASKS, type BevPoolGrid } from '@bevzoo/nn';

/** One setting per CenterHead branch (reg, height, dim, rot, vel, heatmap). */
const perHead = (t: z.ZodDefault<z.ZodNumber>) => z.object({ reg: t, height: t, dim: t, rot: t, vel: t, heatmap: t }).prefault({});

const int = z.number().int().positive();
const num = z.number();

const bevdetFields = z.object({
  /** Cameras per sample. */
  numCameras: int.default(6),
  /** Image backbone (torchvision/mmdet ResNet names `img_backbone.layer1.0.conv1.weight`). */
  backbone: z.object({
    block: z.enum(['basic', 'bottleneck']).default('bottleneck'),
    /** Blocks per stage (ResNet-50: [3, 4, 6, 3]). */
    layers: z.array(int).min(2).default([3, 4, 6, 3]),
    /** Planes per stage (a bottleneck stage outputs 4×). */
    widths: z.array(int).min(2).default([64, 128, 256, 512]),
    stemWidth: int.default(64),
    /** The two stages fed to the neck (C4, C5 = [2, 3]); the first one's stride is the LSS feature stride. */
    outIndices: z.tuple([z.number().int().min(0), z.number().int().min(0)]).default([2, 3]),
  }).prefault({}),
  /** FPNForBEVDet: one output map at the stride of the first backbone output. */
  neck: z.object({ outChannels: int.default(512) }).prefault({}),
  viewTransform: z.object({
    /** BEVDet's numC_Trans. */
    contextChannels: int.default(64),
    /** [start, stop, step] metres (torch.arange). */
    depthBins: z.tuple([num.positive(), num.positive(), num.positive()]).default([1, 60, 1]),
    pixelMode: z.enum(['center', 'linspace']).default('center'),
    poolImpl: z.enum(['host', 'tensor']).default('host'),
  }).prefault({}),
  /** The BEV grid of the LSS output, the pre-head feature and the head (ego frame after bda). */
  grid: z.object({
    /** [xmin, ymin, xmax, ymax] metres. */
    range: z.tuple([num, num, num, num]).default([-51.2, -51.2, 51.2, 51.2]),
    /** Metres per BEV cell (x and y). */
    cellSize: num.positive().default(0.8),
    /** Frustum points with z outside [zmin, zmax) are dropped (one z cell). */
    zRange: z.tuple([num, num]).default([-10, 10]),
  }).prefault({}),
  /** CustomResNet (3 stages of BasicBlocks, stride 2 each) + FPN_LSS. */
  bevEncoder: z.object({
    numLayers: z.tuple([int, int, int]).default([2, 2, 2]),
    /** Stage channels (default 2×, 4×, 8× the context channels). */
    channels: z.tuple([int, int, int]).nullable().default(null),
    /** FPN_LSS output channels (the pre-head feature). */
    neckChannels: int.default(256),
    /** FPN_LSS's final ×2 upsample (BEVDet: 2, back to the LSS grid); null keeps the pre-head feature and the head at stride 2. */
    extraUpsample: z.literal(2).nullable().default(2),
  }).prefault({}),
  head: z.object({
    sharedChannels: int.default(64),
    headChannels: int.default(64),
    /** Convolutions per head branch, the output conv included (mmdet3d's num_conv, default 2; 1 = the output conv reads the shared feature). */
    numConvs: perHead(int.default(2)),
    /** Negative slope of the LeakyReLU ending each branch's hidden ConvModules (0 = ReLU, mmdet3d's; the default). */
    leakyRelu: perHead(z.number().min(0).lt(1).default(0)),
    /** Task groups of class names (CenterPoint's six nuScenes groups). */
    tasks: z.array(z.array(z.string()).min(1)).min(1).default(NUSCENES_TASKS.map((t) => [...t])),
    scoreThreshold: num.min(0).max(1).default(0.1),
    maxPoolNms: z.boolean().default(false),
    /** Circle NMS (squared-distance radii per task; default CenterPoint's nuScenes radii) or rotated BEV NMS. */
    nms: z.enum(['circle', 'rotate', 'none']).default('circle'),
    circleRadii: z.array(num.positive()).nullable().default(null),
    iouThreshold: num.min(0).max(1).default(0.2),
    postMaxSize: int.default(83),
    locWeight: num.min(0).default(0.25),
  }).prefault({}),
  /** BatchNorm everywhere (PyTorch defaults). */
  norm: z.object({ eps: num.positive().default(1e-5), momentum: num.min(0).max(1).default(0.1) }).prefault({}),
  /**
   * BEVDepth's depth supervision of the view transform (keyframe LiDAR projected into the images; BCE on the depth
   * distribution), weighted; 0 = plain BEVDet (the default). Needs `data.points`.
   */
  depthSupervision: z.object({ weight: num.min(0).default(0) }).prefault({}),
  train: trainSettings.prefault({}),
  data: dataSettings.prefault({}),
});

export type BEVDetConfig = z.infer<typeof bevdetFields>;

/** The config schema: the fields above plus the checks of `bevdetLayout` (strides, grid divisibility, …). */
export const bevdetConfigSchema = bevdetFields.superRefine((cfg, ctx) => {
  try {
    bevdetLayout(cfg);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const i of e.issues) ctx.addIssue({ code: 'custom', path: i.path.split('.'), message: i.message });
  }
});

/** Presets: configuration only (the defaults are the `paper` configuration). */
export const bevdetPresets: Record<'tiny' | 'small' | 'paper', DeepPartial<BEVDetConfig>> = {
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
    train: { steps: 600, batchSize: 2, lr: 2e-3, warmupSteps: 30, clip: 35 },
    data: { imageSize: [128, 352] },
  },
  /** bevdet-r50 as published: ResNet-50, 256×704, 59 bins, BEV 128×128 at 0.8 m, FPN 512, encoder 128/256/512 → 256. */
  paper: {
    train: { lr: 2e-4, batchSize: 8 },
    data: { imageSize: [256, 704] },
  },
};

/** What the model builds from a config: grid cells, strides, the LSS grid, derived channels. */
export interface BEVDetLayout {
  imageSize: [number, number];
  /** Image pixels per LSS feature cell (stem 4 × the backbone stage strides up to outIndices[0]). */
  featureStride: number;
  /** [fH, fW] of the image feature map. */
  featureSize: [number, number];
  depthBins: number;
  /** BEV cells [X, Y] of the LSS output. */
  cells: [number, number];
  lssGrid: BevPoolGrid;
  /** BEV encoder stage channels. */
  stageChannels: [number, number, number];
  /** BEV stride of the pre-head feature and the head (1, or 2 without FPN_LSS's extra upsample). */
  headStride: number;
  /** The head's grid (pre_head and heatmap features). */
  headGrid: GridSpec;
  /** Image backbone channels of the two stages fed to the neck. */
  backboneChannels: [number, number];
  /** Classes per task (channels of the concatenated heatmap = their sum). */
  taskSizes: number[];
  grid: GridSpec;
}

/** Derive and check the layout of a config (throws a ConfigError naming the field). */
export function bevdetLayout(cfg: BEVDetConfig): BEVDetLayout {
  const fail = (path: string, message: string): never => {
    throw new ConfigError(`student "bevdet": ${path}: ${message}`, [{ path, message }]);
  };
  const [H, W] = cfg.data.imageSize;
  const b = cfg.backbone;
  if (b.widths.length !== b.layers.length) fail('backbone.widths', `one width per stage (${b.layers.length}), found ${b.widths.length}`);
  const [i0, i1] = b.outIndices;
  if (!(i1 === i0 + 1 && i1 < b.layers.length)) fail('backbone.outIndices', `two consecutive stages below ${b.layers.length}, found [${i0}, ${i1}]`);
  const featureStride = 4 * 2 ** i0; // stem (conv s2 + maxpool s2), then stride 2 per stage after the first
  if (H % featureStride !== 0 || W % featureStride !== 0)
    fail('data.imageSize', `[H, W] divisible by the LSS feature stride ${featureStride}, found [${H}, ${W}]`);
  const depthBins = (() => {
    try {
      return depthBinCount(cfg.viewTransform.depthBins);
    } catch (e) {
      return fail('viewTransform.depthBins', (e as Error).message);
    }
  })();
  const [xmin, ymin, xmax, ymax] = cfg.grid.range;
  const cs = cfg.grid.cellSize;
  const X = Math.round((xmax - xmin) / cs), Y = Math.round((ymax - ymin) / cs);
  if (!(X >= 8 && Y >= 8) || Math.abs(X * cs - (xmax - xmin)) > 1e-6 || Math.abs(Y * cs - (ymax - ymin)) > 1e-6)
    fail('grid', `range [${cfg.grid.range}] must be a whole number (≥ 8) of ${cs} m cells along x and y`);
  if (X % 8 !== 0 || Y % 8 !== 0) fail('grid', `BEV cells must be divisible by 8 (three stride-2 encoder stages), found ${X}×${Y}`);
  const [zmin, zmax] = cfg.grid.zRange;
  if (!(zmax > zmin)) fail('grid.zRange', `[zmin, zmax] with zmax > zmin, found [${zmin}, ${zmax}]`);
  const C = cfg.viewTransform.contextChannels;
  const stageChannels = (cfg.bevEncoder.channels ?? [2 * C, 4 * C, 8 * C]) as [number, number, number];
  const exp = b.block === 'bottleneck' ? 4 : 1;
  const taskSizes = cfg.head.tasks.map((t) => t.length);
  if (cfg.head.circleRadii && cfg.head.circleRadii.length !== taskSizes.length)
    fail('head.circleRadii', `one radius per task (${taskSizes.length}), found ${cfg.head.circleRadii.length}`);
  return {
    imageSize: [H, W],
    featureStride,
    featureSize: [H / featureStride, W / featureStride],
    depthBins,
    cells: [X, Y],
    lssGrid: { xbound: [xmin, xmax, cs], ybound: [ymin, ymax, cs], zbound: [zmin, zmax, zmax - zmin] },
    stageChannels,
    backboneChannels: [b.widths[i0]! * exp, b.widths[i1]! * exp],
    taskSizes,
    grid: bevGrid([xmin, ymin, xmax, ymax], X, Y),
    headStride: cfg.bevEncoder.extraUpsample === null ? 2 : 1,
    headGrid: scaleGrid(bevGrid([xmin, ymin, xmax, ymax], X, Y), cfg.bevEncoder.extraUpsample === null ? 2 : 1),
  };
}

/**
 * The features BEVDet provides to distillers (all NHWC [B, Y, X, C], rows = y): the three BEV encoder stages
 * (finest first, strides 2, 4, 8 of the BEV grid), the FPN_LSS output fed to the head, and the head's heatmap
 * logits of all tasks concatenated in task order.
 */
export function bevdetFeatures(cfg: BEVDetConfig): FeatureMap {
  const l = bevdetLayout(cfg);
  const stage = (i: number) => ({
    kind: 'bev' as const, channels: l.stageChannels[i]!, grid: scaleGrid(l.grid, 2 ** (i + 1)), stage: i,
    description: `BEV encoder stage ${i} (CustomResNet layers.${i}), stride ${2 ** (i + 1)}`,
  });
  return {
    stage0: stage(0),
    stage1: stage(1),
    stage2: stage(2),
    pre_head: { kind: 'bev', channels: cfg.bevEncoder.neckChannels, grid: l.headGrid, stage: -1, description: 'FPN_LSS output (the CenterHead input)' },
    heatmap: { kind: 'heatmap', channels: l.taskSizes.reduce((a, b) => a + b, 0), grid: l.headGrid, description: 'CenterHead heatmap logits, tasks concatenated in order' },
  };
}
