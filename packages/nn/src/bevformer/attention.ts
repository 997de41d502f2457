/**
 * BEVFormer's two attentions over @bevzoo/nn's multi-scale deformable attention, with the reference code's module
 * and parameter names (`sampling_offsets`, `attention_weights`, `value_proj`, `output_proj`):
 * - TemporalSelfAttention: each BEV query samples the previous BEV (aligned into the current frame) and the current
 *   queries around its own cell; the two are averaged.
 * - SpatialCrossAttention: each BEV query samples, in every camera its pillar is seen by, the multi-scale image
 *   features around the projections of its pillar's reference points; averaged over those cameras.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import { Linear } from '../layers/linear.js';
import { msDeformAttn, type LevelShapes } from '../attention/ms-deform-attn.js';
import { gatherRows, gatherRowsKernels, scatterAddRows, scatterAddRowsKernels } from '../layers/rows.js';

/**
 * Deformable DETR's initial sampling offsets: head h looks in direction 2πh/heads (scaled to the unit square), point
 * p at p + 1 cells out; the offsets Linear starts with zero weights and these as its bias. Layout [heads, groups, points, 2].
 */
function offsetBias(heads: number, groups: number, points: number): Float32Array {
  const out = new Float32Array(heads * groups * points * 2);
  for (let h = 0; h < heads; h++) {
    const t = (2 * Math.PI * h) / heads;
    const [c, s] = [Math.cos(t), Math.sin(t)];
    const m = Math.max(Math.abs(c), Math.abs(s));
    for (let g = 0; g < groups; g++)
      for (let p = 0; p < points; p++) {
        const o = ((h * groups + g) * points + p) * 2;
        out[o] = (c / m) * (p + 1);
        out[o + 1] = (s / m) * (p + 1);
      }
  }
  return out;
}

/** The offsets and weights Linears of a deformable attention, initialised as the reference (zero weights; direction bias; uniform attention). */
function samplingLinears(inDims: number, heads: number, groups: number, points: number, rng?: Rng): { offsets: Linear; weights: Linear } {
  const offsets = new Linear(inDims, heads * groups * points * 2, { rng: rng?.fork('sampling_offsets') });
  const weights = new Linear(inDims, heads * groups * points, { rng: rng?.fork('attention_weights') });
  tf.tidy(() => {
    offsets.weight.assign(tf.zeros(offsets.weight.shape));
    offsets.bias!.assign(tf.tensor1d(offsetBias(heads, groups, points)));
    weights.weight.assign(tf.zeros(weights.weight.shape));
    weights.bias!.assign(tf.zeros(weights.bias!.shape));
  });
  return { offsets, weights };
}

export interface AttentionOptions {
  embedDims: number;
  heads: number;
  points: number;
  rng?: Rng;
}

/** BEVFormer's TemporalSelfAttention (num_bev_queue 2, one level): the previous BEV and the current queries as the two values. */
export class TemporalSelfAttention extends Module {
  readonly sampling_offsets: Linear;
  readonly attention_weights: Linear;
  readonly value_proj: Linear;
  readonly output_proj: Linear;

  constructor(readonly o: AttentionOptions) {
    super();
    const C = o.embedDims;
    const { offsets, weights } = samplingLinears(2 * C, o.heads, 2, o.points, o.rng);
    this.sampling_offsets = this.registerModule('sampling_offsets', offsets);
    this.attention_weights = this.registerModule('attention_weights', weights);
    this.value_proj = this.registerModule('value_proj', new Linear(C, C, { init: 'xavier_uniform', rng: o.rng?.fork('value_proj') }));
    this.output_proj = this.registerModule('output_proj', new Linear(C, C, { init: 'xavier_uniform', rng: o.rng?.fork('output_proj') }));
  }

  /**
   * `query` [B, Q, C] (its residual), `pos` [Q, C], `prev` [B, Q, C] (the aligned previous BEV, or the queries on a
   * first frame), `ref` the cells' normalised centres [Q, 2] (x, y), `shape` [Y, X] of the BEV → [B, Q, C].
   */
  forward(query: tf.Tensor3D, pos: tf.Tensor2D, prev: tf.Tensor3D, ref: tf.Tensor2D, shape: [number, number]): tf.Tensor3D {
    const [B, Q, C] = query.shape;
    const { heads, points } = this.o;
    const [Y, X] = shape;
    return tf.tidy(() => {
      const q = tf.add(query, pos);
      const both = tf.concat([prev, q], 2); // what the offsets and weights are computed from
      // value batch b·2 + 0: the previous BEV, b·2 + 1: the current queries (the reference's stack along dim 1).
      const value = tf.reshape(this.value_proj.forward(tf.reshape(tf.stack([prev, query], 1), [B * 2, Q, C])), [B * 2, Q, heads, C / heads]);
      const off = tf.reshape(this.sampling_offsets.forward(both), [B, Q, heads, 2, points, 2]);
      const w = tf.softmax(tf.reshape(this.attention_weights.forward(both), [B, Q, heads, 2, points]), -1);
      const toQueue = (t: tf.Tensor, tail: number[]) => tf.reshape(tf.transpose(t, [0, 3, 1, 2, ...tail.map((_, i) => 4 + i)]), [B * 2, Q, heads, 1, ...tail]);
      // Both terms laid out whole along each head's [points, 2] (see SpatialCrossAttention).
      const norm = tf.tensor1d(Array.from({ length: points }, () => [X, Y]).flat());
      const refRows = tf.reshape(tf.tile(ref, [1, points]), [1, Q, 1, points * 2]);
      const loc = tf.reshape(tf.add(refRows, tf.div(tf.reshape(toQueue(off, [points, 2]), [B * 2, Q, heads, points * 2]), norm)), [B * 2, Q, heads, 1, points, 2]);
      const out = msDeformAttn(value, [[Y, X]], loc, toQueue(w, [points]));
      const mean = tf.mean(tf.reshape(out, [B, 2, Q, C]), 1);
      return tf.add(this.output_proj.forward(mean), query) as tf.Tensor3D;
    });
  }
}

/**
 * Which queries each camera sees and where: for camera k = b·N + n the queries (`index`, into B·Q, padded with −1
 * up to `maxLen`) whose pillar projects into its image, their reference points in it (normalised [0, 1], one per
 * pillar height; far outside for heights behind the camera) and, per query, the number of cameras that see it.
 */
export interface CameraHits {
  maxLen: number;
  index: Int32Array;
  ref: Float32Array;
  count: Float32Array;
  /**
   * Under a kernel trace (an ONNX export): `index`, `ref` and `count` as tensors reported as the batch inputs
   * `<prefix>bevformer.hits_index`, `.hits_ref`, `.hits_count` (core's `traceInput`), with `maxLen` the number of queries
   * (a fixed shape for any camera geometry; the padding reads zeros and is dropped).
   */
  tensors?: { index: tf.Tensor1D; ref: tf.Tensor; count: tf.Tensor1D };
}

/** The deformable attention inside the spatial cross-attention (its parameters; the sampling is in SpatialCrossAttention). */
export class MSDeformableAttention3D extends Module {
  readonly sampling_offsets: Linear;
  readonly attention_weights: Linear;
  readonly value_proj: Linear;

  constructor(o: AttentionOptions & { levels: number }) {
    super();
    const C = o.embedDims;
    const { offsets, weights } = samplingLinears(C, o.heads, o.levels, o.points, o.rng);
    this.sampling_offsets = this.registerModule('sampling_offsets', offsets);
    this.attention_weights = this.registerModule('attention_weights', weights);
    this.value_proj = this.registerModule('value_proj', new Linear(C, C, { init: 'xavier_uniform', rng: o.rng?.fork('value_proj') }));
  }
}

/** BEVFormer's SpatialCrossAttention with its MSDeformableAttention3D (`deformable_attention.*`). */
export class SpatialCrossAttention extends Module {
  readonly deformable_attention: MSDeformableAttention3D;
  readonly output_proj: Linear;

  constructor(readonly o: AttentionOptions & { levels: number; pillarPoints: number }) {
    super();
    const C = o.embedDims;
    this.deformable_attention = this.registerModule('deformable_attention', new MSDeformableAttention3D(o));
    this.output_proj = this.registerModule('output_proj', new Linear(C, C, { init: 'xavier_uniform', rng: o.rng?.fork('output_proj') }));
  }

  /**
   * `query` [B, Q, C] (its residual), `pos` [Q, C], `feats` the cameras' flattened levels [B·N, ΣHW, C], `levels`
   * their [H, W], `hits` where each camera sees which query → [B, Q, C].
   */
  forward(query: tf.Tensor3D, pos: tf.Tensor2D, feats: tf.Tensor3D, levels: LevelShapes, hits: CameraHits): tf.Tensor3D {
    const [B, Q, C] = query.shape;
    const K = feats.shape[0];
    const { heads, points, pillarPoints: Z } = this.o;
    const L = levels.length;
    const { maxLen } = hits;
    const d = this.deformable_attention;
    return tf.tidy(() => {
      // The queries each camera sees, [B·N, maxLen, C] (the padding reads a zero row).
      const t = hits.tensors;
      const qRows = tf.reshape(tf.add(query, pos), [B * Q, C]) as tf.Tensor2D;
      const q = tf.reshape(t ? gatherRowsKernels(qRows, t.index) : gatherRows(qRows, hits.index), [K, maxLen, C]);
      const value = tf.reshape(d.value_proj.forward(feats), [K, feats.shape[1], heads, C / heads]);
      const off = tf.reshape(d.sampling_offsets.forward(q), [K, maxLen, heads, L, points, 2]);
      const w = tf.reshape(tf.softmax(tf.reshape(d.attention_weights.forward(q), [K, maxLen, heads, L * points]), -1), [K, maxLen, heads, L, points]);
      // Point p samples around the reference point of pillar height p mod Z (the reference's view as [points/Z, Z]).
      // The offsets' layout per head is [levels, points/Z, Z, 2]; both terms are laid out whole along it (a broadcast
      // whose innermost run is 2 values costs ~20× one over whole rows, on either kernel path).
      const refs = t ? tf.reshape(t.ref, [K * maxLen, 1, 1, Z * 2]) : tf.tensor(hits.ref, [K * maxLen, 1, 1, Z * 2]);
      const refRows = tf.reshape(tf.tile(refs, [1, L, points / Z, 1]), [K, maxLen, 1, L * points * 2]);
      const norm = tf.tensor(levels.flatMap(([h, w2]) => Array.from({ length: points }, () => [w2, h]).flat()), [1, 1, 1, L * points * 2]);
      const loc = tf.reshape(tf.add(refRows, tf.div(tf.reshape(off, [K, maxLen, heads, L * points * 2]), norm)), [K, maxLen, heads, L, points, 2]);
      const out = msDeformAttn(value, levels, loc, w); // [B·N, maxLen, C]
      // Summed into the queries' slots (the padding dropped), averaged over the cameras that see them.
      const outRows = tf.reshape(out, [K * maxLen, C]) as tf.Tensor2D;
      const slots = t ? scatterAddRowsKernels(outRows, t.index, B * Q) : scatterAddRows(outRows, hits.index, B * Q);
      const mean = tf.div(slots, tf.reshape(t ? t.count : tf.tensor1d(hits.count), [B * Q, 1]));
      return tf.add(this.output_proj.forward(tf.reshape(mean, [B, Q, C])), query) as tf.Tensor3D;
    });
  }
}
