/**
 * CenterPoint-pillar (mmdet3d `CenterPoint` with the 02pillar config): multi-sweep points (x, y, z, intensity, Δt, and
 * any painted features: MVP's class one-hot, mask score and virtual flag) → pillars (plain JS, outside the tape) →
 * PillarFeatureNet → PointPillarsScatter → SECOND → SECONDFPN → CenterHead. The detector of the CenterPoint and MVP
 * teachers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type ForwardOutput, type LossOutput, type Rng, type TaskModel } from '@bevzoo/core';
import { Module } from '../module.js';
import { PillarFeatureNet, PointPillarsScatter, collatePillars, voxelizePoints, type PillarBatch } from '../layers/pillars.js';
import { SECOND, SECONDFPN } from '../layers/second.js';
import { CenterHead } from '../centerhead/head.js';
import { NUSCENES_CLASS_NAMES, NUSCENES_TASKS } from '../centerhead/config.js';
import { boxOutputsRecord, canFuseHead, centerHeadBoxForward } from '../centerhead/fused.js';
import { centerHeadDetLoss, centerHeadPredict, type BatchBoxesLike } from '../centerhead/task.js';
import type { DetBox } from '../centerhead/decode.js';
import { CenterPointError, centerPointGeometry, type CenterPointConfig, type CenterPointGeometry } from './pillar-centerpoint-config.js';

/**
 * The batch fields the detector reads (a structural type: @bevzoo/nuscenes' `Batch` satisfies it): per-sample points
 * (`pointFeatures` values each, absent = 5), GT boxes (for the loss) and the BEV augmentation (undone by `predict`).
 */
export interface PillarDetectorBatch {
  points?: readonly Float32Array[];
  /** Values per point in `points` (absent: 5, x, y, z, intensity, Δt). */
  pointFeatures?: number;
  boxes: readonly BatchBoxesLike[];
  bda?: Float32Array;
}

/** How a CenterPoint-pillar teacher names itself and its points in errors. */
export interface CenterPointPillarOptions {
  /** The model's name in errors (default `CenterPointPillar`). */
  name?: string;
  /** The point layout in errors (default: x, y, z, intensity, Δt and any further features). */
  pointLayout?: string;
  /** How to load a batch with the points the model reads (default `data.points = true`). */
  loadHint?: string;
}

/** The points of a cloud (`stride` values each) in a random order (Fisher-Yates; mmdet3d's PointShuffle). */
export function shufflePoints(points: Float32Array, stride: number, rng: Rng): Float32Array {
  const order = shuffleOrder(points.length / stride, rng);
  const out = new Float32Array(points.length);
  for (let i = 0; i < order.length; i++) {
    const src = order[i]! * stride, dst = i * stride;
    for (let f = 0; f < stride; f++) out[dst + f] = points[src + f]!;
  }
  return out;
}

/** The permutation `shufflePoints` applies (Fisher–Yates with `rng`): point i of the shuffled cloud is point order[i]. */
export function shuffleOrder(n: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/**
 * The CenterPoint-pillar detector. Parameter names follow mmdet3d's CenterPoint (`pts_voxel_encoder.*`,
 * `pts_backbone.*`, `pts_neck.*`) except the head, registered as `head` (DistillBEV's "inherit head" copies `head.*`).
 * The PillarFeatureNet reads `voxelEncoder.pointFeatures` raw features per point (5 when absent).
 */
export class CenterPointPillar extends Module implements TaskModel<PillarDetectorBatch, DetBox[]> {
  readonly config: CenterPointConfig;
  readonly geometry: CenterPointGeometry;
  readonly pts_voxel_encoder: PillarFeatureNet;
  readonly pts_middle_encoder: PointPillarsScatter;
  readonly pts_backbone: SECOND;
  readonly pts_neck: SECONDFPN;
  readonly head: CenterHead;
  /** Generator of the training-time point shuffles (forked per forward call). */
  private readonly shuffleRng: Rng;
  private forwardCalls = 0;
  /** Run the head with its branches' first layers fused (same parameters and results, faster). */
  readonly fuseHead: boolean;
  private readonly names: Required<CenterPointPillarOptions>;

  constructor(config: CenterPointConfig, rng?: Rng, opts: CenterPointPillarOptions = {}) {
    super();
    this.config = config;
    this.shuffleRng = rng?.fork('point-shuffle') ?? createRng(0);
    this.geometry = centerPointGeometry(config);
    const g = this.geometry;
    const F = g.pointFeatures;
    this.names = {
      name: opts.name ?? 'CenterPointPillar',
      pointLayout: opts.pointLayout ?? (F === 5 ? 'x, y, z, intensity, Δt' : `x, y, z, intensity, Δt and ${F - 5} more`),
      loadHint: opts.loadHint ?? 'data.points = true',
    };
    const norm = { eps: config.norm.eps, momentum: config.norm.momentum };
    const fork = (label: string) => rng?.fork(label);
    const grid = { pillarSize: config.pillars.size, range: config.pointCloudRange };
    this.pts_voxel_encoder = this.registerModule(
      'pts_voxel_encoder',
      new PillarFeatureNet({ ...grid, inChannels: F, featChannels: config.voxelEncoder.featChannels, norm, rng: fork('pts_voxel_encoder') }),
    );
    this.pts_middle_encoder = this.registerModule('pts_middle_encoder', new PointPillarsScatter(g.pillarCells));
    this.pts_backbone = this.registerModule(
      'pts_backbone',
      new SECOND({
        inChannels: this.pts_voxel_encoder.outChannels, outChannels: config.backbone.outChannels, layerNums: config.backbone.layerNums,
        layerStrides: config.backbone.layerStrides, norm, rng: fork('pts_backbone'),
      }),
    );
    this.pts_neck = this.registerModule(
      'pts_neck',
      new SECONDFPN({
        inChannels: config.backbone.outChannels, outChannels: config.neck.outChannels, upsampleStrides: config.neck.upsampleStrides,
        useConvForNoStride: true, norm, rng: fork('pts_neck'),
      }),
    );
    const h = config.head, d = h.decode;
    const [x0, y0, x1, y1] = g.bevRange;
    this.head = this.registerModule(
      'head',
      new CenterHead(
        {
          inChannels: g.neckChannels,
          classNames: [...NUSCENES_CLASS_NAMES],
          tasks: NUSCENES_TASKS.map((t) => [...t]),
          grid: { range: [x0, y0, x1, y1], cellSize: [config.pillars.size[0], config.pillars.size[1]], stride: g.headStride },
          sharedChannels: h.sharedChannels,
          headChannels: h.headChannels,
          numConvs: h.numConvs,
          leakyRelu: h.leakyRelu,
          codeWeights: h.codeWeights,
          locWeight: h.locWeight,
          maxObjects: h.maxObjects,
          minRadius: h.minRadius,
          gaussianOverlap: h.gaussianOverlap,
          decode: {
            topK: d.topK,
            scoreThreshold: d.scoreThreshold,
            maxPoolNms: d.maxPoolNms,
            nms: d.nms === 'circle' ? { type: 'circle', radii: d.circleRadii } : d.nms === 'rotate' ? { type: 'rotate', iouThreshold: d.iouThreshold, preMaxSize: d.preMaxSize } : { type: 'none' },
            postMaxSize: d.postMaxSize,
            postCenterRange: d.postCenterRange,
          },
        },
        { rng: fork('head'), norm: { momentum: h.normMomentum } },
      ),
    );
    this.fuseHead = canFuseHead(this.head);
  }

  /** Cut each sample's points into pillars and concatenate them (plain JS, no tensors). */
  pillarize(batch: PillarDetectorBatch, training: boolean): PillarBatch {
    const { name, pointLayout, loadHint } = this.names;
    const F = this.geometry.pointFeatures;
    const pts = batch.points;
    if (!pts || pts.length === 0 || pts.length !== batch.boxes.length)
      throw new CenterPointError(`${name}.forward: batch.points`, `one Float32Array of (${pointLayout}) per sample (${batch.boxes.length}); load the batch with ${loadHint}`, pts ? `${pts.length} arrays` : 'none');
    const carried = batch.pointFeatures ?? 5;
    if (carried !== F)
      throw new CenterPointError(
        `${name}.forward: batch.pointFeatures`,
        `${F} features per point (${pointLayout}); load the batch with ${loadHint}`,
        batch.pointFeatures === undefined ? '5 (field absent: x, y, z, intensity, Δt only)' : `${carried}`,
      );
    const opts = {
      pillarSize: this.config.pillars.size,
      range: this.config.pointCloudRange,
      maxPointsPerPillar: this.config.pillars.maxPoints,
      maxPillars: training ? this.config.pillars.maxPillarsTrain : this.config.pillars.maxPillarsTest,
      numFeatures: F,
    };
    const call = this.forwardCalls++;
    return collatePillars(pts.map((p, b) => {
      if (p.length % F !== 0)
        throw new CenterPointError(`${name}.forward: batch.points[${b}]`, `a multiple of ${F} values (${pointLayout} per point)`, `${p.length} values`);
      if (!this.config.pillars.shuffle) return voxelizePoints(p, opts);
      // Training: a new order every call; evaluation: one fixed order per cloud size (same input, same output).
      const rng = training ? this.shuffleRng.fork(`${call}/${b}`) : createRng(p.length);
      return voxelizePoints(p, { ...opts, order: shuffleOrder(p.length / F, rng) }); // = voxelizePoints(shufflePoints(p, F, rng), opts)
    }));
  }

  /** PillarFeatureNet, with the decorated features scaled first when `voxelEncoder.featureScale` is set. */
  encodePillars(pillars: PillarBatch): tf.Tensor2D {
    const enc = this.pts_voxel_encoder;
    const scale = this.config.voxelEncoder.featureScale;
    if (!scale || pillars.numPillars === 0) return enc.forward(pillars);
    return tf.tidy(() => {
      let x: tf.Tensor3D = tf.mul(enc.decorate(pillars), tf.tensor3d(scale, [1, 1, scale.length]));
      for (const layer of enc.pfn_layers) x = layer.forward(x);
      return tf.reshape(x, [pillars.numPillars, enc.outChannels]) as tf.Tensor2D;
    });
  }

  /**
   * Forward pass. Features: `stage0..`, `pre_head`, `heatmap` (NHWC [B, Y, X, C], row = y cell); outputs: the head's
   * tensors `task{i}.heatmap|box` (boxOutputsRecord). Sets training mode from `opts.training` (BatchNorm statistics).
   */
  forward(batch: PillarDetectorBatch, opts: { training: boolean }): ForwardOutput {
    if (this.training !== opts.training) this.train(opts.training);
    const pillars = this.pillarize(batch, opts.training);
    return tf.tidy(() => {
      const pillarFeatures = this.encodePillars(pillars);
      const canvas = this.pts_middle_encoder.forward(pillarFeatures, pillars);
      const stages = this.pts_backbone.forward(canvas);
      const preHead = this.pts_neck.forward(stages);
      const { outputs, heatmap } = boxOutputsRecord(centerHeadBoxForward(this.head, preHead, this.fuseHead));
      const features: Record<string, tf.Tensor> = {};
      stages.forEach((s, i) => (features[`stage${i}`] = s));
      features.pre_head = preHead;
      features.heatmap = heatmap;
      return { features, outputs } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /**
   * CenterHead loss (mmdet3d): per task the Gaussian focal loss of the heatmap / #positives plus locWeight × the
   * code-weighted L1 of the box code at the objects' cells / #objects. Parts `det.task{i}.heatmap|bbox`.
   */
  loss(out: ForwardOutput, batch: PillarDetectorBatch): LossOutput {
    return centerHeadDetLoss(this.head, out.outputs, batch.boxes, `${this.names.name}: forward outputs`);
  }

  /** Boxes per sample in the keyframe ego frame (the batch's BEV augmentation undone), each task's best first. */
  async predict(out: ForwardOutput, batch: PillarDetectorBatch): Promise<DetBox[][]> {
    return centerHeadPredict(this.head, out.outputs, batch.bda, `${this.names.name}: forward outputs`);
  }
}
