/**
 * Multi-scale deformable attention (Deformable DETR; the op behind BEVFormer's spatial cross-attention and temporal
 * self-attention), with the semantics of the reference CUDA op (`ms_deform_attn_im2col_bilinear` in
 * fundamentalvision/Deformable-DETR and mmcv's `MultiScaleDeformableAttnFunction`):
 *
 *   out[b, q, h, :] = Σ_l Σ_p A[b, q, h, l, p] · bilinear(V_l[b, :, :, h, :], loc[b, q, h, l, p])
 *
 * with each level's values V_l an H_l × W_l map, locations normalised to [0, 1] (x across the width, y down the
 * height), sampled at pixel coordinates (x·W − 0.5, y·H − 0.5) — grid_sample with align_corners = false — and zero
 * padding: a corner outside the map contributes nothing. Gradients flow to the values, the sampling locations and
 * the attention weights.
 *
 * Two implementations with the same results (to float rounding):
 * - 'host' (default): @bevzoo/engine's `BevzooMSDeformAttn` kernel and its gradient, where the active backend has it
 *   (the engine registers it for wasm, natively on libtorch's threads where its addon loads, and for cpu): one fused
 *   loop over queries, heads, levels and points, no [queries, points, channels] intermediate. On a backend without
 *   it, 'gather'.
 * - 'gather': tfjs ops (a gather of the four corners, weighted sums; gradients by tfjs autodiff), with the corners'
 *   indices computed from the locations' values — the plain version the kernel is tested against, and the one
 *   for backends whose memory is elsewhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace } from '@bevzoo/core';
import { ConfigurationError, ShapeError } from '../errors.js';

/** The [H, W] of each level, in the order the levels are concatenated along the value's key axis. */
export type LevelShapes = readonly (readonly [number, number])[];

export interface MSDeformAttnOptions {
  impl?: 'host' | 'gather';
}

interface Dims {
  B: number;
  nH: number;
  D: number;
  nQ: number;
  nL: number;
  nP: number;
  starts: number[];
}

/** Checks the shapes; value [B, ΣHW, heads, dims], locations [B, Q, heads, levels, points, 2], weights [B, Q, heads, levels, points]. */
function dimsOf(value: tf.Tensor, levels: LevelShapes, loc: tf.Tensor, attn: tf.Tensor): Dims {
  if (value.rank !== 4) throw new ShapeError('msDeformAttn value', '[batch, keys, heads, dims]', `[${value.shape}]`);
  const [B, K, nH, D] = value.shape as [number, number, number, number];
  if (!levels.length) throw new ConfigurationError('msDeformAttn: at least one level is needed');
  const starts: number[] = [];
  let total = 0;
  for (const [i, s] of levels.entries()) {
    if (!(Number.isInteger(s[0]) && Number.isInteger(s[1]) && s[0] > 0 && s[1] > 0)) throw new ConfigurationError(`msDeformAttn: level ${i} has shape [${s}]; expected positive integers [H, W]`);
    starts.push(total);
    total += s[0] * s[1];
  }
  if (total !== K) throw new ShapeError('msDeformAttn value', `${total} keys (the levels ${levels.map((s) => `${s[0]}×${s[1]}`).join(', ')})`, `${K}`);
  if (loc.rank !== 6 || loc.shape[0] !== B || loc.shape[2] !== nH || loc.shape[3] !== levels.length || loc.shape[5] !== 2)
    throw new ShapeError('msDeformAttn sampling locations', `[batch ${B}, queries, heads ${nH}, levels ${levels.length}, points, 2]`, `[${loc.shape}]`);
  const [, nQ, , nL, nP] = loc.shape as number[];
  if (attn.rank !== 5 || attn.shape.some((d, i) => d !== loc.shape[i]))
    throw new ShapeError('msDeformAttn attention weights', `[${loc.shape.slice(0, 5)}] (the locations' shape without the last axis)`, `[${attn.shape}]`);
  return { B, nH, D, nQ: nQ!, nL: nL!, nP: nP!, starts };
}

/**
 * Multi-scale deformable attention: `value` [B, ΣH·W, heads, dims] (the levels' maps flattened row-major and
 * concatenated), `levels` their [H, W], `samplingLocations` [B, Q, heads, levels, points, 2] (x, y in [0, 1]),
 * `attentionWeights` [B, Q, heads, levels, points] → [B, Q, heads·dims].
 */
export function msDeformAttn(value: tf.Tensor, levels: LevelShapes, samplingLocations: tf.Tensor, attentionWeights: tf.Tensor, opts: MSDeformAttnOptions = {}): tf.Tensor3D {
  const d = dimsOf(value, levels, samplingLocations, attentionWeights);
  // A kernel-level recording (an ONNX export) sees only kernels: the form whose corners are computed by kernels too.
  if (activeKernelTrace()) return msDeformAttnKernels(value, levels, samplingLocations, attentionWeights, d);
  if (opts.impl !== 'gather' && tf.getKernel(MS_DEFORM_ATTN_KERNEL, tf.getBackend()) != null) return msDeformAttnKernel(value, levels, samplingLocations, attentionWeights);
  return msDeformAttnGather(value, levels, samplingLocations, attentionWeights, d);
}

/** @bevzoo/engine's fused kernel (fused.ts there), run by name: nn does not depend on the engine. */
const MS_DEFORM_ATTN_KERNEL = 'BevzooMSDeformAttn';

function msDeformAttnKernel(value: tf.Tensor, levels: LevelShapes, loc: tf.Tensor, attn: tf.Tensor): tf.Tensor3D {
  return tf.engine().runKernel(MS_DEFORM_ATTN_KERNEL, { value, samplingLocations: loc, attentionWeights: attn }, { levels: levels.flat() } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}

/**
 * The same sums with every step a tfjs kernel, the corners included (Floor, comparisons, a Gather with indices computed
 * from the locations' values): the form a kernel trace records, so that an exported graph (`@bevzoo/onnx`) samples
 * wherever the model's offsets point — grid_sample's bilinear, zero-padded sampling in standard ops. Not differentiable
 * in the locations' corners (their indices are integers), which an export does not need.
 */
function msDeformAttnKernels(value: tf.Tensor, levels: LevelShapes, loc: tf.Tensor, attn: tf.Tensor, dims: Dims): tf.Tensor3D {
  const { B, nH, D, nQ, nP, starts } = dims;
  return tf.tidy(() => {
    let acc: tf.Tensor | null = null;
    // (b·heads + h) of every sample, [B, 1, heads, 1].
    const bh = tf.reshape(tf.range(0, B * nH, 1, 'float32'), [B, 1, nH, 1]);
    levels.forEach(([H, W], l) => {
      const HW = H * W;
      const table = tf.reshape(tf.transpose(tf.slice(value, [0, starts[l]!, 0, 0], [B, HW, nH, D]), [0, 2, 1, 3]), [B * nH * HW, D]);
      const ll = tf.reshape(tf.slice(loc, [0, 0, 0, l, 0, 0], [B, nQ, nH, 1, nP, 2]), [B, nQ, nH, nP, 2]);
      const al = tf.reshape(tf.slice(attn, [0, 0, 0, l, 0], [B, nQ, nH, 1, nP]), [B, nQ, nH, nP]);
      const [lx, ly] = tf.split(ll, 2, -1).map((t) => tf.reshape(t, [B, nQ, nH, nP]));
      const px = tf.sub(tf.mul(lx!, W), 0.5), py = tf.sub(tf.mul(ly!, H), 0.5);
      const x0 = tf.floor(px), y0 = tf.floor(py);
      const fx = tf.sub(px, x0), fy = tf.sub(py, y0);
      for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
        const xi = dx ? tf.add(x0, 1) : x0, yi = dy ? tf.add(y0, 1) : y0;
        const inside = tf.cast(tf.logicalAnd(tf.logicalAnd(tf.greaterEqual(xi, 0), tf.less(xi, W)), tf.logicalAnd(tf.greaterEqual(yi, 0), tf.less(yi, H))), 'float32');
        const key = tf.add(tf.mul(tf.clipByValue(yi, 0, H - 1), W), tf.clipByValue(xi, 0, W - 1));
        const rows = tf.cast(tf.add(tf.mul(bh, HW), key), 'int32'); // [B, Q, heads, points]
        const wx = dx ? fx : tf.sub(1, fx), wy = dy ? fy : tf.sub(1, fy);
        const weight = tf.mul(tf.mul(tf.mul(wx, wy), inside), al);
        const sampled = tf.reshape(tf.gather(table, tf.reshape(rows, [B * nQ * nH * nP])), [B, nQ, nH, nP, D]);
        const term = tf.sum(tf.mul(sampled, tf.expandDims(weight, -1)), 3); // [B, Q, heads, dims]
        acc = acc ? tf.add(acc, term) : term;
      }
    });
    return tf.reshape(acc!, [B, nQ, nH * D]) as tf.Tensor3D;
  });
}

function msDeformAttnGather(value: tf.Tensor, levels: LevelShapes, loc: tf.Tensor, attn: tf.Tensor, dims: Dims): tf.Tensor3D {
  const { B, nH, D, nQ, nL, nP, starts } = dims;
  // The corners' cells and rows are piecewise constant in the locations (no gradient): computed from their values,
  // as tensors off the tape (tfjs has no stop-gradient, and a gather's int32 index gradient may not flow to floats).
  const lv = loc.dataSync();
  const n = B * nQ * nH * nP;
  return tf.tidy(() => {
    let acc: tf.Tensor | null = null;
    levels.forEach(([H, W], l) => {
      const HW = H * W;
      // The level's values as a table of rows: [(b·heads + h)·HW + key, dims].
      const table = tf.reshape(tf.transpose(tf.slice(value, [0, starts[l]!, 0, 0], [B, HW, nH, D]), [0, 2, 1, 3]), [B * nH * HW, D]);
      const x0 = new Float32Array(n), y0 = new Float32Array(n);
      const rows = [0, 1, 2, 3].map(() => new Int32Array(n));
      const inside = [0, 1, 2, 3].map(() => new Float32Array(n));
      for (let i = 0; i < n; i++) {
        const p = i % nP, h = Math.floor(i / nP) % nH, b = Math.floor(i / (nP * nQ * nH));
        const li = ((Math.floor(i / nP) * nL + l) * nP + p) * 2;
        x0[i] = Math.floor(lv[li]! * W - 0.5);
        y0[i] = Math.floor(lv[li + 1]! * H - 0.5);
        [[0, 0], [0, 1], [1, 0], [1, 1]].forEach(([dy, dx], c) => {
          const xi = x0[i]! + dx!, yi = y0[i]! + dy!;
          const ok = xi >= 0 && xi < W && yi >= 0 && yi < H;
          inside[c]![i] = ok ? 1 : 0;
          rows[c]![i] = (b * nH + h) * HW + (ok ? yi * W + xi : 0);
        });
      }
      const shape = [B, nQ, nH, nP];
      const ll = tf.squeeze(tf.slice(loc, [0, 0, 0, l, 0, 0], [B, nQ, nH, 1, nP, 2]), [3]); // [B, Q, heads, points, 2]
      const al = tf.squeeze(tf.slice(attn, [0, 0, 0, l, 0], [B, nQ, nH, 1, nP]), [3]); // [B, Q, heads, points]
      const [lx, ly] = tf.split(ll, 2, -1).map((t) => tf.squeeze(t, [-1]));
      const fx = tf.sub(tf.sub(tf.mul(lx!, W), 0.5), tf.tensor(x0, shape)), fy = tf.sub(tf.sub(tf.mul(ly!, H), 0.5), tf.tensor(y0, shape));
      [[0, 0], [0, 1], [1, 0], [1, 1]].forEach(([dy, dx], c) => {
        const wx = dx ? fx : tf.sub(1, fx), wy = dy ? fy : tf.sub(1, fy);
        const weight = tf.mul(tf.mul(tf.mul(wx, wy), tf.tensor(inside[c]!, shape)), al); // [B, Q, heads, points]
        const sampled = tf.reshape(tf.gather(table, tf.tensor1d(rows[c]!, 'int32')), [B, nQ, nH, nP, D]);
        const term = tf.sum(tf.mul(sampled, tf.expandDims(weight, -1)), 3); // [B, Q, heads, dims]
        acc = acc ? tf.add(acc, term) : term;
      });
    });
    return tf.reshape(acc!, [B, nQ, nH * D]) as tf.Tensor3D;
  });
}
