import * as tf from '@tensorflow/tfjs-core';
import { BevzooError, type ForwardOutput, type LossOutput, type Rng, type TaskModel } from '@bevzoo/core';
import {
  BasicBlock, CenterHead, centerHeadConfig, centerHeadDetLoss, centerHeadPredict, ConvModule, Module, NUSCENES_CLASS_NAMES, ResNet, Sequential,
  type DetBox, boxOutputsRecord,
} from '@bevzoo/nn';
import type { Batch } from '@bevzoo/nuscenes';
import { oftLayout, type OftConfig, type OftLayout } from './config.js';
import { OftPlanCache, orthographicTransform } from './oft.js';

/** A batch that does not fit the model: which field, what was expected, what was found. */
export class OftInputError extends BevzooError {
  constructor(readonly field: string, readonly expected: string, readonly found: string) {
    super(`oft: batch.${field}: expected ${expected}, found ${found}`, { field, expected, found });
  }
}

/** The batch fields OFT-lite reads. */
export type OftBatch = Pick<Batch, 'images' | 'intrinsics' | 'sensor2ego' | 'postAug' | 'bda' | 'boxes'>;


/**
 * OFT-lite: ResNet (`img_backbone`) → 1×1 ConvModule to C channels (`img_neck`) → orthographic feature transform
 * (no parameters) → BasicBlocks at stride 1 (`bev_encoder`) → CenterHead (`head`).
 *
 * forward → features `pre_head` [B, Y, X, channels] and `heatmap` [B, Y, X, 10]; outputs `bev` (the transform's
 * output) and `task{i}.{heatmap,reg,height,dim,rot,vel}`.
 */
export class OftLite extends Module implements TaskModel<OftBatch, DetBox[]> {
  readonly layout: OftLayout;
  readonly img_backbone: ResNet;
  readonly img_neck: ConvModule;
  readonly bev_encoder: Sequential;
  readonly head: CenterHead;
  /** Bilinear-tap plans by camera geometry (a fixed rig is planned once). */
  readonly plans: OftPlanCache;

  constructor(readonly config: OftConfig, opts: { rng?: Rng } = {}) {
    super();
    const l = (this.layout = oftLayout(config));
    const fork = (k: string) => opts.rng?.fork(k);
    const b = config.backbone;
    this.img_backbone = this.registerModule('img_backbone', new ResNet({
      block: 'basic', layers: [...b.layers], widths: [...b.widths], stemWidth: b.stemWidth, outIndices: [b.layers.length - 1], rng: fork('img_backbone'),
    }));
    this.img_neck = this.registerModule('img_neck', new ConvModule(b.widths.at(-1)!, config.featureChannels, 1, { rng: fork('img_neck') }));
    const e = config.bevEncoder, rng = fork('bev_encoder');
    this.bev_encoder = this.registerModule('bev_encoder', new Sequential(
      ...Array.from({ length: e.numBlocks }, (_, i) => new BasicBlock(i === 0 ? l.bevChannels : e.channels, e.channels, { rng })),
    ));
    const [xmin, ymin, xmax, ymax] = config.grid.range;
    const h = config.head;
    this.head = this.registerModule('head', new CenterHead(centerHeadConfig({
      inChannels: e.channels, classNames: [...NUSCENES_CLASS_NAMES], tasks: h.tasks.map((t) => [...t]),
      grid: { range: [xmin, ymin, xmax, ymax], cellSize: [config.grid.cellSize, config.grid.cellSize], stride: 1 },
      sharedChannels: h.sharedChannels, headChannels: h.headChannels,
      decode: { scoreThreshold: h.scoreThreshold, postMaxSize: h.postMaxSize },
    }), { rng: fork('head') }));
    this.plans = new OftPlanCache({
      numCameras: config.numCameras, imageSize: l.imageSize, featureStride: l.featureStride, featureSize: l.featureSize,
      range: [xmin, ymin, xmax, ymax], cells: l.cells, heights: [...config.grid.heights], minDepth: config.grid.minDepth,
    });
  }

  /** Samples in a batch, checked against every array the model reads. */
  private batchSize(batch: OftBatch): number {
    const N = this.config.numCameras, [H, W] = this.layout.imageSize;
    const B = batch.intrinsics.length / (N * 9);
    if (!Number.isInteger(B) || B < 1) throw new OftInputError('intrinsics', `[B, ${N}, 3, 3]`, `${batch.intrinsics.length} values`);
    const expect = (field: 'sensor2ego' | 'postAug' | 'bda' | 'images', perSample: number, shape: string) => {
      const len = batch[field].length;
      if (len !== B * perSample) throw new OftInputError(field, `[${B}, ${shape}] = ${B * perSample} values`, `${len} values`);
    };
    expect('sensor2ego', N * 16, `${N}, 4, 4`);
    expect('postAug', N * 9, `${N}, 3, 3`);
    expect('bda', 9, '3, 3');
    expect('images', N * H * W * 3, `${N}, ${H}, ${W}, 3 (the config's data.imageSize)`);
    return B;
  }

  forward(batch: OftBatch, opts: { training: boolean }): ForwardOutput {
    this.train(opts.training);
    const B = this.batchSize(batch);
    const N = this.config.numCameras, [H, W] = this.layout.imageSize;
    const plan = this.plans.get(batch);
    return tf.tidy(() => {
      const [c] = this.img_backbone.forward(tf.tensor4d(batch.images, [B * N, H, W, 3]));
      const feats = this.img_neck.forward(c!) as tf.Tensor4D; // [B·N, fH, fW, C]
      const bev = orthographicTransform(feats, plan, this.layout.cells); // [B, Y, X, Z·C]
      const preHead = this.bev_encoder.forward(bev) as tf.Tensor4D;
      const { outputs, heatmap } = boxOutputsRecord(this.head.forwardBoxes(preHead));
      outputs.bev = bev;
      return { features: { pre_head: preHead, heatmap }, outputs } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** CenterHead focal + L1 loss against the batch's GT boxes; parts `det.task{i}.heatmap` and `det.task{i}.bbox`. */
  loss(out: ForwardOutput, batch: OftBatch): LossOutput {
    const B = this.batchSize(batch);
    if (batch.boxes.length !== B) throw new OftInputError('boxes', `one entry per sample (${B})`, `${batch.boxes.length}`);
    return centerHeadDetLoss(this.head, out.outputs, batch.boxes, 'OftLite forward outputs');
  }

  /** Boxes per sample in the keyframe ego frame (the batch's bda undone). */
  predict(out: ForwardOutput, batch: OftBatch): Promise<DetBox[][]> {
    return centerHeadPredict(this.head, out.outputs, batch.bda, 'OftLite forward outputs');
  }
}
