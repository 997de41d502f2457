import * as tf from '@tensorflow/tfjs-core';
import { BevzooError, type ForwardOutput, type LossOutput, type Rng, type TaskModel } from '@bevzoo/core';
import {
  CenterHead, centerHeadConfig, centerHeadDetLoss, centerHeadPredict, depthLabels, depthLoss, CustomResNet, FPNForBEVDet, FPNLSS, LSSViewTransform, Module,
  NUSCENES_CIRCLE_NMS_RADII, ResNet, type CenterHeadConfig, type DetBox, type NmsConfig, boxOutputsRecord,
} from '@bevzoo/nn';
import { DETECTION_CLASSES, type Batch } from '@bevzoo/nuscenes';
import { bevdetLayout, type BEVDetConfig, type BEVDetLayout } from './config.js';

/** A batch that does not fit the model: what was expected, what was found, and which field. */
export class BEVDetInputError extends BevzooError {
  constructor(readonly field: string, readonly expected: string, readonly found: string) {
    super(`bevdet: batch.${field}: expected ${expected}, found ${found}`, { field, expected, found });
  }
}

/** The batch fields BEVDet reads. */
export type BEVDetBatch = Pick<Batch, 'images' | 'intrinsics' | 'sensor2ego' | 'postAug' | 'bda' | 'boxes'> & Partial<Pick<Batch, 'batchSize' | 'points'>>;

/** The CenterHead config BEVDet builds from its own config. */
export function bevdetHeadConfig(cfg: BEVDetConfig, layout: BEVDetLayout = bevdetLayout(cfg)): CenterHeadConfig {
  const h = cfg.head;
  const tasks = h.tasks;
  const nms: NmsConfig =
    h.nms === 'circle' ? { type: 'circle', radii: h.circleRadii ?? (tasks.length === NUSCENES_CIRCLE_NMS_RADII.length ? [...NUSCENES_CIRCLE_NMS_RADII] : tasks.map(() => 1)) }
      : h.nms === 'rotate' ? { type: 'rotate', iouThreshold: h.iouThreshold, preMaxSize: 1000 }
        : { type: 'none' };
  const [xmin, ymin, xmax, ymax] = cfg.grid.range;
  return centerHeadConfig({
    inChannels: cfg.bevEncoder.neckChannels,
    classNames: [...DETECTION_CLASSES],
    tasks: tasks.map((t) => [...t]),
    grid: { range: [xmin, ymin, xmax, ymax], cellSize: [cfg.grid.cellSize, cfg.grid.cellSize], stride: layout.headStride },
    sharedChannels: h.sharedChannels,
    headChannels: h.headChannels,
    numConvs: h.numConvs,
    leakyRelu: h.leakyRelu,
    locWeight: h.locWeight,
    decode: { scoreThreshold: h.scoreThreshold, maxPoolNms: h.maxPoolNms, nms, postMaxSize: h.postMaxSize, postCenterRange: [xmin - 10, ymin - 10, -10, xmax + 10, ymax + 10, 10] },
  });
}

/**
 * BEVDet (Huang et al. 2021; the bevdet-r50 structure): image backbone (ResNet, two consecutive stages) →
 * FPNForBEVDet (one map at the LSS feature stride) → LSS view transform with BEVPool → CustomResNet (3 stages,
 * stride 2) → FPN_LSS → CenterHead. Parameter names follow BEVDet's: `img_backbone.*`, `img_neck.*`,
 * `img_view_transformer.*`, `img_bev_encoder_backbone.*`, `img_bev_encoder_neck.*`, `head.*`.
 *
 * forward → features `stage0`, `stage1`, `stage2`, `pre_head`, `heatmap` (NHWC [B, Y, X, C]) and outputs
 * `task{i}.{heatmap,reg,height,dim,rot,vel}` plus `depth` ([B·N, fH, fW, D] depth distribution).
 */
export class BEVDet extends Module implements TaskModel<BEVDetBatch, DetBox[]> {
  readonly config: BEVDetConfig;
  readonly layout: BEVDetLayout;
  readonly img_backbone: ResNet;
  readonly img_neck: FPNForBEVDet;
  readonly img_view_transformer: LSSViewTransform;
  readonly img_bev_encoder_backbone: CustomResNet;
  readonly img_bev_encoder_neck: FPNLSS;
  readonly head: CenterHead;

  constructor(config: BEVDetConfig, opts: { rng?: Rng } = {}) {
    super();
    this.config = config;
    const l = (this.layout = bevdetLayout(config));
    const norm = config.norm;
    const rng = opts.rng;
    const fork = (k: string) => rng?.fork(k);
    const b = config.backbone;
    this.img_backbone = this.registerModule('img_backbone', new ResNet({
      block: b.block, layers: [...b.layers], widths: [...b.widths], stemWidth: b.stemWidth, outIndices: [...b.outIndices], norm, rng: fork('img_backbone'),
    }));
    this.img_neck = this.registerModule('img_neck', new FPNForBEVDet([...l.backboneChannels], config.neck.outChannels, { rng: fork('img_neck') }));
    const vt = config.viewTransform;
    this.img_view_transformer = this.registerModule('img_view_transformer', new LSSViewTransform({
      inChannels: config.neck.outChannels, contextChannels: vt.contextChannels, imageSize: l.imageSize, featureStride: l.featureStride,
      depthBins: [...vt.depthBins], grid: l.lssGrid, pixelMode: vt.pixelMode, poolImpl: vt.poolImpl, numCameras: config.numCameras, rng: fork('img_view_transformer'),
    }));
    this.img_bev_encoder_backbone = this.registerModule('img_bev_encoder_backbone', new CustomResNet({
      inChannels: vt.contextChannels, numLayers: [...config.bevEncoder.numLayers], channels: [...l.stageChannels], norm, rng: fork('img_bev_encoder_backbone'),
    }));
    this.img_bev_encoder_neck = this.registerModule('img_bev_encoder_neck', new FPNLSS({
      inChannels: l.stageChannels[0] + l.stageChannels[2], outChannels: config.bevEncoder.neckChannels, scaleFactor: 4, inputFeatureIndex: [0, 2], extraUpsample: config.bevEncoder.extraUpsample, norm, rng: fork('img_bev_encoder_neck'),
    }));
    this.head = this.registerModule('head', new CenterHead(bevdetHeadConfig(config, l), { rng: fork('head'), norm }));
  }

  /** Samples in a batch (checked against every camera array). */
  private batchSize(batch: BEVDetBatch): number {
    const N = this.config.numCameras;
    const [H, W] = this.layout.imageSize;
    const B = batch.intrinsics.length / (N * 9);
    if (!Number.isInteger(B) || B < 1) throw new BEVDetInputError('intrinsics', `[B, ${N}, 3, 3]`, `${batch.intrinsics.length} values`);
    if (batch.batchSize !== undefined && batch.batchSize !== B) throw new BEVDetInputError('batchSize', `${B} (from intrinsics)`, `${batch.batchSize}`);
    if (batch.images.length !== B * N * H * W * 3)
      throw new BEVDetInputError('images', `[${B}, ${N}, ${H}, ${W}, 3] = ${B * N * H * W * 3} values (the config's data.imageSize [${H}, ${W}])`, `${batch.images.length} values`);
    return B;
  }

  forward(batch: BEVDetBatch, opts: { training: boolean }): ForwardOutput {
    this.train(opts.training);
    const B = this.batchSize(batch);
    const N = this.config.numCameras;
    const [H, W] = this.layout.imageSize;
    return tf.tidy(() => {
      const images = tf.tensor4d(batch.images, [B * N, H, W, 3]);
      const levels = this.img_backbone.forward(images);
      const [feat] = this.img_neck.forward(levels);
      const { bev, depth } = this.img_view_transformer.forward(feat!, batch);
      const stages = this.img_bev_encoder_backbone.forward(bev);
      const preHead = this.img_bev_encoder_neck.forward(stages);
      const { outputs, heatmap } = boxOutputsRecord(this.head.forwardBoxes(preHead));
      outputs.depth = depth;
      const features: Record<string, tf.Tensor> = { stage0: stages[0]!, stage1: stages[1]!, stage2: stages[2]!, pre_head: preHead, heatmap };
      return { features, outputs } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** CenterHead loss on the batch's GT boxes (parts `det.task{i}.heatmap|bbox`), plus `depth` with depthSupervision. */
  loss(out: ForwardOutput, batch: BEVDetBatch): LossOutput {
    const B = this.batchSize(batch);
    if (batch.boxes.length !== B) throw new BEVDetInputError('boxes', `one entry per sample (${B})`, `${batch.boxes.length}`);
    const l = centerHeadDetLoss(this.head, out.outputs, batch.boxes, 'BEVDet forward outputs');
    const w = this.config.depthSupervision.weight;
    if (w === 0) return l;
    if (!batch.points || batch.points.length !== B)
      throw new BEVDetInputError('points', `one LiDAR cloud per sample (${B}) for depthSupervision (set data.points)`, batch.points ? `${batch.points.length}` : 'none');
    const labels = depthLabels(batch.points, batch, this.img_view_transformer.frustum, this.config.numCameras);
    const depth = tf.tidy(() => tf.mul(depthLoss(out.outputs.depth as tf.Tensor4D, labels), w) as tf.Scalar);
    const total = tf.add(l.total, depth) as tf.Scalar;
    l.total.dispose();
    return { total, parts: { ...l.parts, depth } };
  }

  /** Decoded boxes per sample in the keyframe ego frame (the batch's bda undone). */
  predict(out: ForwardOutput, batch: BEVDetBatch): Promise<DetBox[][]> {
    return centerHeadPredict(this.head, out.outputs, batch.bda, 'BEVDet forward outputs');
  }
}
