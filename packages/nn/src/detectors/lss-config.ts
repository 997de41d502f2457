/**
 * The configuration of the BEVDet family of camera detectors (BEVDet, BEVDet4D, BEVDepth): a zod schema whose
 * defaults are BEVDet's published configuration (bevdet-r50: ResNet-50 C4/C5 → FPN 512 → LSS (59 depth bins 1–60 m,
 * 64 context channels) → BEV 128×128 at 0.8 m → CustomResNet 128/256/512 + FPN_LSS 256 → CenterHead), with the
 * switches of the family: a camera-aware depth net and depth supervision (BEVDepth), temporal fusion (BEVDet4D).
 * Each student package gives its presets (data) over it.
 */
import { z } from 'zod';
import { bevGrid, checkedSchema, ConfigError, dataSettings, scaleGrid, trainSettings, type FeatureMap, type GridSpec } from '@bevzoo/core';
import { NUSCENES_CIRCLE_NMS_RADII, NUSCENES_CLASS_NAMES, NUSCENES_TASKS, centerHeadConfig, type CenterHeadConfig, type NmsConfig } from '../centerhead/config.js';
import { depthBinCount } from '../lss/frustum.js';
import type { BevPoolGrid } from '../lss/bevpool.js';

/** One setting per CenterHead branch (reg, height, dim, rot, vel, heatmap). */
const perHead = (t: z.ZodDefault<z.ZodNumber>) => z.object({ reg: t, height: t, dim: t, rot: t, vel: t, heatmap: t }).prefault({});

const int = z.number().int().positive();
const num = z.number();

/** A camera detector's CenterHead settings (widths, tasks, decoding); the head's grid comes from the detector's BEV grid. */
export const centerHeadSection = z.object({
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
}).prefault({});
export type CenterHeadSection = z.infer<typeof centerHeadSection>;

/** Defaults of the camera branch fields that differ between model families (BEVDet's r50 configuration by default). */
export interface CameraBranchDefaults {
  /** FPNForBEVDet output channels (BEVDet 512, BEVDet-Occ/FlashOcc 256). */
  neckChannels?: number;
  /** BEVDet's numC_Trans (BEVDet 64, BEVDet-Occ 32). */
  contextChannels?: number;
  /** [start, stop, step] metres (BEVDet [1, 60, 1], BEVDet-Occ [1, 45, 0.5]). */
  depthBins?: [number, number, number];
}

/**
 * The camera branch of the LSS family (image backbone → FPNForBEVDet → LSS view transform with BEVPool), BEVDepth's
 * depth supervision, BatchNorm settings: the zod fields shared by the LSS detectors and the LSS occupancy models
 * (spread them into a `z.object`).
 */
export function cameraBranchFields(d: CameraBranchDefaults = {}) {
  return {
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
    neck: z.object({ outChannels: int.default(d.neckChannels ?? 512) }).prefault({}),
    viewTransform: z.object({
      /** BEVDet's numC_Trans. */
      contextChannels: int.default(d.contextChannels ?? 64),
      /** [start, stop, step] metres (torch.arange). */
      depthBins: z.tuple([num.positive(), num.positive(), num.positive()]).default(d.depthBins ?? [1, 60, 1]),
      pixelMode: z.enum(['center', 'linspace']).default('center'),
      poolImpl: z.enum(['host', 'tensor']).default('host'),
      /**
       * 'conv': BEVDet's depthnet, one 1×1 conv to depth + context; 'camera-aware': BEVDepth's DepthNet (camera
       * parameters through MLPs into SE gates, residual depth branch, optional ASPP), keys `depth_net.*`.
       */
      depthNet: z.object({
        type: z.enum(['conv', 'camera-aware']).default('conv'),
        /** Width of the camera-aware net (BEVDepth: 512). */
        midChannels: int.default(512),
        /** Residual blocks of its depth branch (BEVDepth: 3). */
        blocks: z.number().int().min(0).default(3),
        aspp: z.boolean().default(true),
      }).prefault({}),
    }).prefault({}),
    /** BatchNorm everywhere (PyTorch defaults). */
    norm: z.object({ eps: num.positive().default(1e-5), momentum: num.min(0).max(1).default(0.1) }).prefault({}),
    /**
     * BEVDepth's depth supervision of the view transform (keyframe LiDAR projected into the images; BCE on the depth
     * distribution), weighted; 0 = none (the default). Needs `data.points`.
     */
    depthSupervision: z.object({ weight: num.min(0).default(0) }).prefault({}),
  };
}

const cameraBranchObject = z.object({ ...cameraBranchFields(), data: dataSettings.prefault({}) });
/** The camera branch part of a config (what `cameraBranchLayout` and `createCameraBranch` read). */
export type CameraBranchConfig = z.infer<typeof cameraBranchObject>;

const camera = cameraBranchFields();
// The keys in their historical order (a config's JSON is compared with a packaged checkpoint's metadata).
const lssDetectorFields = z.object({
  numCameras: camera.numCameras,
  backbone: camera.backbone,
  neck: camera.neck,
  viewTransform: camera.viewTransform,
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
  head: centerHeadSection,
  norm: camera.norm,
  /**
   * BEVDet4D's temporal fusion: `frames` 2 adds the previous keyframe, its BEV map computed without gradient, both
   * maps through `pre_process_net` (CustomResNet, one stride-1 stage of `preProcessBlocks` BasicBlocks), the
   * previous map aligned into the current frame by the ego motion, concatenated along channels before the encoder.
   */
  temporal: z.object({
    frames: z.union([z.literal(1), z.literal(2)]).default(1),
    preProcessBlocks: z.number().int().min(0).default(2),
  }).prefault({}),
  depthSupervision: camera.depthSupervision,
  train: trainSettings.prefault({}),
  data: dataSettings.prefault({}),
});

export type LSSDetectorConfig = z.infer<typeof lssDetectorFields>;

/** The config schema: the fields above plus the checks of `lssDetectorLayout` (strides, grid divisibility, …). */
export const lssDetectorSchema = checkedSchema(lssDetectorFields, lssDetectorLayout);


/** A ConfigError naming the field. */
export function configFail(path: string, message: string): never {
  throw new ConfigError(`${path}: ${message}`, [{ path, message }]);
}

/** What the camera branch builds from a config. */
export interface CameraBranchLayout {
  imageSize: [number, number];
  /** Image pixels per LSS feature cell (stem 4 × the backbone stage strides up to outIndices[0]). */
  featureStride: number;
  /** [fH, fW] of the image feature map. */
  featureSize: [number, number];
  depthBins: number;
  /** Image backbone channels of the two stages fed to the neck. */
  backboneChannels: [number, number];
}

/** Derive and check the camera branch of a config (throws a ConfigError naming the field). */
export function cameraBranchLayout(config: CameraBranchConfig): CameraBranchLayout {
  const fail = configFail;
  const [H, W] = config.data.imageSize;
  const b = config.backbone;
  if (b.widths.length !== b.layers.length) fail('backbone.widths', `one width per stage (${b.layers.length}), found ${b.widths.length}`);
  const [i0, i1] = b.outIndices;
  if (!(i1 === i0 + 1 && i1 < b.layers.length)) fail('backbone.outIndices', `two consecutive stages below ${b.layers.length}, found [${i0}, ${i1}]`);
  const featureStride = 4 * 2 ** i0; // stem (conv s2 + maxpool s2), then stride 2 per stage after the first
  if (H % featureStride !== 0 || W % featureStride !== 0)
    fail('data.imageSize', `[H, W] divisible by the LSS feature stride ${featureStride}, found [${H}, ${W}]`);
  const depthBins = (() => {
    try {
      return depthBinCount(config.viewTransform.depthBins);
    } catch (e) {
      return fail('viewTransform.depthBins', (e as Error).message);
    }
  })();
  const exp = b.block === 'bottleneck' ? 4 : 1;
  return { imageSize: [H, W], featureStride, featureSize: [H / featureStride, W / featureStride], depthBins, backboneChannels: [b.widths[i0]! * exp, b.widths[i1]! * exp] };
}

/** What the model builds from a config: grid cells, strides, the LSS grid, derived channels. */
export interface LSSDetectorLayout {
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
  /** Channels into the BEV encoder: the context channels × the frames fused. */
  bevChannels: number;
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
export function lssDetectorLayout(config: LSSDetectorConfig): LSSDetectorLayout {
  const fail = configFail;
  const { imageSize: [H, W], featureStride, featureSize, depthBins, backboneChannels } = cameraBranchLayout(config);
  const [xmin, ymin, xmax, ymax] = config.grid.range;
  const cs = config.grid.cellSize;
  const X = Math.round((xmax - xmin) / cs), Y = Math.round((ymax - ymin) / cs);
  if (!(X >= 8 && Y >= 8) || Math.abs(X * cs - (xmax - xmin)) > 1e-6 || Math.abs(Y * cs - (ymax - ymin)) > 1e-6)
    fail('grid', `range [${config.grid.range}] must be a whole number (≥ 8) of ${cs} m cells along x and y`);
  if (X % 8 !== 0 || Y % 8 !== 0) fail('grid', `BEV cells must be divisible by 8 (three stride-2 encoder stages), found ${X}×${Y}`);
  if (config.temporal.frames === 2 && !config.data.withPrev) fail('data.withPrev', 'true with temporal.frames 2 (the batches must carry the previous keyframe)');
  const [zmin, zmax] = config.grid.zRange;
  if (!(zmax > zmin)) fail('grid.zRange', `[zmin, zmax] with zmax > zmin, found [${zmin}, ${zmax}]`);
  const C = config.viewTransform.contextChannels;
  const stageChannels = (config.bevEncoder.channels ?? [2 * C, 4 * C, 8 * C]) as [number, number, number];
  const bevChannels = C * config.temporal.frames;
  const taskSizes = config.head.tasks.map((t) => t.length);
  if (config.head.circleRadii && config.head.circleRadii.length !== taskSizes.length)
    fail('head.circleRadii', `one radius per task (${taskSizes.length}), found ${config.head.circleRadii.length}`);
  return {
    imageSize: [H, W],
    featureStride,
    featureSize,
    depthBins,
    cells: [X, Y],
    lssGrid: { xbound: [xmin, xmax, cs], ybound: [ymin, ymax, cs], zbound: [zmin, zmax, zmax - zmin] },
    stageChannels,
    bevChannels,
    backboneChannels,
    taskSizes,
    grid: bevGrid([xmin, ymin, xmax, ymax], X, Y),
    headStride: config.bevEncoder.extraUpsample === null ? 2 : 1,
    headGrid: scaleGrid(bevGrid([xmin, ymin, xmax, ymax], X, Y), config.bevEncoder.extraUpsample === null ? 2 : 1),
  };
}

/**
 * The features an LSS detector provides to distillers (all NHWC [B, Y, X, C], rows = y): the three BEV encoder
 * stages (finest first, strides 2, 4, 8 of the BEV grid; after the temporal fusion in a temporal model), the
 * FPN_LSS output fed to the head, and the head's heatmap logits of all tasks concatenated in task order.
 */
export function lssDetectorFeatures(config: LSSDetectorConfig): FeatureMap {
  const l = lssDetectorLayout(config);
  const stage = (i: number) => ({
    kind: 'bev' as const, channels: l.stageChannels[i]!, grid: scaleGrid(l.grid, 2 ** (i + 1)), stage: i,
    description: `BEV encoder stage ${i} (CustomResNet layers.${i}), stride ${2 ** (i + 1)}`,
  });
  return {
    stage0: stage(0),
    stage1: stage(1),
    stage2: stage(2),
    pre_head: { kind: 'bev', channels: config.bevEncoder.neckChannels, grid: l.headGrid, stage: -1, description: 'FPN_LSS output (the CenterHead input)' },
    heatmap: { kind: 'heatmap', channels: l.taskSizes.reduce((a, b) => a + b, 0), grid: l.headGrid, description: 'CenterHead heatmap logits, tasks concatenated in order' },
  };
}

/** The CenterHead config an LSS detector builds from its config. */
export function lssHeadConfig(config: LSSDetectorConfig, layout: LSSDetectorLayout = lssDetectorLayout(config)): CenterHeadConfig {
  return detHeadConfig(config.head, config.grid.range, config.grid.cellSize, config.bevEncoder.neckChannels, layout.headStride);
}

/** The CenterHead config of a camera detector: its head settings over a BEV grid (range, cell size) at a stride, reading `inChannels`. */
export function detHeadConfig(h: CenterHeadSection, range: readonly [number, number, number, number], cellSize: number, inChannels: number, stride: number): CenterHeadConfig {
  const tasks = h.tasks;
  const nms: NmsConfig =
    h.nms === 'circle' ? { type: 'circle', radii: h.circleRadii ?? (tasks.length === NUSCENES_CIRCLE_NMS_RADII.length ? [...NUSCENES_CIRCLE_NMS_RADII] : tasks.map(() => 1)) }
      : h.nms === 'rotate' ? { type: 'rotate', iouThreshold: h.iouThreshold, preMaxSize: 1000 }
        : { type: 'none' };
  const [xmin, ymin, xmax, ymax] = range;
  return centerHeadConfig({
    inChannels,
    classNames: [...NUSCENES_CLASS_NAMES],
    tasks: tasks.map((t) => [...t]),
    grid: { range: [xmin, ymin, xmax, ymax], cellSize: [cellSize, cellSize], stride },
    sharedChannels: h.sharedChannels,
    headChannels: h.headChannels,
    numConvs: h.numConvs,
    leakyRelu: h.leakyRelu,
    locWeight: h.locWeight,
    decode: { scoreThreshold: h.scoreThreshold, maxPoolNms: h.maxPoolNms, nms, postMaxSize: h.postMaxSize, postCenterRange: [xmin - 10, ymin - 10, -10, xmax + 10, ymax + 10, 10] },
  });
}
