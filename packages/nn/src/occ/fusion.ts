/**
 * The multi-modal occupancy model (the RadOcc teacher, BEVFusion-style): FlashOcc's camera branch and decoder
 * (`LSSOcc2D`) with a LiDAR branch fused into the BEV map before the BEV encoder.
 * - LiDAR branch: the batch's points (keyframe + sweeps, ego frame after the BEV augmentation) cut into pillars of the
 *   model's BEV cells over the Occ3D volume → PillarFeatureNet → scatter (`pts_voxel_encoder`), beside a height
 *   histogram (log(1 + points) per z cell of the grid, keyframe and sweeps apart: the voxelised cloud with z folded
 *   into channels) → 3×3 ConvModules (`pts_bev_encoder`).
 * - Fuser (`fuser`): concat(camera BEV, LiDAR BEV) → 3×3 conv + BN + ReLU → squeeze-and-excitation channel gate.
 * - Then FlashOcc's CustomResNet + FPN_LSS and channel-to-height head over the fused map.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkedSchema, dataSettings, realPoints, traceInput, z, type FeatureMap, type Rng } from '@bevzoo/core';
import { Module, ModuleList } from '../module.js';
import { ConvModule } from '../layers/conv-module.js';
import { collatePillars, PillarFeatureNet, PointPillarsScatter, voxelizePoints, type PillarGrid } from '../layers/pillars.js';
import { SELayer } from '../lss/depth-net.js';
import { configFail } from '../detectors/lss-config.js';
import { lssOcc2DFeatures, lssOcc2DLayout, occ2DFields, type LSSOcc2DLayout } from './occ-config.js';
import { LSSOcc2D, type LSSOccBatch } from './occ-model.js';
import { OCC3D } from './occ3d.js';

const int = z.number().int().positive();

/** Features per LiDAR point in a batch: x, y, z, intensity, Δt. */
const POINT_FEATURES = 5;

const fusionFields = occ2DFields.extend({
  /** The LiDAR branch. */
  lidar: z.object({
    /** PillarFeatureNet widths (pillars are the model's BEV cells over the Occ3D z range). */
    pfnChannels: z.array(int).min(1).default([64]),
    /** Points kept per pillar and pillars kept per sample (mmdet3d max_num_points, max_voxels). */
    maxPointsPerPillar: int.default(20),
    maxPillars: int.default(40000),
    /** Add the height histogram (log(1 + points) per z cell of the grid, keyframe and sweeps apart). */
    histogram: z.boolean().default(true),
    /** 3×3 ConvModules of the LiDAR BEV encoder and their width. */
    numConvs: int.default(2),
    channels: int.default(64),
  }).prefault({}),
  // Multi-modal: images, the LiDAR keyframe and sweeps, the Occ3D labels.
  data: dataSettings.prefault({ occ: true, points: true, sweeps: 9 }),
});

export type LSSOccFusionConfig = z.infer<typeof fusionFields>;

export interface LSSOccFusionLayout extends LSSOcc2DLayout {
  /** The pillar grid of the LiDAR branch (the model's BEV cells over the Occ3D volume). */
  pillars: PillarGrid;
  /** The grid of the height histogram: the model's voxels. */
  voxels: PillarGrid;
  /** Channels of the LiDAR features entering `pts_bev_encoder` (PFN output + histogram). */
  lidarInChannels: number;
}

/** Derive and check a multi-modal occupancy config (throws a ConfigError naming the field). */
export function lssOccFusionLayout(config: LSSOccFusionConfig): LSSOccFusionLayout {
  const base = lssOcc2DLayout(config);
  if (!config.data.points) configFail('data.points', 'true (the LiDAR branch reads the points of each batch)');
  if (!config.data.images) configFail('data.images', 'true (the camera branch reads the images of each batch)');
  const [cx, cy, cz] = base.grid.cellSize;
  const [x0, y0, z0, x1, y1, z1] = OCC3D.range;
  const pillars: PillarGrid = { pillarSize: [cx, cy, z1 - z0], range: [x0, y0, z0, x1, y1, z1] };
  const pfnOut = config.lidar.pfnChannels[config.lidar.pfnChannels.length - 1]!;
  const lidarInChannels = pfnOut + (config.lidar.histogram ? 2 * Math.round((z1 - z0) / cz) : 0);
  const voxels: PillarGrid = { pillarSize: [cx, cy, cz], range: pillars.range };
  return { ...base, pillars, voxels, lidarInChannels };
}

/** The multi-modal occupancy model's config schema (the fields plus the checks of `lssOccFusionLayout`). */
export const lssOccFusionSchema = checkedSchema(fusionFields, lssOccFusionLayout);

/** Its features: FlashOcc's (`stage0..2`, `pre_head` over the fused map, `occ_logits`). */
export function lssOccFusionFeatures(config: LSSOccFusionConfig): FeatureMap {
  lssOccFusionLayout(config);
  return lssOcc2DFeatures(config);
}

/**
 * The height histogram of each sample's points on a BEV grid: [B, Y, X, 2Z], channel z = log(1 + keyframe points in
 * z cell z), channel Z + z = the same for the sweeps' points (Δt > 0). Points outside the grid are left out.
 */
export function heightHistogram(points: readonly Float32Array[], grid: PillarGrid): Float32Array {
  const [vx, vy, vz] = grid.pillarSize;
  const [x0, y0, z0, x1, y1, z1] = grid.range;
  const X = Math.round((x1 - x0) / vx), Y = Math.round((y1 - y0) / vy), Z = Math.round((z1 - z0) / vz);
  const C = 2 * Z;
  const out = new Float32Array(points.length * Y * X * C);
  points.forEach((p, b) => {
    for (let i = 0; i + POINT_FEATURES <= p.length; i += POINT_FEATURES) {
      const xi = Math.floor((p[i]! - x0) / vx), yi = Math.floor((p[i + 1]! - y0) / vy), zi = Math.floor((p[i + 2]! - z0) / vz);
      if (xi < 0 || xi >= X || yi < 0 || yi >= Y || zi < 0 || zi >= Z) continue;
      out[((b * Y + yi) * X + xi) * C + (p[i + 4]! > 0 ? Z : 0) + zi]! += 1;
    }
  });
  for (let i = 0; i < out.length; i++) if (out[i]) out[i] = Math.log1p(out[i]!);
  return out;
}

/** BEVFusion-style fuser with a channel gate: concat → 3×3 ConvModule → SE (global average → 1×1 → ReLU → 1×1 → sigmoid). */
export class ConvSEFuser extends Module {
  readonly conv: ConvModule;
  readonly se: SELayer;
  constructor(inChannels: number, outChannels: number, opts: { norm?: { eps?: number; momentum?: number }; rng?: Rng } = {}) {
    super();
    this.conv = this.registerModule('conv', new ConvModule(inChannels, outChannels, 3, { padding: 1, norm: opts.norm, rng: opts.rng?.fork('conv') }));
    this.se = this.registerModule('se', new SELayer(outChannels, opts.rng?.fork('se')));
  }
  forward(inputs: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => {
      const x = this.conv.forward(tf.concat(inputs, 3)) as tf.Tensor4D;
      return this.se.forward(x, tf.mean(x, [1, 2], true) as tf.Tensor4D);
    });
  }
}

/**
 * The multi-modal occupancy model. Parameter names: FlashOcc's (`img_*`, `img_bev_encoder_*`, `occ_head.*`), the
 * LiDAR branch's `pts_voxel_encoder.*` and `pts_bev_encoder.*`, and `fuser.*`.
 */
export class LSSOccFusion extends LSSOcc2D {
  declare readonly config: LSSOccFusionConfig;
  /** The LiDAR branch's grid and widths (the camera part's layout is `layout`). */
  readonly fusionLayout: LSSOccFusionLayout;
  readonly pts_voxel_encoder: PillarFeatureNet;
  readonly pts_middle_encoder: PointPillarsScatter;
  readonly pts_bev_encoder: ModuleList<ConvModule>;
  readonly fuser: ConvSEFuser;

  constructor(config: LSSOccFusionConfig, opts: { rng?: Rng; name?: string } = {}) {
    super(config, { rng: opts.rng, name: opts.name ?? 'lss-occ-fusion' });
    const l = lssOccFusionLayout(config);
    this.fusionLayout = l;
    const fork = (k: string) => opts.rng?.fork(k);
    const norm = config.norm;
    const li = config.lidar;
    this.pts_voxel_encoder = this.registerModule('pts_voxel_encoder', new PillarFeatureNet({ ...l.pillars, inChannels: POINT_FEATURES, featChannels: [...li.pfnChannels], norm, rng: fork('pts_voxel_encoder') }));
    this.pts_middle_encoder = this.registerModule('pts_middle_encoder', new PointPillarsScatter([l.grid.cells[0], l.grid.cells[1]]));
    this.pts_bev_encoder = this.registerModule('pts_bev_encoder', new ModuleList<ConvModule>());
    const encRng = fork('pts_bev_encoder');
    for (let i = 0; i < li.numConvs; i++)
      this.pts_bev_encoder.push(new ConvModule(i === 0 ? l.lidarInChannels : li.channels, li.channels, 3, { padding: 1, norm, rng: encRng?.fork(`${i}`) }));
    const C = config.viewTransform.contextChannels;
    this.fuser = this.registerModule('fuser', new ConvSEFuser(C + li.channels, C, { norm, rng: fork('fuser') }));
  }

  /**
   * The LiDAR branch's input map [B, Y, X, PFN channels (+ 2Z histogram channels)]: pillars → PillarFeatureNet →
   * scatter, beside the height histogram (no convolution: it runs before the cameras are lifted).
   */
  protected override readSensors(batch: LSSOccBatch, B: number): tf.Tensor4D {
    if (!batch.points || batch.points.length !== B) this.fail('points', `one LiDAR cloud of (x, y, z, intensity, Δt) per sample (${B}); set data.points`, batch.points ? `${batch.points.length} clouds` : 'none');
    const pts = realPoints(batch); // the real returns only, where the batch carries MVP's virtual points
    pts.forEach((p, b) => {
      if (p.length % POINT_FEATURES) this.fail(`points[${b}]`, `a multiple of ${POINT_FEATURES} values (x, y, z, intensity, Δt per point)`, `${p.length} values`);
    });
    const l = this.fusionLayout;
    const li = this.config.lidar;
    const pillars = collatePillars(pts.map((p) => voxelizePoints(p, { ...l.pillars, maxPointsPerPillar: li.maxPointsPerPillar, maxPillars: li.maxPillars, numFeatures: POINT_FEATURES })));
    const [X, Y] = l.grid.cells;
    return tf.tidy(() => {
      const x: tf.Tensor4D = this.pts_middle_encoder.forward(this.pts_voxel_encoder.forward(pillars), pillars);
      if (!li.histogram) return x;
      // Batch data made on the host: under a kernel trace (an ONNX export) the graph input `lidar.height_histogram`.
      return tf.concat([x, traceInput('lidar.height_histogram', () => tf.tensor4d(heightHistogram(pts, l.voxels), [B, Y, X, l.lidarInChannels - x.shape[3]!]))], 3);
    });
  }

  /** The camera BEV map fused with the LiDAR one (`readSensors` through `pts_bev_encoder`). */
  protected override fuse(bev: tf.Tensor, sensors: tf.Tensor | null): tf.Tensor {
    if (!sensors) throw new Error(`${this.modelName}: no LiDAR features (readSensors)`);
    let x = sensors as tf.Tensor4D;
    for (const conv of this.pts_bev_encoder) x = conv.forward(x) as tf.Tensor4D;
    return this.fuser.forward([bev as tf.Tensor4D, x]);
  }
}
