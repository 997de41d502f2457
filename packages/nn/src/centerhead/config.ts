import { BevzooError } from '@bevzoo/core';

/** A CenterHead problem: a config that does not hold together, a GT label out of range, a tensor of the wrong shape. */
export class CenterHeadError extends BevzooError {}

/**
 * The nuScenes detection classes in the devkit's order (the order of `DETECTION_CLASSES` in @bevzoo/nuscenes, so a
 * GT label index from the reader indexes this list). Config data: nn does not depend on @bevzoo/nuscenes.
 */
export const NUSCENES_CLASS_NAMES: readonly string[] = [
  'car', 'truck', 'bus', 'trailer', 'construction_vehicle', 'pedestrian', 'motorcycle', 'bicycle', 'traffic_cone', 'barrier',
];

/** CenterPoint's 6 nuScenes task groups (one head each). */
export const NUSCENES_TASKS: readonly (readonly string[])[] = [
  ['car'],
  ['truck', 'construction_vehicle'],
  ['bus', 'trailer'],
  ['barrier'],
  ['motorcycle', 'bicycle'],
  ['pedestrian', 'traffic_cone'],
];

/** Circle-NMS squared-distance thresholds (m²) of the 6 nuScenes tasks (mmdet3d's test_cfg.min_radius). */
export const NUSCENES_CIRCLE_NMS_RADII: readonly number[] = [4, 12, 10, 1, 0.85, 0.175];

/** The regression channels of one task head, in the order they are concatenated into anno_box. */
export const REG_HEADS = [
  ['reg', 2],
  ['height', 1],
  ['dim', 3],
  ['rot', 2],
  ['vel', 2],
] as const;
export type RegHeadName = (typeof REG_HEADS)[number][0];
export type HeadName = 'heatmap' | RegHeadName;
/** The branches of one task head, in registration order. */
export const HEAD_NAMES = ['reg', 'height', 'dim', 'rot', 'vel', 'heatmap'] as const satisfies readonly HeadName[];
/** anno_box width: offset x, offset y, z, log w, log l, log h, sin yaw, cos yaw, vx, vy. */
export const CODE_SIZE = 10;

/** The BEV grid of the head's input feature map. */
export interface BevGridConfig {
  /** [xmin, ymin, xmax, ymax] in metres, ego frame. */
  range: [number, number, number, number];
  /** Metres per voxel/pillar cell along x and y (before the feature stride). */
  cellSize: [number, number];
  /** Feature stride (mmdet3d's out_size_factor): one feature cell covers stride × stride cells. */
  stride: number;
}

export type NmsConfig =
  | { type: 'circle'; /** Squared-distance thresholds (m²), one per task. */ radii: number[] }
  | { type: 'rotate'; /** BEV IoU above which the lower-scored box is dropped. */ iouThreshold: number; /** Boxes kept before NMS. */ preMaxSize: number }
  | { type: 'none' };

export interface DecodeConfig {
  /** Candidates kept per task and sample (top-K over classes × cells). */
  topK: number;
  scoreThreshold: number;
  /** Keep only local maxima of the heatmap (3×3 max-pool, CenterNet style) before top-K. */
  maxPoolNms: boolean;
  nms: NmsConfig;
  /** Boxes kept per task and sample after NMS. */
  postMaxSize: number;
  /** Drop boxes whose centre is outside [xmin, ymin, zmin, xmax, ymax, zmax] (mmdet3d post_center_range). */
  postCenterRange: [number, number, number, number, number, number] | null;
}

export interface CenterHeadConfig {
  inChannels: number;
  /** The global class list; a GT box's `label` and a decoded box's `label` index it. */
  classNames: string[];
  /** Class names of each task group (each must be in classNames, at most once over all tasks). */
  tasks: string[][];
  grid: BevGridConfig;
  /** Channels of the shared 3×3 conv. */
  sharedChannels: number;
  /** Channels of each branch's first 3×3 conv. */
  headChannels: number;
  /**
   * Convolutions per branch, the last one included (mmdet3d's `num_conv` of `common_heads`, `num_heatmap_convs`;
   * default 2 each): n − 1 ConvModules (3×3 conv → BN → ReLU, `headChannels` wide), then the output conv. With 1 the
   * output conv reads the shared feature directly.
   */
  numConvs: Record<HeadName, number>;
  /**
   * Branches whose hidden ConvModules end in LeakyReLU with this negative slope instead of ReLU (mmcv's
   * `act_cfg=dict(type='LeakyReLU')`; absent or 0 = ReLU, the default). A ReLU branch can die at a task's object cells (every unit off,
   * then no gradient); a leaky one cannot.
   */
  leakyRelu: Partial<Record<HeadName, number>>;
  /** Initial bias of the heatmap's final conv (−2.19 ≈ logit of 0.1). */
  heatmapBias: number;
  /** L1 weights of the 10 anno_box channels. */
  codeWeights: number[];
  /** Weight of the L1 (box) loss against the heatmap loss. */
  locWeight: number;
  /** Objects per task and sample that get regression targets. */
  maxObjects: number;
  minRadius: number;
  gaussianOverlap: number;
  decode: DecodeConfig;
}

export type CenterHeadConfigInput = Partial<Omit<CenterHeadConfig, 'decode' | 'grid' | 'numConvs' | 'leakyRelu'>> & {
  leakyRelu?: Partial<Record<HeadName, number>>;
  inChannels: number;
  numConvs?: Partial<Record<HeadName, number>>;
  grid?: Partial<BevGridConfig>;
  decode?: Partial<DecodeConfig>;
};

/** The students' BEV grid: x, y ∈ [−51.2, 51.2] at 0.8 m, stride 1 → 128 × 128. */
export const DEFAULT_BEV_GRID: BevGridConfig = { range: [-51.2, -51.2, 51.2, 51.2], cellSize: [0.8, 0.8], stride: 1 };

/** A complete, validated config: the nuScenes defaults of mmdet3d's CenterPoint under what `input` gives. */
export function centerHeadConfig(input: CenterHeadConfigInput): CenterHeadConfig {
  const tasks = (input.tasks ?? NUSCENES_TASKS).map((t) => [...t]);
  const cfg: CenterHeadConfig = {
    inChannels: input.inChannels,
    classNames: [...(input.classNames ?? NUSCENES_CLASS_NAMES)],
    tasks,
    grid: { ...DEFAULT_BEV_GRID, ...input.grid },
    sharedChannels: input.sharedChannels ?? 64,
    headChannels: input.headChannels ?? 64,
    numConvs: { reg: 2, height: 2, dim: 2, rot: 2, vel: 2, heatmap: 2, ...input.numConvs },
    leakyRelu: { ...input.leakyRelu },
    heatmapBias: input.heatmapBias ?? -2.19,
    codeWeights: [...(input.codeWeights ?? [1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2])],
    locWeight: input.locWeight ?? 0.25,
    maxObjects: input.maxObjects ?? 500,
    minRadius: input.minRadius ?? 2,
    gaussianOverlap: input.gaussianOverlap ?? 0.1,
    decode: {
      topK: 1000,
      scoreThreshold: 0.1,
      maxPoolNms: false,
      nms: { type: 'circle', radii: tasks.length === NUSCENES_TASKS.length ? [...NUSCENES_CIRCLE_NMS_RADII] : tasks.map(() => 1) },
      postMaxSize: 83,
      postCenterRange: [-61.2, -61.2, -10, 61.2, 61.2, 10],
      ...input.decode,
    },
  };
  validateConfig(cfg);
  return cfg;
}

function validateConfig(cfg: CenterHeadConfig): void {
  const fail = (field: string, expected: string, found: unknown): never => {
    throw new CenterHeadError(`CenterHead config: ${field} must be ${expected}, found ${JSON.stringify(found)}`, { field, expected, found });
  };
  if (!(Number.isInteger(cfg.inChannels) && cfg.inChannels > 0)) fail('inChannels', 'a positive integer', cfg.inChannels);
  if (cfg.tasks.length === 0) fail('tasks', 'a non-empty list of task groups', cfg.tasks);
  const seen = new Set<string>();
  for (const [i, t] of cfg.tasks.entries()) {
    if (t.length === 0) fail(`tasks[${i}]`, 'a non-empty list of class names', t);
    for (const name of t) {
      if (!cfg.classNames.includes(name)) fail(`tasks[${i}]`, `class names from classNames ${JSON.stringify(cfg.classNames)}`, name);
      if (seen.has(name)) fail(`tasks[${i}]`, 'class names that appear in one task only', name);
      seen.add(name);
    }
  }
  for (const [name, n] of Object.entries(cfg.numConvs)) {
    if (!(HEAD_NAMES as readonly string[]).includes(name)) fail('numConvs', `keys from ${HEAD_NAMES.join(', ')}`, name);
    if (!(Number.isInteger(n) && n >= 1)) fail(`numConvs.${name}`, 'a positive integer', n);
  }
  for (const [name, a] of Object.entries(cfg.leakyRelu)) {
    if (!(HEAD_NAMES as readonly string[]).includes(name)) fail('leakyRelu', `keys from ${HEAD_NAMES.join(', ')}`, name);
    if (!(typeof a === 'number' && a >= 0 && a < 1)) fail(`leakyRelu.${name}`, 'a negative slope in [0, 1)', a);
  }
  if (cfg.codeWeights.length !== CODE_SIZE) fail('codeWeights', `${CODE_SIZE} numbers`, cfg.codeWeights);
  const { range, cellSize, stride } = cfg.grid;
  if (!(range[2] > range[0] && range[3] > range[1])) fail('grid.range', '[xmin, ymin, xmax, ymax] with max > min', range);
  if (!(cellSize[0] > 0 && cellSize[1] > 0)) fail('grid.cellSize', 'positive', cellSize);
  if (!(Number.isInteger(stride) && stride > 0)) fail('grid.stride', 'a positive integer', stride);
  if (cfg.decode.nms.type === 'circle' && cfg.decode.nms.radii.length !== cfg.tasks.length)
    fail('decode.nms.radii', `one radius per task (${cfg.tasks.length})`, cfg.decode.nms.radii);
  if (!(cfg.maxObjects > 0)) fail('maxObjects', 'positive', cfg.maxObjects);
}

/** Feature-map size [H (y cells), W (x cells)] of a grid, as mmdet3d: round(range / cell) // stride. */
export function featureMapSize(grid: BevGridConfig): [number, number] {
  const gx = Math.round((grid.range[2] - grid.range[0]) / grid.cellSize[0]);
  const gy = Math.round((grid.range[3] - grid.range[1]) / grid.cellSize[1]);
  return [Math.floor(gy / grid.stride), Math.floor(gx / grid.stride)];
}
