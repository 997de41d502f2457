/**
 * The LSS occupancy models, over the camera branch of the LSS family (`createCameraBranch`: ResNet + FPNForBEVDet +
 * LSS with BEVPool; optional BEVDepth depth supervision):
 * - `LSSOcc3D` (BEVDet-Occ): LSS into a voxel volume (BEVPool keeping the z cells) → CustomResNet3D → LSSFPN3D →
 *   BEVOCCHead3D (Conv3d + MLP).
 * - `LSSOcc2D` (FlashOcc): LSS into a BEV map (z collapsed) → CustomResNet → FPN_LSS → channel-to-height head.
 * Both predict logits [B, X, Y, Z, 18] on their grid (Occ3D's [x, y, z] order), train with the camera-masked
 * cross-entropy on Occ3D labels pooled onto that grid, and predict Occ3D labels upsampled onto 200×200×16.
 * Parameter names follow the reference (`img_backbone.*`, `img_neck.*`, `img_view_transformer.*`,
 * `img_bev_encoder_backbone.*`, `img_bev_encoder_neck.*`, `occ_head.*`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { realPoints, type ForwardOutput, type LossOutput, type OccPrediction, type Rng, type TaskModel } from '@bevzoo/core';
import { Module } from '../module.js';
import type { ResNet } from '../layers/resnet.js';
import { FPN3D, ResNet3D } from '../layers/blocks3d.js';
import type { FPNForBEVDet } from '../lss/img-neck.js';
import type { LSSViewTransform } from '../lss/view-transform.js';
import { CustomResNet, FPNLSS } from '../lss/bev-encoder.js';
import { depthLabels, depthLoss } from '../lss/depth.js';
import { createCameraBranch, liftCameras } from '../detectors/camera-branch.js';
import { cameraBatchSize, LSSInputError, type CameraFrameLike } from '../detectors/lss-detector.js';
import { bdaFlips, flipOccVolume, occBatchSize, poolOccLabels, upsampleOccLabels } from './labels.js';
import { occClassWeights, occCrossEntropy } from './loss.js';
import { ChannelToHeightHead, VoxelOccHead } from './heads.js';
import { OCC3D } from './occ3d.js';
import { lssOcc2DLayout, lssOcc3DLayout, type LSSOcc2DConfig, type LSSOcc2DLayout, type LSSOcc3DConfig, type LSSOccConfig, type LSSOccLayout } from './occ-config.js';

/**
 * The batch fields an occupancy model reads (@bevzoo/nuscenes' `Batch` satisfies it): the cameras, the BEV
 * augmentation (flips only), the Occ3D labels ([B, 200, 200, 16] each, flipped with the bda) for the loss, and the
 * keyframe LiDAR points with depth supervision (only the real returns, `realPoints`, of MVP's 17-value points).
 */
export interface LSSOccBatch extends CameraFrameLike {
  bda: Float32Array;
  batchSize?: number;
  points?: readonly Float32Array[];
  /** Values per point of `points` (absent = 5). */
  pointFeatures?: number;
  occ?: { semantics: Uint8Array; maskCamera: Uint8Array };
}

/** What the shared part hands a model's encoder: the lifted map or volume; what it returns: features and logits. */
interface Encoded {
  features: Record<string, tf.Tensor>;
  /** [B, X, Y, Z, K] (Occ3D order) on the model's grid. */
  logits: tf.Tensor;
}

/** The camera branch, targets, loss and prediction the two occupancy models share. */
export abstract class LSSOccupancy extends Module implements TaskModel<LSSOccBatch, OccPrediction> {
  readonly config: LSSOccConfig;
  readonly layout: LSSOccLayout;
  readonly img_backbone: ResNet;
  readonly img_neck: FPNForBEVDet;
  readonly img_view_transformer: LSSViewTransform;
  readonly modelName: string;
  readonly classWeights: Float32Array | null;

  protected constructor(config: LSSOccConfig, layout: LSSOccLayout, opts: { rng?: Rng; name: string }) {
    super();
    this.config = config;
    this.layout = layout;
    this.modelName = opts.name;
    this.classWeights = occClassWeights(config.loss.classWeights);
    const camera = createCameraBranch(this, config, layout, layout.lssGrid, opts.rng);
    this.img_backbone = camera.img_backbone;
    this.img_neck = camera.img_neck;
    this.img_view_transformer = camera.img_view_transformer;
  }

  /** The lifted BEV map [B, Y, X, C] or volume [B, Z, Y, X, C] → features and logits. */
  protected abstract encode(lifted: tf.Tensor): Encoded;

  /**
   * A multi-modal model's other sensors, read from the batch before the cameras are lifted (so that under a kernel
   * trace every batch input is reported before the first convolution runs); none by default.
   */
  protected readSensors(_batch: LSSOccBatch, _B: number): tf.Tensor | null {
    return null;
  }

  /** What the encoder reads: the lifted cameras, or (a multi-modal model) them fused with `sensors` (`readSensors`). */
  protected fuse(lifted: tf.Tensor, _sensors: tf.Tensor | null): tf.Tensor {
    return lifted;
  }

  protected fail(field: string, expected: string, found: string): never {
    throw new LSSInputError(this.modelName, field, expected, found);
  }

  private batchSize(batch: LSSOccBatch): number {
    return cameraBatchSize(this.modelName, batch, this.config.numCameras, this.layout.imageSize, false);
  }

  /** The flips of each sample's bda (an error naming the field for a rotation or a scaling). */
  private flips(batch: LSSOccBatch, B: number): { flipX: boolean; flipY: boolean }[] {
    if (batch.bda.length !== B * 9) this.fail('bda', `[${B}, 3, 3]`, `${batch.bda.length} values`);
    return Array.from({ length: B }, (_, b) => bdaFlips(batch.bda, b * 9) ?? this.fail('bda', 'flips only (occupancy labels are not rotated or scaled)', `[${Array.from(batch.bda.subarray(b * 9, b * 9 + 9)).map((v) => +v.toFixed(3)).join(', ')}]`));
  }

  /** outputs `occ` (logits [B, X, Y, Z, 18] on the model's grid) and `depth` ([B·N, fH, fW, D]); features as `provides`. */
  forward(batch: LSSOccBatch, opts: { training: boolean }): ForwardOutput {
    this.train(opts.training);
    const B = this.batchSize(batch);
    return tf.tidy(() => {
      const sensors = this.readSensors(batch, B);
      const { bev, depth } = liftCameras(this, batch, batch.bda, B, this.config.numCameras, this.layout.imageSize);
      const { features, logits } = this.encode(this.fuse(bev, sensors));
      return { features: { ...features, occ_logits: logits }, outputs: { occ: logits, depth } } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** Labels and camera mask of the batch pooled onto the model's grid (`labels.rule`). */
  targets(batch: LSSOccBatch) {
    const B = this.batchSize(batch);
    const occ = batch.occ ?? this.fail('occ', 'the Occ3D labels of each sample (set data.occ)', 'none');
    if (occBatchSize(occ.semantics, occ.maskCamera, 'batch.occ') !== B) this.fail('occ.semantics', `${B} samples of ${OCC3D.cells.join('×')}`, `${occ.semantics.length} values`);
    this.flips(batch, B);
    return poolOccLabels(occ.semantics, occ.maskCamera, this.layout.grid, this.config.labels.rule);
  }

  /** Part `occ.ce` (the masked, class-weighted cross-entropy × loss.weight), plus `depth` with depth supervision. */
  loss(out: ForwardOutput, batch: LSSOccBatch): LossOutput {
    const logits = out.outputs.occ ?? this.fail('outputs.occ', 'the forward output of this model', 'none');
    const t = this.targets(batch);
    const ce = tf.tidy(() => tf.mul(occCrossEntropy(logits, t, this.classWeights), this.config.loss.weight) as tf.Scalar);
    const w = this.config.depthSupervision.weight;
    if (w === 0) return { total: ce.clone(), parts: { 'occ.ce': ce } };
    const B = t.batch;
    if (!batch.points || batch.points.length !== B)
      this.fail('points', `one LiDAR cloud per sample (${B}) for depthSupervision (set data.points)`, batch.points ? `${batch.points.length}` : 'none');
    const labels = depthLabels(realPoints(batch), batch, this.img_view_transformer.frustum, this.config.numCameras);
    const depth = tf.tidy(() => tf.mul(depthLoss(out.outputs.depth as tf.Tensor4D, labels), w) as tf.Scalar);
    return { total: tf.add(ce, depth) as tf.Scalar, parts: { 'occ.ce': ce, depth } };
  }

  /** Occ3D labels per sample (200×200×16, [x, y, z]): the arg-max on the model's grid, bda flips undone, upsampled. */
  async predict(out: ForwardOutput, batch: LSSOccBatch): Promise<OccPrediction[]> {
    const logits = out.outputs.occ ?? this.fail('outputs.occ', 'the forward output of this model', 'none');
    const B = logits.shape[0]!;
    const flips = this.flips(batch, B);
    const am = tf.tidy(() => tf.cast(tf.argMax(logits, logits.rank - 1), 'int32'));
    const coarse = (await am.data()) as Int32Array;
    am.dispose();
    const cells = this.layout.grid.cells;
    const M = cells[0] * cells[1] * cells[2];
    return flips.map(({ flipX, flipY }, b) => {
      const own = flipOccVolume(coarse.subarray(b * M, (b + 1) * M), cells, flipX, flipY);
      return { semantics: upsampleOccLabels(own, this.layout.grid)[0]! };
    });
  }
}

/**
 * BEVDet-Occ (the RadOcc paper's student, bevdet-occ-r50's structure): LSS into a 3-D volume → CustomResNet3D
 * (`img_bev_encoder_backbone`) → LSSFPN3D (`img_bev_encoder_neck`) → BEVOCCHead3D (`occ_head`). The volume runs in
 * Occ3D's [x, y, z] order (NDHWC with D = x, H = y, W = z).
 */
export class LSSOcc3D extends LSSOccupancy {
  declare readonly config: LSSOcc3DConfig;
  readonly img_bev_encoder_backbone: ResNet3D;
  readonly img_bev_encoder_neck: FPN3D;
  readonly occ_head: VoxelOccHead;

  constructor(config: LSSOcc3DConfig, opts: { rng?: Rng; name?: string } = {}) {
    const l = lssOcc3DLayout(config);
    super(config, l, { rng: opts.rng, name: opts.name ?? 'lss-occ-3d' });
    const fork = (k: string) => opts.rng?.fork(k);
    const e = config.voxelEncoder;
    this.img_bev_encoder_backbone = this.registerModule('img_bev_encoder_backbone', new ResNet3D({
      inChannels: config.viewTransform.contextChannels, numLayers: [...e.numLayers], numChannels: [...l.stageChannels], strides: l.stageChannels.map((_, i) => (i === 0 ? 1 : 2)), norm: config.norm, rng: fork('img_bev_encoder_backbone'),
    }));
    this.img_bev_encoder_neck = this.registerModule('img_bev_encoder_neck', new FPN3D([...l.stageChannels], l.neckChannels, { norm: config.norm, rng: fork('img_bev_encoder_neck') }));
    this.occ_head = this.registerModule('occ_head', new VoxelOccHead(l.neckChannels, { channels: config.head.channels, subvoxels: [...config.head.subvoxels], rng: fork('occ_head') }));
  }

  /** features `voxel` ([B, X, Y, Z, C] on the volume) and `pre_head` ([B, Y, X, Z·C]); logits [B, X, Y, Z, 18] on the grid. */
  protected encode(volume: tf.Tensor): Encoded {
    const [X, Y, Z] = this.layout.volume.cells;
    const x = tf.transpose(volume, [0, 3, 2, 1, 4]); // [B, Z, Y, X, C] → [B, X, Y, Z, C]
    const voxel = this.img_bev_encoder_neck.forward(this.img_bev_encoder_backbone.forward(x));
    const C = voxel.shape[4]!;
    const preHead = tf.reshape(tf.transpose(voxel, [0, 2, 1, 3, 4]), [-1, Y, X, Z * C]);
    return { features: { voxel, pre_head: preHead }, logits: this.occ_head.forward(voxel) };
  }
}

/**
 * FlashOcc (flashocc-r50's structure): LSS into a BEV map (z collapsed) → CustomResNet (`img_bev_encoder_backbone`)
 * → FPN_LSS (`img_bev_encoder_neck`) → channel-to-height head (`occ_head`); no 3-D convolution.
 */
export class LSSOcc2D extends LSSOccupancy {
  declare readonly config: LSSOcc2DConfig;
  declare readonly layout: LSSOcc2DLayout;
  readonly img_bev_encoder_backbone: CustomResNet;
  readonly img_bev_encoder_neck: FPNLSS;
  readonly occ_head: ChannelToHeightHead;

  constructor(config: LSSOcc2DConfig, opts: { rng?: Rng; name?: string } = {}) {
    const l = lssOcc2DLayout(config);
    super(config, l, { rng: opts.rng, name: opts.name ?? 'lss-occ-2d' });
    const fork = (k: string) => opts.rng?.fork(k);
    const s = l.firstStride;
    const st = l.stageChannels;
    this.img_bev_encoder_backbone = this.registerModule('img_bev_encoder_backbone', new CustomResNet({
      inChannels: config.viewTransform.contextChannels, numLayers: [...config.bevEncoder.numLayers], channels: [...st], strides: [s, 2, 2], norm: config.norm, rng: fork('img_bev_encoder_backbone'),
    }));
    this.img_bev_encoder_neck = this.registerModule('img_bev_encoder_neck', new FPNLSS({
      inChannels: st[0] + st[2], outChannels: l.neckChannels, scaleFactor: 4, inputFeatureIndex: [0, 2], extraUpsample: s === 2 ? 2 : null, norm: config.norm, rng: fork('img_bev_encoder_neck'),
    }));
    this.occ_head = this.registerModule('occ_head', new ChannelToHeightHead(l.neckChannels, l.grid.cells[2], { channels: config.head.channels, rng: fork('occ_head') }));
  }

  /** features `stage0..2` and `pre_head` ([B, Y, X, C]); logits [B, X, Y, Z, 18]. */
  protected encode(bev: tf.Tensor): Encoded {
    const stages = this.img_bev_encoder_backbone.forward(bev);
    const preHead = this.img_bev_encoder_neck.forward(stages);
    return { features: { stage0: stages[0]!, stage1: stages[1]!, stage2: stages[2]!, pre_head: preHead }, logits: this.occ_head.forward(preHead) };
  }
}
