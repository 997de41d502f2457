/**
 * The LSS family of camera detectors (BEVDet, BEVDet4D, BEVDepth, BEVDepth4D), one class over `LSSDetectorConfig`:
 * image backbone (ResNet, two consecutive stages) → FPNForBEVDet → LSS view transform with BEVPool (BEVDet's 1×1
 * depth net, or BEVDepth's camera-aware DepthNet) → [BEVDet4D: `pre_process_net` per frame, the previous keyframe's
 * BEV map computed without gradient and aligned into the current frame, concatenated] → CustomResNet (3 stages,
 * stride 2) → FPN_LSS → CenterHead; with depth supervision (BEVDepth), a BCE loss on the depth distribution.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace, BevzooError, realPoints, type ForwardOutput, type LossOutput, type Rng, type TaskModel } from '@bevzoo/core';
import { Module } from '../module.js';
import { frozen } from '../grad.js';
import type { ResNet } from '../layers/resnet.js';
import type { FPNForBEVDet } from '../lss/img-neck.js';
import type { LSSViewTransform } from '../lss/view-transform.js';
import { CustomResNet, FPNLSS } from '../lss/bev-encoder.js';
import { depthLabels, depthLoss } from '../lss/depth.js';
import { alignPrevBev, alignTapInputs, alignTaps } from '../lss/temporal.js';
import { CenterHead } from '../centerhead/head.js';
import { boxOutputsRecord } from '../centerhead/fused.js';
import { centerHeadDetLoss, centerHeadPredict, type BatchBoxesLike } from '../centerhead/task.js';
import type { DetBox } from '../centerhead/decode.js';
import { cameraInputs, createCameraBranch, liftCameras } from './camera-branch.js';
import { lssDetectorLayout, lssHeadConfig, type LSSDetectorConfig, type LSSDetectorLayout } from './lss-config.js';

/** A batch that does not fit the model: what was expected, what was found, and which field. */
export class LSSInputError extends BevzooError {
  constructor(readonly model: string, readonly field: string, readonly expected: string, readonly found: string) {
    super(`${model}: batch.${field}: expected ${expected}, found ${found}`, { model, field, expected, found });
  }
}

/** The camera images of one keyframe: [B, N, H, W, 3] and the geometry of its cameras. */
export interface CameraFrameLike {
  images: Float32Array;
  intrinsics: Float32Array;
  sensor2ego: Float32Array;
  postAug: Float32Array;
}

/**
 * The batch fields an LSS detector reads (a structural type: @bevzoo/nuscenes' `Batch` satisfies it). `prev` is
 * read by temporal models (the sample itself where a scene starts, egoMotion identity), `points` by depth supervision
 * (only the real LiDAR returns, `realPoints`, where the batch carries MVP's 17-value points: `pointFeatures`).
 */
export interface LSSDetectorBatch extends CameraFrameLike {
  bda: Float32Array;
  boxes: readonly BatchBoxesLike[];
  batchSize?: number;
  points?: readonly Float32Array[];
  /** Values per point of `points` (absent = 5). */
  pointFeatures?: number;
  prev?: CameraFrameLike & { egoMotion: Float32Array };
}

/**
 * The samples of a camera batch, checked against every camera array (a batchSize field, the images at the
 * config's size) and, for a temporal model, the previous keyframe's; a mismatch throws an LSSInputError naming the
 * model and the field.
 */
export function cameraBatchSize(model: string, batch: CameraFrameLike & Pick<LSSDetectorBatch, 'batchSize' | 'prev'>, N: number, imageSize: readonly [number, number], temporal: boolean): number {
  const fail = (field: string, expected: string, found: string): never => {
    throw new LSSInputError(model, field, expected, found);
  };
  const [H, W] = imageSize;
  const B = batch.intrinsics.length / (N * 9);
  if (!Number.isInteger(B) || B < 1) fail('intrinsics', `[B, ${N}, 3, 3]`, `${batch.intrinsics.length} values`);
  if (batch.batchSize !== undefined && batch.batchSize !== B) fail('batchSize', `${B} (from intrinsics)`, `${batch.batchSize}`);
  const images = (field: string, v: Float32Array) => {
    if (v.length !== B * N * H * W * 3) fail(field, `[${B}, ${N}, ${H}, ${W}, 3] = ${B * N * H * W * 3} values (the config's data.imageSize [${H}, ${W}])`, `${v.length} values`);
  };
  images('images', batch.images);
  if (temporal) {
    const p = batch.prev;
    if (!p) return fail('prev', 'the previous keyframe (temporal.frames 2; set data.withPrev)', 'none');
    images('prev.images', p.images);
    if (p.intrinsics.length !== B * N * 9) fail('prev.intrinsics', `[${B}, ${N}, 3, 3]`, `${p.intrinsics.length} values`);
    if (p.egoMotion.length !== B * 16) fail('prev.egoMotion', `[${B}, 4, 4]`, `${p.egoMotion.length} values`);
  }
  return B;
}

export class LSSDetector extends Module implements TaskModel<LSSDetectorBatch, DetBox[]> {
  readonly config: LSSDetectorConfig;
  readonly layout: LSSDetectorLayout;
  readonly img_backbone: ResNet;
  readonly img_neck: FPNForBEVDet;
  readonly img_view_transformer: LSSViewTransform;
  /** BEVDet4D's per-frame BEV pre-processing (temporal models only). */
  readonly pre_process_net: CustomResNet | null;
  readonly img_bev_encoder_backbone: CustomResNet;
  readonly img_bev_encoder_neck: FPNLSS;
  readonly head: CenterHead;

  /** `name` is the model's name in error messages (the student's registered name). */
  constructor(config: LSSDetectorConfig, opts: { rng?: Rng; name?: string } = {}) {
    super();
    this.modelName = opts.name ?? 'lss-detector';
    this.config = config;
    const l = (this.layout = lssDetectorLayout(config));
    const norm = config.norm;
    const fork = (k: string) => opts.rng?.fork(k);
    const camera = createCameraBranch(this, config, l, l.lssGrid, opts.rng);
    this.img_backbone = camera.img_backbone;
    this.img_neck = camera.img_neck;
    this.img_view_transformer = camera.img_view_transformer;
    const C = config.viewTransform.contextChannels;
    this.pre_process_net = config.temporal.frames > 1 && config.temporal.preProcessBlocks > 0
      ? this.registerModule('pre_process_net', new CustomResNet({ inChannels: C, numLayers: [config.temporal.preProcessBlocks], channels: [C], strides: [1], norm, rng: fork('pre_process_net') }))
      : null;
    this.img_bev_encoder_backbone = this.registerModule('img_bev_encoder_backbone', new CustomResNet({
      inChannels: l.bevChannels, numLayers: [...config.bevEncoder.numLayers], channels: [...l.stageChannels], norm, rng: fork('img_bev_encoder_backbone'),
    }));
    this.img_bev_encoder_neck = this.registerModule('img_bev_encoder_neck', new FPNLSS({
      inChannels: l.stageChannels[0] + l.stageChannels[2], outChannels: config.bevEncoder.neckChannels, scaleFactor: 4, inputFeatureIndex: [0, 2], extraUpsample: config.bevEncoder.extraUpsample, norm, rng: fork('img_bev_encoder_neck'),
    }));
    this.head = this.registerModule('head', new CenterHead(lssHeadConfig(config, l), { rng: fork('head'), norm }));
  }

  readonly modelName: string;

  private fail(field: string, expected: string, found: string): never {
    throw new LSSInputError(this.modelName, field, expected, found);
  }

  /** Samples in a batch (checked against every camera array, and the previous frame's where the model reads it). */
  private batchSize(batch: LSSDetectorBatch): number {
    return cameraBatchSize(this.modelName, batch, this.config.numCameras, this.layout.imageSize, this.config.temporal.frames > 1);
  }

  /**
   * One keyframe's BEV map [B, Y, X, C] (after pre_process_net in a temporal model) and its depth distribution;
   * `prefix` names its inputs under a kernel trace ('' the keyframe, 'prev.' the previous one; see `liftCameras`).
   */
  private frameBev(frame: CameraFrameLike, bda: Float32Array, B: number, prefix = ''): { bev: tf.Tensor4D; depth: tf.Tensor4D } {
    return tf.tidy(() => {
      const { bev, depth } = liftCameras(this, frame, bda, B, this.config.numCameras, this.layout.imageSize, prefix);
      const pre = this.pre_process_net ? this.pre_process_net.forward(bev)[0]! : (bev as tf.Tensor4D);
      return { bev: pre, depth };
    });
  }

  /**
   * features `stage0`, `stage1`, `stage2` (after the temporal fusion), `pre_head`, `heatmap` (NHWC [B, Y, X, C]);
   * outputs `task{i}.{heatmap,reg,height,dim,rot,vel}` and `depth` ([B·N, fH, fW, D], the current frame's).
   */
  forward(batch: LSSDetectorBatch, opts: { training: boolean }): ForwardOutput {
    this.train(opts.training);
    const B = this.batchSize(batch);
    const temporal = this.config.temporal.frames > 1;
    // Under a kernel trace (an ONNX export): every input reported before any layer runs (see `cameraInputs`).
    if (activeKernelTrace())
      tf.tidy(() => {
        const { numCameras: N } = this.config;
        cameraInputs(this, batch, batch.bda, B, N, this.layout.imageSize);
        if (!temporal) return;
        cameraInputs(this, batch.prev!, batch.bda, B, N, this.layout.imageSize, 'prev.');
        const [X, Y] = this.layout.cells;
        alignTapInputs(alignTaps(batch.prev!.egoMotion, { range: this.config.grid.range, cells: [X, Y] }, batch.bda));
      });
    // The previous keyframe: its BEV map without gradient (BEVDet4D), then aligned by the ego motion, differentiably.
    const prevBev = this.config.temporal.frames > 1 ? frozen(() => this.frameBev(batch.prev!, batch.bda, B, 'prev.').bev) : null;
    return tf.tidy(() => {
      const { bev: cur, depth } = this.frameBev(batch, batch.bda, B);
      let bev = cur;
      if (prevBev) {
        const [X, Y] = this.layout.cells;
        const aligned = alignPrevBev(prevBev, batch.prev!.egoMotion, { range: this.config.grid.range, cells: [X, Y] }, batch.bda);
        prevBev.dispose();
        bev = tf.concat([cur, aligned], 3);
      }
      const stages = this.img_bev_encoder_backbone.forward(bev);
      const preHead = this.img_bev_encoder_neck.forward(stages);
      const { outputs, heatmap } = boxOutputsRecord(this.head.forwardBoxes(preHead));
      outputs.depth = depth;
      const features: Record<string, tf.Tensor> = { stage0: stages[0]!, stage1: stages[1]!, stage2: stages[2]!, pre_head: preHead, heatmap };
      return { features, outputs } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** CenterHead loss on the batch's GT boxes (parts `det.task{i}.heatmap|bbox`), plus `depth` with depthSupervision. */
  loss(out: ForwardOutput, batch: LSSDetectorBatch): LossOutput {
    const B = this.batchSize(batch);
    if (batch.boxes.length !== B) this.fail('boxes', `one entry per sample (${B})`, `${batch.boxes.length}`);
    const l = centerHeadDetLoss(this.head, out.outputs, batch.boxes, `${this.modelName} forward outputs`);
    const w = this.config.depthSupervision.weight;
    if (w === 0) return l;
    if (!batch.points || batch.points.length !== B)
      this.fail('points', `one LiDAR cloud per sample (${B}) for depthSupervision (set data.points)`, batch.points ? `${batch.points.length}` : 'none');
    const labels = depthLabels(realPoints(batch), batch, this.img_view_transformer.frustum, this.config.numCameras);
    const depth = tf.tidy(() => tf.mul(depthLoss(out.outputs.depth as tf.Tensor4D, labels), w) as tf.Scalar);
    const total = tf.add(l.total, depth) as tf.Scalar;
    l.total.dispose();
    return { total, parts: { ...l.parts, depth } };
  }

  /** Decoded boxes per sample in the keyframe ego frame (the batch's bda undone). */
  predict(out: ForwardOutput, batch: LSSDetectorBatch): Promise<DetBox[][]> {
    return centerHeadPredict(this.head, out.outputs, batch.bda, `${this.modelName} forward outputs`);
  }
}
