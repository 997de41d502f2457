/**
 * The CenterPoint-pillar config (the LiDAR teachers CenterPoint and MVP): a zod schema whose defaults are the published
 * nuScenes configuration (mmdet3d `centerpoint_02pillar_second_secfpn_nus.py`), and the grid geometry and named
 * features derived from a config. Each teacher package gives its presets (data) over it; MVP's schema reads wider points.
 */
import { z } from 'zod';
import { BevzooError, bevGrid, dataSettings, trainSettings, type DeepPartial, type FeatureMap, type GridSpec } from '@bevzoo/core';
import { NUSCENES_CIRCLE_NMS_RADII, NUSCENES_TASKS } from '../centerhead/config.js';

/**
 * A CenterPoint-pillar problem: a config whose parts do not fit together (`where` = the field), or a batch that lacks
 * what the model reads. Says what was expected, what was found, and where.
 */
export class CenterPointError extends BevzooError {
  constructor(
    readonly where: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(`${where}: expected ${expected}, found ${found}`, { where, expected, found });
  }
}

/** Raw features per LiDAR point when `voxelEncoder.pointFeatures` is absent: x, y, z, intensity, Δt. */
const LIDAR_FEATURES = 5;
/** Features PillarFeatureNet adds per point: offsets to the pillar's point mean (x, y, z) and to its centre (x, y). */
const DECORATED_FEATURES = 5;

/** One setting per CenterHead branch (reg, height, dim, rot, vel, heatmap). */
const perHead = (t: z.ZodDefault<z.ZodNumber>) => z.object({ reg: t, height: t, dim: t, rot: t, vel: t, heatmap: t }).prefault({});

const num = () => z.number();
const posInt = () => z.number().int().positive();
const vec3 = () => z.tuple([num(), num(), num()]);
const range6 = () => z.tuple([num(), num(), num(), num(), num(), num()]);
const pointFeaturesField = () => z.number().int().min(LIDAR_FEATURES);

/** What differs between the CenterPoint-pillar teachers' schemas: the point layout and the data settings' defaults. */
export interface PillarCenterPointDefaults {
  /**
   * Default of `voxelEncoder.pointFeatures`. Absent: the field is optional without a default (5 features, and a
   * config that leaves it out resolves to the same JSON as before the field existed: CenterPoint's packaged weights
   * are matched on that JSON).
   */
  pointFeatures?: number;
  /** Defaults of the `data` section (CenterPoint: `{ images: false, points: true, sweeps: 9 }`). */
  data?: z.input<typeof dataSettings>;
}

/** The CenterPoint-pillar schema with a teacher's defaults (see `PillarCenterPointDefaults`). */
export function pillarCenterPointSchema(d: PillarCenterPointDefaults = {}) {
  const pointFeatures = (d.pointFeatures === undefined ? pointFeaturesField().optional() : pointFeaturesField().default(d.pointFeatures)) as z.ZodOptional<z.ZodNumber>;
  return z
    .object({
      /** [xmin, ymin, zmin, xmax, ymax, zmax] (m, ego frame): the pillar grid; its x, y part is the detection range. */
      pointCloudRange: range6().default([-51.2, -51.2, -5, 51.2, 51.2, 3]),
      pillars: z
        .object({
          /** Pillar size [vx, vy, vz] in metres (vz spans the whole z range: one pillar per BEV cell). */
          size: vec3().default([0.2, 0.2, 8]),
          /** Points kept per pillar (mmdet3d max_num_points). */
          maxPoints: posInt().default(20),
          /** Pillars kept per sample in training and in evaluation (mmdet3d max_voxels). */
          maxPillarsTrain: posInt().default(30000),
          maxPillarsTest: posInt().default(40000),
          /**
           * Shuffle each cloud's points before cutting pillars (mmdet3d's PointShuffle), so that a full pillar keeps
           * points of every sweep rather than the keyframe's first ones. Seeded: the same in every run.
           */
          shuffle: z.boolean().default(true),
        })
        .prefault({}),
      /** PillarFeatureNet widths: mmdet3d feat_channels ([64]: one PFN layer 10 → 64, max over the points). */
      voxelEncoder: z
        .object({
          /**
           * Raw features per input point: x, y, z, intensity, Δt, then any painted ones (MVP: 17). Absent = 5. The
           * batch must carry as many (`Batch.pointFeatures`, absent = 5).
           */
          pointFeatures,
          featChannels: z.array(posInt()).min(1).default([64]),
          /**
           * Factors on the pointFeatures + 5 decorated point features, in PillarFeatureNet.decorate's order: the raw
           * features (x, y, z, intensity, Δt, …), the offsets to the pillar's point mean (x, y, z), the offsets to the
           * pillar centre (x, y); applied before the first PFN layer; null = none (mmdet3d). Brings metres, raw intensity
           * and seconds to O(1), so that a short training can use the centimetre-scale offsets.
           */
          featureScale: z.array(z.number().positive()).nullable().default(null),
        })
        .prefault({}),
      /** SECOND: channels, 3×3 convs after the strided one, and stride of each stage. */
      backbone: z
        .object({
          outChannels: z.array(posInt()).min(1).default([64, 128, 256]),
          layerNums: z.array(z.number().int().min(0)).min(1).default([3, 5, 5]),
          layerStrides: z.array(posInt()).min(1).default([2, 2, 2]),
        })
        .prefault({}),
      /** SECONDFPN: channels per level and the factor bringing each level to the common (head) stride (0.5 = stride-2 conv). */
      neck: z
        .object({
          outChannels: z.array(posInt()).min(1).default([128, 128, 128]),
          upsampleStrides: z.array(z.number().positive()).min(1).default([0.5, 1, 2]),
        })
        .prefault({}),
      /** BatchNorm of the PFN, SECOND and SECONDFPN (mmdet3d: eps 1e-3, momentum 0.01). The CenterHead keeps PyTorch's BN. */
      norm: z.object({ eps: z.number().positive().default(1e-3), momentum: z.number().gt(0).lte(1).default(0.01) }).prefault({}),
      head: z
        .object({
          sharedChannels: posInt().default(64),
          headChannels: posInt().default(64),
          /** Convolutions per head branch, the output conv included (mmdet3d's num_conv, default 2; 1 = the output conv reads the shared feature). */
          numConvs: perHead(posInt().default(2)),
          /** Negative slope of the LeakyReLU ending each branch's hidden ConvModules (0 = ReLU, mmdet3d's; the default). */
          leakyRelu: perHead(z.number().min(0).lt(1).default(0)),
          /** BatchNorm momentum of the head's ConvModules (PyTorch default 0.1). */
          normMomentum: z.number().gt(0).lte(1).default(0.1),
          minRadius: z.number().int().min(0).default(2),
          gaussianOverlap: z.number().gt(0).lt(1).default(0.1),
          maxObjects: posInt().default(500),
          locWeight: z.number().min(0).default(0.25),
          codeWeights: z.array(z.number().min(0)).length(10).default([1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2]),
          decode: z
            .object({
              scoreThreshold: z.number().min(0).lt(1).default(0.1),
              topK: posInt().default(1000),
              maxPoolNms: z.boolean().default(false),
              /** 'circle' (CenterPoint's circle NMS with one squared radius per task), 'rotate' (BEV IoU NMS) or 'none'. */
              nms: z.enum(['circle', 'rotate', 'none']).default('circle'),
              circleRadii: z.array(z.number().positive()).length(6).default([...NUSCENES_CIRCLE_NMS_RADII]),
              iouThreshold: z.number().gt(0).lte(1).default(0.2),
              preMaxSize: posInt().default(1000),
              postMaxSize: posInt().default(83),
              postCenterRange: range6().default([-61.2, -61.2, -10, 61.2, 61.2, 10]),
            })
            .prefault({}),
        })
        .prefault({}),
      // GT-paste on, as mmdet3d's CenterPoint nuScenes configs (ObjectSample with its DataBaseSampler).
      train: trainSettings.prefault({ steps: 20000, batchSize: 4, lr: 1e-4, warmupSteps: 1000, objectSample: true }),
      data: dataSettings.prefault(d.data ?? { images: false, points: true, sweeps: 9 }),
    })
    .superRefine((cfg, ctx) => {
      try {
        centerPointGeometry(cfg);
      } catch (e) {
        if (!(e instanceof CenterPointError)) throw e;
        ctx.addIssue({ code: 'custom', message: e.message, path: e.where.split('.') });
      }
    });
}

/** CenterPoint's schema: the published nuScenes configuration, 5-feature LiDAR points. */
export const centerPointConfigSchema = pillarCenterPointSchema();

export type CenterPointConfig = z.output<typeof centerPointConfigSchema>;

/** Everything the model and `provides()` need to know about the grids of a config. */
export interface CenterPointGeometry {
  /** [xmin, ymin, xmax, ymax] of the detection range (the pillar grid's x, y extent). */
  bevRange: [number, number, number, number];
  /** Pillar cells [nx, ny]. */
  pillarCells: [number, number];
  /** Cumulative stride of each SECOND stage relative to the pillar grid. */
  stageStrides: number[];
  /** Stride of the neck output (mmdet3d out_size_factor). */
  headStride: number;
  /** BEV grids of the stage outputs and of the neck / head. */
  stageGrids: GridSpec[];
  headGrid: GridSpec;
  neckChannels: number;
  numClasses: number;
  /** Raw features per input point (`voxelEncoder.pointFeatures`, 5 when absent). */
  pointFeatures: number;
}

const fail = (where: string, expected: string, found: unknown): never => {
  throw new CenterPointError(where, expected, typeof found === 'string' ? found : JSON.stringify(found));
};

/** Grid geometry of a config; throws a CenterPointError naming the field when the parts do not fit together. */
export function centerPointGeometry(cfg: CenterPointConfig): CenterPointGeometry {
  const [x0, y0, z0, x1, y1, z1] = cfg.pointCloudRange;
  if (!(x1 > x0 && y1 > y0 && z1 > z0)) fail('pointCloudRange', '[xmin, ymin, zmin, xmax, ymax, zmax] with max > min', cfg.pointCloudRange);
  const [vx, vy, vz] = cfg.pillars.size;
  if (!(vx > 0 && vy > 0 && vz > 0)) fail('pillars.size', 'positive sizes', cfg.pillars.size);
  const cells = (extent: number, v: number, axis: string): number => {
    const n = Math.round(extent / v);
    if (n < 1 || Math.abs(n * v - extent) > 1e-6 * Math.max(1, extent)) fail('pillars.size', `a pillar size dividing the ${axis} extent ${extent} m`, v);
    return n;
  };
  const nx = cells(x1 - x0, vx, 'x'), ny = cells(y1 - y0, vy, 'y');
  if (Math.round((z1 - z0) / vz) !== 1) fail('pillars.size', `vz equal to the z extent ${z1 - z0} m (one pillar per BEV cell)`, vz);
  const pointFeatures = cfg.voxelEncoder.pointFeatures ?? LIDAR_FEATURES;
  const scale = cfg.voxelEncoder.featureScale;
  if (scale && scale.length !== pointFeatures + DECORATED_FEATURES)
    fail('voxelEncoder.featureScale', `${pointFeatures + DECORATED_FEATURES} factors (${pointFeatures} point features + ${DECORATED_FEATURES} decorated offsets) or null`, `${scale.length} factors`);
  const { outChannels, layerNums, layerStrides } = cfg.backbone;
  const L = outChannels.length;
  if (layerNums.length !== L || layerStrides.length !== L)
    fail('backbone', `outChannels, layerNums and layerStrides of one length (${L})`, `${layerNums.length} and ${layerStrides.length}`);
  const stageStrides: number[] = [];
  let s = 1;
  for (const st of layerStrides) stageStrides.push((s *= st));
  if (nx % s !== 0 || ny % s !== 0) fail('backbone.layerStrides', `a total stride ${s} dividing the pillar grid ${nx}×${ny}`, layerStrides);
  const { outChannels: neckOut, upsampleStrides } = cfg.neck;
  if (neckOut.length !== L || upsampleStrides.length !== L)
    fail('neck', `outChannels and upsampleStrides with one entry per backbone stage (${L})`, `${neckOut.length} and ${upsampleStrides.length}`);
  const outStrides = stageStrides.map((st, i) => {
    const u = upsampleStrides[i]!;
    if (!(Number.isInteger(u) || Number.isInteger(Math.round(1 / u)) && Math.abs(1 / Math.round(1 / u) - u) < 1e-9))
      fail(`neck.upsampleStrides`, 'integers or 1/integers', upsampleStrides);
    return st / u;
  });
  const headStride = outStrides[0]!;
  if (!outStrides.every((o) => Math.abs(o - headStride) < 1e-9) || !Number.isInteger(Math.round(headStride)) || Math.abs(Math.round(headStride) - headStride) > 1e-9)
    fail('neck.upsampleStrides', `factors bringing every stage (strides ${stageStrides}) to one integer stride`, upsampleStrides);
  if (nx % headStride !== 0 || ny % headStride !== 0) fail('neck.upsampleStrides', `a head stride dividing the pillar grid ${nx}×${ny}`, headStride);
  const bevRange: [number, number, number, number] = [x0, y0, x1, y1];
  return {
    bevRange,
    pillarCells: [nx, ny],
    stageStrides,
    headStride: Math.round(headStride),
    stageGrids: stageStrides.map((st) => bevGrid(bevRange, nx / st, ny / st)),
    headGrid: bevGrid(bevRange, nx / headStride, ny / headStride),
    neckChannels: neckOut.reduce((a, b) => a + b, 0),
    numClasses: NUSCENES_TASKS.reduce((a, t) => a + t.length, 0),
    pointFeatures,
  };
}

/**
 * The features the teacher exposes (NHWC [B, Y, X, C] tensors): `stage0..stage{L−1}` (SECOND stage outputs, finest
 * first), `pre_head` (the SECONDFPN output feeding the head) and `heatmap` (the CenterHead heatmap logits of all
 * tasks concatenated in task order, at the head's grid).
 */
export function centerPointFeatures(cfg: CenterPointConfig): FeatureMap {
  const g = centerPointGeometry(cfg);
  const out: FeatureMap = {};
  g.stageGrids.forEach((grid, i) => {
    out[`stage${i}`] = { kind: 'bev', channels: cfg.backbone.outChannels[i]!, grid, stage: i, description: `SECOND stage ${i} output (stride ${g.stageStrides[i]})` };
  });
  out.pre_head = { kind: 'bev', channels: g.neckChannels, grid: g.headGrid, stage: -1, description: 'SECONDFPN output (the CenterHead input)' };
  out.heatmap = {
    kind: 'heatmap', channels: g.numClasses, grid: g.headGrid,
    description: `CenterHead heatmap logits, tasks ${NUSCENES_TASKS.map((t) => t.join('+')).join(' | ')} concatenated`,
  };
  return out;
}

/** The sizes and schedule of a CenterPoint-pillar preset: everything but what the points hold (`data`, `featureScale`). */
export type PillarCenterPointPresetParts = Omit<DeepPartial<CenterPointConfig>, 'data'>;

/**
 * The `tiny` and `small` CenterPoint-pillar presets shared by the CenterPoint and MVP teachers (the same grid, widths,
 * head and schedule, so that the two compare fairly): each spreads them and adds its `data` settings and, for
 * `small`, the factors on its decorated point features (`voxelEncoder.featureScale`, one per raw value + 5).
 */
export const pillarCenterPointPresetParts: Record<'tiny' | 'small', PillarCenterPointPresetParts> = {
  tiny: {
    pointCloudRange: [-51.2, -51.2, -5, 51.2, 51.2, 3],
    pillars: { size: [3.2, 3.2, 8], maxPoints: 8, maxPillarsTrain: 1024, maxPillarsTest: 1024 },
    voxelEncoder: { featChannels: [8] },
    backbone: { outChannels: [8, 8, 8], layerNums: [1, 1, 1], layerStrides: [2, 2, 2] },
    neck: { outChannels: [8, 8, 8], upsampleStrides: [0.5, 1, 2] },
    norm: { momentum: 0.1 },
    head: { sharedChannels: 8, headChannels: 8 },
    train: { steps: 10, batchSize: 2, lr: 1e-3, warmupSteps: 0, objectSample: false },
  },
  small: {
    pointCloudRange: [-51.2, -51.2, -5, 51.2, 51.2, 3],
    pillars: { size: [0.8, 0.8, 8], maxPoints: 10, maxPillarsTrain: 30000, maxPillarsTest: 30000 },
    voxelEncoder: { featChannels: [16] },
    backbone: { outChannels: [32, 64, 64], layerNums: [2, 3, 3], layerStrides: [2, 2, 2] },
    neck: { outChannels: [32, 32, 32], upsampleStrides: [1, 2, 4] },
    norm: { momentum: 0.1 },
    // The velocity branch's hidden ConvModule ends in LeakyReLU (slope 0.1; mmdet3d: ReLU). With ReLU, 8 or 16 wide,
    // some tasks' velocity branches died (every unit off at the object cells, the L1 optimum while motion is not yet
    // recognised, then no gradient), leaving pedestrian and motorcycle velocities at exactly 0 (see CenterPoint's
    // README). Velocity at code weight 1 (mmdet3d: 0.2).
    head: { sharedChannels: 16, headChannels: 16, leakyRelu: { vel: 0.1 }, codeWeights: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] },
    // GT-paste for the first 75 % of the steps (TransFusion / BEVFusion's fade), then unaltered scenes.
    train: { steps: 4000, batchSize: 2, lr: 5e-3, warmupSteps: 20, evalEvery: 500, objectSampleUntil: 0.75 },
  },
};

/** The factors of CenterPoint small on the 5 raw values (x, y, z, intensity, Δt) and on the 5 pillar offsets. */
export const PILLAR_FEATURE_SCALE = { raw: [1 / 51.2, 1 / 51.2, 0.25, 0.02, 2], offsets: [2.5, 2.5, 0.5, 2.5, 2.5] } as const;
