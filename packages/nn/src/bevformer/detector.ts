/**
 * BEVFormer with a CenterHead: image backbone (ResNet) → FPN (multi-scale, the embedding width) + camera and level
 * embeddings → BEV queries with a learned positional embedding → encoder layers (temporal self-attention → norm →
 * spatial cross-attention → norm → FFN → norm) → the BEV embedding [B, Y, X, C] → CenterHead. With
 * `temporal.frames` 2 the previous keyframe's BEV embedding (computed without gradient, its own previous BEV being
 * its queries, as on a first frame) is aligned into the current frame by the ego motion and feeds the temporal
 * self-attention of every layer.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace, traceInput, type ForwardOutput, type LossOutput, type Rng, type TaskModel } from '@bevzoo/core';
import { Module, ModuleList } from '../module.js';
import { ResNet } from '../layers/resnet.js';
import { FPN } from '../layers/fpn.js';
import { Linear } from '../layers/linear.js';
import { LayerNorm } from '../layers/layernorm.js';
import { alignPrevBev, alignTapInputs, alignTaps } from '../lss/temporal.js';
import { egoToImage, type CameraGeometry } from '../lss/frustum.js';
import { CenterHead } from '../centerhead/head.js';
import { boxOutputsRecord } from '../centerhead/fused.js';
import { centerHeadDetLoss, centerHeadPredict } from '../centerhead/task.js';
import type { DetBox } from '../centerhead/decode.js';
import { frozen } from '../grad.js';
import { cameraBatchSize, LSSInputError, type CameraFrameLike, type LSSDetectorBatch } from '../detectors/lss-detector.js';
import { SpatialCrossAttention, TemporalSelfAttention, type CameraHits } from './attention.js';
import { bevformerHeadConfig, bevformerLayout, type BEVFormerConfig, type BEVFormerLayout } from './config.js';

/** A tensor of `n` values from `f` (initialisation). */
const filled = (shape: number[], f: () => number) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f), shape);

/** mmdet's LearnedPositionalEncoding: a cell (row y, column x) gets [col_embed[x], row_embed[y]] → [Y·X, C]. */
export class LearnedPositionalEncoding extends Module {
  readonly col_embed: tf.Variable;
  readonly row_embed: tf.Variable;

  constructor(readonly X: number, readonly Y: number, readonly channels: number, init: () => number) {
    super();
    this.col_embed = this.registerParameter('col_embed', filled([X, channels / 2], init));
    this.row_embed = this.registerParameter('row_embed', filled([Y, channels / 2], init));
  }

  forward(): tf.Tensor2D {
    const { X, Y, channels: C } = this;
    // Broadcasting (not Tile, slow on wasm): the column embedding along the rows, the row embedding along the columns.
    return tf.tidy(() => tf.concat([
      tf.reshape(tf.add(tf.zeros([Y, 1, 1]), tf.expandDims(this.col_embed, 0)), [X * Y, C / 2]),
      tf.reshape(tf.add(tf.zeros([1, X, 1]), tf.expandDims(this.row_embed, 1)), [X * Y, C / 2]),
    ], 1) as tf.Tensor2D);
  }
}

/** One encoder layer: temporal self-attention → norm → spatial cross-attention → norm → FFN → norm. */
export class BEVFormerLayer extends Module {
  readonly attentions: ModuleList;
  readonly norms: ModuleList<LayerNorm>;
  readonly ffn_in: Linear;
  readonly ffn_out: Linear;

  constructor(config: BEVFormerConfig, levels: number, rng?: Rng) {
    super();
    const e = config.encoder;
    const common = { embedDims: e.embedDims, heads: e.heads };
    this.attentions = this.registerModule('attentions', new ModuleList());
    this.attentions.push(new TemporalSelfAttention({ ...common, points: e.selfPoints, rng: rng?.fork('tsa') }));
    this.attentions.push(new SpatialCrossAttention({ ...common, points: e.crossPoints, levels, pillarPoints: config.bev.pillarPoints, rng: rng?.fork('sca') }));
    this.norms = this.registerModule('norms', new ModuleList<LayerNorm>());
    for (let i = 0; i < 3; i++) this.norms.push(new LayerNorm(e.embedDims));
    this.ffn_in = this.registerModule('ffn_in', new Linear(e.embedDims, e.ffnChannels, { rng: rng?.fork('ffn_in') }));
    this.ffn_out = this.registerModule('ffn_out', new Linear(e.ffnChannels, e.embedDims, { rng: rng?.fork('ffn_out') }));
  }

  forward(query: tf.Tensor3D, pos: tf.Tensor2D, prev: tf.Tensor3D | null, ref: tf.Tensor2D, shape: [number, number], feats: tf.Tensor3D, levels: [number, number][], hits: CameraHits): tf.Tensor3D {
    return tf.tidy(() => {
      const [tsa, sca] = [this.attentions.get(0) as TemporalSelfAttention, this.attentions.get(1) as SpatialCrossAttention];
      let q = this.norms.get(0).forward(tsa.forward(query, pos, prev ?? query, ref, shape)) as tf.Tensor3D;
      q = this.norms.get(1).forward(sca.forward(q, pos, feats, levels, hits)) as tf.Tensor3D;
      return this.norms.get(2).forward(tf.add(q, this.ffn_out.forward(tf.relu(this.ffn_in.forward(q))))) as tf.Tensor3D;
    });
  }
}

/**
 * Where each camera sees each BEV query: the pillar of every cell (its `pillarPoints` heights, evenly spaced from
 * 0.5 m above zmin to 0.5 m below zmax, as the reference's `ref_3d`) projected into every
 * camera's augmented image (normalised by the image size); a camera sees a query when a height lands strictly inside
 * its image in front of it (the reference's `bev_mask`). See `CameraHits`. `minLen` pads every camera's list to at
 * least that many slots (an export pads to the number of queries, so that the shapes do not depend on the geometry).
 */
export function cameraHits(geom: CameraGeometry, numCameras: number, layout: BEVFormerLayout, config: BEVFormerConfig, minLen = 1): CameraHits {
  const { batch: B, project } = egoToImage(geom, numCameras);
  const [X, Y] = layout.cells;
  const [H, W] = layout.imageSize;
  const [xmin, ymin] = config.bev.range;
  const cs = config.bev.cellSize;
  const Z = config.bev.pillarPoints;
  const [zmin, zmax] = config.bev.zRange;
  const Q = X * Y, K = B * numCameras;
  const seen: number[][] = [], refs: Float32Array[] = [];
  const count = new Float32Array(B * Q);
  const uvd = new Float64Array(3);
  const ref = new Float32Array(Q * Z * 2);
  // The reference's ref_3d heights: linspace(0.5, Zr − 0.5, Z) metres above zmin, Zr = zmax − zmin.
  const heights = Array.from({ length: Z }, (_, z) => zmin + 0.5 + (Z > 1 ? (z * (zmax - zmin - 1)) / (Z - 1) : 0));
  for (let k = 0; k < K; k++) {
    const b = Math.floor(k / numCameras);
    const list: number[] = [];
    for (let q = 0; q < Q; q++) {
      const x = xmin + ((q % X) + 0.5) * cs, y = ymin + (Math.floor(q / X) + 0.5) * cs;
      let hit = false;
      for (let z = 0; z < Z; z++) {
        const o = (q * Z + z) * 2;
        if (project(k, x, y, heights[z]!, uvd)) {
          const u = uvd[0]! / W, v = uvd[1]! / H;
          [ref[o], ref[o + 1]] = [u, v];
          if (u > 0 && u < 1 && v > 0 && v < 1) hit = true;
        } else [ref[o], ref[o + 1]] = [-10, -10]; // behind the camera: samples nothing
      }
      if (hit) {
        list.push(q);
        count[b * Q + q]! += 1;
      }
    }
    seen.push(list);
    refs.push(Float32Array.from(list.flatMap((q) => Array.from(ref.subarray(q * Z * 2, (q + 1) * Z * 2)))));
  }
  const maxLen = Math.max(1, minLen, ...seen.map((l) => l.length));
  const index = new Int32Array(K * maxLen).fill(-1);
  const out = new Float32Array(K * maxLen * Z * 2).fill(-10);
  seen.forEach((list, k) => {
    const b = Math.floor(k / numCameras);
    list.forEach((q, j) => (index[k * maxLen + j] = b * Q + q));
    out.set(refs[k]!, k * maxLen * Z * 2);
  });
  for (let i = 0; i < count.length; i++) count[i] = Math.max(1, count[i]!);
  return { maxLen, index, ref: out, count };
}

export class BEVFormerDetector extends Module implements TaskModel<LSSDetectorBatch, DetBox[]> {
  readonly config: BEVFormerConfig;
  readonly layout: BEVFormerLayout;
  readonly modelName: string;
  readonly img_backbone: ResNet;
  readonly img_neck: FPN;
  readonly cams_embeds: tf.Variable;
  readonly level_embeds: tf.Variable;
  readonly bev_embedding: tf.Variable;
  readonly positional_encoding: LearnedPositionalEncoding;
  readonly layers: ModuleList<BEVFormerLayer>;
  readonly head: CenterHead;
  /** The BEV cells' normalised centres [Q, 2] (x, y): the temporal self-attention's reference points. */
  private readonly ref2d: tf.Tensor2D;

  constructor(config: BEVFormerConfig, opts: { rng?: Rng; name?: string } = {}) {
    super();
    this.modelName = opts.name ?? 'bevformer';
    this.config = config;
    const l = (this.layout = bevformerLayout(config));
    const fork = (k: string) => opts.rng?.fork(k);
    const b = config.backbone;
    const C = config.encoder.embedDims;
    const [X, Y] = l.cells;
    this.img_backbone = this.registerModule('img_backbone', new ResNet({
      block: b.block, layers: [...b.layers], widths: [...b.widths], stemWidth: b.stemWidth, outIndices: [...b.outIndices], norm: config.norm, rng: fork('img_backbone'),
    }));
    this.img_neck = this.registerModule('img_neck', new FPN([...l.backboneChannels], C, { numOuts: config.neck.levels, rng: fork('img_neck') }));
    const rng = fork('embeddings');
    const normal = () => (rng ? rng.normal() : 0);
    const uniform = () => (rng ? rng.uniform() : 0.5);
    this.cams_embeds = this.registerParameter('cams_embeds', filled([config.numCameras, C], normal));
    this.level_embeds = this.registerParameter('level_embeds', filled([config.neck.levels, C], normal));
    this.bev_embedding = this.registerParameter('bev_embedding', filled([X * Y, C], normal));
    this.positional_encoding = this.registerModule('positional_encoding', new LearnedPositionalEncoding(X, Y, C, uniform));
    this.layers = this.registerModule('layers', new ModuleList<BEVFormerLayer>());
    for (let i = 0; i < config.encoder.layers; i++) this.layers.push(new BEVFormerLayer(config, config.neck.levels, fork(`layer${i}`)));
    this.head = this.registerModule('head', new CenterHead(bevformerHeadConfig(config), { rng: fork('head'), norm: config.norm }));
    this.ref2d = tf.keep(tf.tensor2d(Float32Array.from({ length: X * Y * 2 }, (_, i) => (i % 2 === 0 ? ((Math.floor(i / 2) % X) + 0.5) / X : (Math.floor(i / 2 / X) + 0.5) / Y)), [X * Y, 2]));
  }

  private fail(field: string, expected: string, found: string): never {
    throw new LSSInputError(this.modelName, field, expected, found);
  }

  /** Samples in a batch, checked against the camera arrays (and the previous frame's with temporal.frames 2). */
  private batchSize(batch: LSSDetectorBatch): number {
    return cameraBatchSize(this.modelName, batch, this.config.numCameras, this.layout.imageSize, this.config.temporal.frames > 1);
  }

  /** A keyframe's images [B·N, H, W, 3] and camera hits, reported to a kernel trace as named inputs (see `encode`). */
  private frameInputs(frame: CameraFrameLike, bda: Float32Array, B: number, prefix: string): { hits: CameraHits; images: tf.Tensor4D } {
    const N = this.config.numCameras;
    const [H, W] = this.layout.imageSize;
    const [X, Y] = this.layout.cells;
    const traced = activeKernelTrace() !== null;
    const hits = cameraHits({ intrinsics: frame.intrinsics, sensor2ego: frame.sensor2ego, postAug: frame.postAug, bda }, N, this.layout, this.config, traced ? X * Y : 1);
    if (traced) {
      const name = (k: string) => `${prefix}bevformer.${k}`;
      hits.tensors = {
        index: traceInput(name('hits_index'), () => tf.tensor1d(hits.index, 'int32')),
        ref: traceInput(name('hits_ref'), () => tf.tensor(hits.ref, [hits.index.length, this.config.bev.pillarPoints, 2])),
        count: traceInput(name('hits_count'), () => tf.tensor1d(hits.count)),
      };
    }
    return { hits, images: traceInput(`${prefix}images`, () => tf.tensor4d(frame.images, [B * N, H, W, 3])) };
  }

  /**
   * The BEV embedding [B, Q, C] of one keyframe, given the aligned previous BEV (null: the queries stand in). Under a
   * kernel trace (an ONNX export) the frame's data are reported as named inputs (core's `traceInput`) before any layer
   * runs: `<prefix>bevformer.hits_index|hits_ref|hits_count` (where each camera sees each query, computed on the host
   * from the camera geometry; padded to every query, so of fixed shape) and `<prefix>images`; `prefix` is '' for the
   * keyframe and 'prev.' for the previous one.
   */
  private encode(frame: CameraFrameLike, bda: Float32Array, B: number, prev: tf.Tensor3D | null, prefix = ''): tf.Tensor3D {
    const N = this.config.numCameras;
    const C = this.config.encoder.embedDims;
    const [X, Y] = this.layout.cells;
    const levels = this.layout.levelShapes;
    return tf.tidy(() => {
      const { hits, images } = this.frameInputs(frame, bda, B, prefix);
      const maps = this.img_neck.forward(this.img_backbone.forward(images));
      const cams = tf.reshape(tf.add(tf.zeros([B, 1, 1]), tf.expandDims(this.cams_embeds, 0)), [B * N, 1, C]);
      const feats = tf.concat(maps.map((m, i) => {
        const [, h, w] = m.shape;
        return tf.add(tf.add(tf.reshape(m, [B * N, h * w, C]), cams), tf.reshape(tf.slice(this.level_embeds, [i, 0], [1, C]), [1, 1, C]));
      }), 1) as tf.Tensor3D;
      const pos = this.positional_encoding.forward();
      let q = tf.add(tf.zeros([B, 1, 1]), tf.expandDims(this.bev_embedding, 0)) as tf.Tensor3D;
      for (const layer of this.layers) q = layer.forward(q, pos, prev, this.ref2d, [Y, X], feats, levels, hits);
      return q;
    });
  }

  /** features `pre_head` (the BEV embedding `bev_embed`, [B, Y, X, C], after the temporal fusion) and `heatmap`; outputs `task{i}.{heatmap,reg,height,dim,rot,vel}`. */
  forward(batch: LSSDetectorBatch, opts: { training: boolean }): ForwardOutput {
    this.train(opts.training);
    const B = this.batchSize(batch);
    const [X, Y] = this.layout.cells;
    const C = this.config.encoder.embedDims;
    const temporal = this.config.temporal.frames > 1;
    // Under a kernel trace (an ONNX export): every input reported before any layer runs (an export's captureFeeds stops there).
    if (activeKernelTrace())
      tf.tidy(() => {
        this.frameInputs(batch, batch.bda, B, '');
        if (!temporal) return;
        this.frameInputs(batch.prev!, batch.bda, B, 'prev.');
        alignTapInputs(alignTaps(batch.prev!.egoMotion, { range: this.config.bev.range, cells: [X, Y] }, batch.bda));
      });
    const prev = temporal ? frozen(() => this.encode(batch.prev!, batch.bda, B, null, 'prev.')) : null;
    const aligned = prev
      ? tf.tidy(() => tf.reshape(alignPrevBev(tf.reshape(prev, [B, Y, X, C]), batch.prev!.egoMotion, { range: this.config.bev.range, cells: [X, Y] }, batch.bda), [B, X * Y, C]) as tf.Tensor3D)
      : null;
    prev?.dispose();
    const out = tf.tidy(() => {
      const bev = tf.reshape(this.encode(batch, batch.bda, B, aligned), [B, Y, X, C]) as tf.Tensor4D;
      const { outputs, heatmap } = boxOutputsRecord(this.head.forwardBoxes(bev));
      return { features: { pre_head: bev, heatmap }, outputs } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
    aligned?.dispose();
    return out;
  }

  /** CenterHead loss on the batch's GT boxes (parts `det.task{i}.heatmap|bbox`). */
  loss(out: ForwardOutput, batch: LSSDetectorBatch): LossOutput {
    const B = this.batchSize(batch);
    if (batch.boxes.length !== B) this.fail('boxes', `one entry per sample (${B})`, `${batch.boxes.length}`);
    return centerHeadDetLoss(this.head, out.outputs, batch.boxes, `${this.modelName} forward outputs`);
  }

  /** Decoded boxes per sample in the keyframe ego frame (the batch's bda undone). */
  predict(out: ForwardOutput, batch: LSSDetectorBatch): Promise<DetBox[][]> {
    return centerHeadPredict(this.head, out.outputs, batch.bda, `${this.modelName} forward outputs`);
  }

  override dispose(): void {
    this.ref2d.dispose();
    super.dispose();
  }
}
