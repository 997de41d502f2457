import * as tf from '@tensorflow/tfjs-core';
import { output, read } from './wasm/portable.js';
import type { TI } from './wasm/util.js';

/**
 * Fused training kernels that tfjs lacks, under names of our own. Models and the optimiser use them where the active
 * backend has them (`tf.getKernel(name, tf.getBackend())`) and their tfjs-op composites elsewhere, so they are an
 * optimisation only: same results to float rounding. The engine registers these JS versions for wasm and cpu, and
 * the native ones (libtorch, src/native.ts) over them for wasm when the addon loads.
 *
 * - `BevzooBatchNormTraining`: inputs `{ x, scale, offset }` (channels last, any rank; scale/offset [C]), attr
 *   `epsilon`; outputs `[y, mean, invstd]` over every axis but the last (PyTorch's `native_batch_norm` in training:
 *   biased variance, invstd = 1/√(var + eps)). Its gradient (registered here) flows from `y` only.
 * - `BevzooBatchNormTrainingGrad`: inputs `{ dy, x, scale, mean, invstd }` → `[dx, dscale, doffset]`.
 * - `BevzooReluGrad`: inputs `{ dy, x }` → dy where x > 0, else 0 (the gradient of Relu in one pass; tfjs-core's is
 *   step, cast and multiply). The Relu gradient registered here uses it where the backend has it.
 * - `BevzooAdamW`: inputs `{ param, m, v, grad }`, attrs `{ beta1, beta2, eps, decay, stepSize, bc2Sqrt }` →
 *   `[param, m, v]` after one update of @bevzoo/core's AdamW: m = b1·m + (1−b1)·g, v = b2·v + (1−b2)·g²,
 *   p = decay·p − stepSize·m / (√v / bc2Sqrt + eps).
 * - `BevzooBevPool`: LSS's BEV pooling (@bevzoo/nn's `bevPool`). Inputs `{ depth, context, pointIndex, pixelIndex,
 *   segmentIds }`: depth any shape (numPoints values), context with C channels last (numPixels rows), and the kept
 *   points' int32 indices [K]; attr `numSegments` → [numSegments, C] with out[s, c] = Σ_{k: segmentIds[k] = s}
 *   depth[pointIndex[k]] · context[pixelIndex[k], c], summed in k order, each product in float64 and each sum rounded
 *   to float32 (the host loop @bevzoo/nn had, so that every path gives the same bits). Its gradient (registered here)
 *   runs `BevzooBevPoolGrad`: inputs `{ dy, depth, context, pointIndex, pixelIndex, segmentIds }` → `[ddepth, dcontext]`
 *   in the inputs' shapes.
 * - `BevzooMSDeformAttn`: multi-scale deformable attention (@bevzoo/nn's `msDeformAttn`, the reference CUDA op's
 *   semantics). Inputs `{ value, samplingLocations, attentionWeights }`: value [B, ΣH·W, heads, D] (the levels' maps
 *   flattened row-major and concatenated), locations [B, Q, heads, levels, points, 2] (x, y in [0, 1]), weights
 *   [B, Q, heads, levels, points]; attr `levels` (the levels' H, W pairs, flat) → [B, Q, heads·D]. Each sample is read
 *   bilinearly at pixel (x·W − 0.5, y·H − 0.5) with zero padding; the geometry and each product in float64, each sum
 *   into an output value rounded to float32, in level and point order (the host loop @bevzoo/nn had). Its gradient
 *   (registered here) runs `BevzooMSDeformAttnGrad`: inputs `{ dy, value, samplingLocations, attentionWeights }` →
 *   `[dvalue, dlocations, dweights]`, the value gradient summed in query order per value.
 */
export const BATCH_NORM_TRAINING = 'BevzooBatchNormTraining';
export const BATCH_NORM_TRAINING_GRAD = 'BevzooBatchNormTrainingGrad';
export const ADAMW = 'BevzooAdamW';
export const RELU_GRAD = 'BevzooReluGrad';
export const BEV_POOL = 'BevzooBevPool';
export const BEV_POOL_GRAD = 'BevzooBevPoolGrad';
export const MS_DEFORM_ATTN = 'BevzooMSDeformAttn';
export const MS_DEFORM_ATTN_GRAD = 'BevzooMSDeformAttnGrad';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

export interface AdamWAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  decay: number;
  stepSize: number;
  bc2Sqrt: number;
}

function channels(x: TI): number {
  return x.shape[x.shape.length - 1] ?? 1;
}

/** Per-channel batch mean and invstd (float64 sums, as PyTorch's CPU kernel accumulates in double). */
function batchStats(x: Float32Array | tf.TypedArray, c: number, eps: number): { mean: Float64Array; invstd: Float64Array } {
  const rows = x.length / c;
  const mean = new Float64Array(c), m2 = new Float64Array(c);
  for (let r = 0, o = 0; r < rows; r++, o += c) for (let k = 0; k < c; k++) mean[k] += x[o + k];
  for (let k = 0; k < c; k++) mean[k] /= rows;
  for (let r = 0, o = 0; r < rows; r++, o += c) for (let k = 0; k < c; k++) {
    const d = x[o + k] - mean[k];
    m2[k] += d * d;
  }
  const invstd = new Float64Array(c);
  for (let k = 0; k < c; k++) invstd[k] = 1 / Math.sqrt(m2[k] / rows + eps);
  return { mean, invstd };
}

export function batchNormTrainingKernel(args: KernelArgs): TI[] {
  const { x, scale, offset } = args.inputs as { x: TI; scale: TI; offset: TI };
  const eps = Number((args.attrs as { epsilon: number }).epsilon);
  const c = channels(x);
  const stats = batchStats(read(args.backend, x), c, eps);
  const y = output(args.backend, x.shape, (out) => {
    const xv = read(args.backend, x), g = read(args.backend, scale), b = read(args.backend, offset);
    const a = new Float32Array(c), s = new Float32Array(c);
    for (let k = 0; k < c; k++) {
      a[k] = g[k] * stats.invstd[k];
      s[k] = b[k] - stats.mean[k] * a[k];
    }
    for (let o = 0; o < out.length; o += c) for (let k = 0; k < c; k++) out[o + k] = xv[o + k] * a[k] + s[k];
  });
  const mean = output(args.backend, [c], (out) => out.set(stats.mean));
  const invstd = output(args.backend, [c], (out) => out.set(stats.invstd));
  return [y, mean, invstd];
}

export function batchNormTrainingGradKernel(args: KernelArgs): TI[] {
  const { dy, x, scale, mean, invstd } = args.inputs as { dy: TI; x: TI; scale: TI; mean: TI; invstd: TI };
  const c = channels(x);
  const rows = x.shape.reduce((a, d) => a * d, 1) / c;
  const sumDy = new Float64Array(c), dotP = new Float64Array(c);
  {
    const g = read(args.backend, dy), xv = read(args.backend, x), mu = read(args.backend, mean);
    for (let o = 0; o < g.length; o += c) for (let k = 0; k < c; k++) {
      sumDy[k] += g[o + k];
      dotP[k] += g[o + k] * (xv[o + k] - mu[k]);
    }
  }
  // PyTorch's batch_norm_backward (training): dx = (dy − mean(dy) − (x − μ)·invstd²·mean(dy·(x − μ)))·invstd·γ.
  const dx = output(args.backend, x.shape, (out) => {
    const g = read(args.backend, dy), xv = read(args.backend, x), mu = read(args.backend, mean), is = read(args.backend, invstd);
    const w = read(args.backend, scale);
    const proj = new Float32Array(c), gm = new Float32Array(c), ws = new Float32Array(c);
    for (let k = 0; k < c; k++) {
      proj[k] = (dotP[k] / rows) * is[k] * is[k];
      gm[k] = sumDy[k] / rows;
      ws[k] = is[k] * w[k];
    }
    for (let o = 0; o < out.length; o += c) for (let k = 0; k < c; k++) out[o + k] = (g[o + k] - (xv[o + k] - mu[k]) * proj[k] - gm[k]) * ws[k];
  });
  const dscale = output(args.backend, [c], (out) => {
    const is = read(args.backend, invstd);
    for (let k = 0; k < c; k++) out[k] = dotP[k] * is[k];
  });
  const doffset = output(args.backend, [c], (out) => out.set(sumDy));
  return [dx, dscale, doffset];
}

export function adamWKernel(args: KernelArgs): TI[] {
  const { param, m, v, grad } = args.inputs as { param: TI; m: TI; v: TI; grad: TI };
  const a = args.attrs as unknown as AdamWAttrs;
  const f = Math.fround;
  const [b1, b2, c1, c2, eps, decay, stepSize, bc2Sqrt] = [a.beta1, a.beta2, 1 - a.beta1, 1 - a.beta2, a.eps, a.decay, a.stepSize, a.bc2Sqrt].map(f);
  const mOut = output(args.backend, m.shape, (out) => {
    const mv = read(args.backend, m), g = read(args.backend, grad);
    for (let i = 0; i < out.length; i++) out[i] = f(f(mv[i] * b1) + f(g[i] * c1));
  });
  const vOut = output(args.backend, v.shape, (out) => {
    const vv = read(args.backend, v), g = read(args.backend, grad);
    for (let i = 0; i < out.length; i++) out[i] = f(f(vv[i] * b2) + f(f(g[i] * g[i]) * c2));
  });
  const pOut = output(args.backend, param.shape, (out) => {
    const p = read(args.backend, param), mv = read(args.backend, mOut), vv = read(args.backend, vOut);
    for (let i = 0; i < out.length; i++) {
      const denom = f(f(Math.sqrt(vv[i]) / bc2Sqrt) + eps);
      const pi = decay === 1 ? p[i] : f(p[i] * decay);
      out[i] = f(pi - f(f(mv[i] / denom) * stepSize));
    }
  });
  return [pOut, mOut, vOut];
}

export function reluGradKernel(args: KernelArgs): TI {
  const { dy, x } = args.inputs as { dy: TI; x: TI };
  return output(args.backend, x.shape, (out) => {
    const g = read(args.backend, dy), xv = read(args.backend, x);
    for (let i = 0; i < out.length; i++) out[i] = xv[i]! > 0 ? g[i]! : 0;
  });
}

/** Relu's gradient: the fused kernel where the active backend has it, else tfjs-core's step · dy. */
export const reluGrad: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved as [tf.Tensor];
    const d = dy as tf.Tensor;
    if (x.dtype === 'float32' && tf.getKernel(RELU_GRAD, tf.getBackend()) != null) return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: d, x }, {}) as tf.Tensor };
    return { x: () => tf.mul(d, tf.cast(tf.step(x), 'float32')) };
  },
};

interface BevPoolInputs {
  depth: TI;
  context: TI;
  pointIndex: TI;
  pixelIndex: TI;
  segmentIds: TI;
}

export function bevPoolKernel(args: KernelArgs): TI {
  const { depth, context, pointIndex, pixelIndex, segmentIds } = args.inputs as unknown as BevPoolInputs;
  const numSegments = Number((args.attrs as { numSegments: number }).numSegments);
  const C = channels(context);
  return output(args.backend, [numSegments, C], (out) => {
    const dv = read(args.backend, depth), cv = read(args.backend, context);
    const pi = read(args.backend, pointIndex), px = read(args.backend, pixelIndex), sg = read(args.backend, segmentIds);
    for (let k = 0; k < pi.length; k++) {
      const w = dv[pi[k]!]!;
      if (w === 0) continue;
      const o = sg[k]! * C, p = px[k]! * C;
      for (let c = 0; c < C; c++) out[o + c] += w * cv[p + c]!;
    }
  });
}

export function bevPoolGradKernel(args: KernelArgs): TI[] {
  const { dy, depth, context, pointIndex, pixelIndex, segmentIds } = args.inputs as unknown as BevPoolInputs & { dy: TI };
  const C = channels(context);
  const gDep = new Float32Array(depth.shape.reduce((a, d) => a * d, 1));
  const dcontext = output(args.backend, context.shape, (gCtx) => {
    const g = read(args.backend, dy), dv = read(args.backend, depth), cv = read(args.backend, context);
    const pi = read(args.backend, pointIndex), px = read(args.backend, pixelIndex), sg = read(args.backend, segmentIds);
    for (let k = 0; k < pi.length; k++) {
      const w = dv[pi[k]!]!;
      const o = sg[k]! * C, p = px[k]! * C;
      let acc = 0;
      for (let c = 0; c < C; c++) {
        const gv = g[o + c]!;
        gCtx[p + c] += w * gv;
        acc += gv * cv[p + c]!;
      }
      gDep[pi[k]!] += acc;
    }
  });
  const ddepth = output(args.backend, depth.shape, (out) => out.set(gDep));
  return [ddepth, dcontext];
}

interface MSDeformAttnInputs {
  value: TI;
  samplingLocations: TI;
  attentionWeights: TI;
}

/** The sizes of an MSDeformAttn call and each level's [H, W, first key]. */
export function msDeformAttnDims(value: TI, loc: TI, levels: readonly number[]) {
  const [B, K, heads, D] = value.shape as [number, number, number, number];
  const [, Q, , L, P] = loc.shape as [number, number, number, number, number];
  const level: [number, number, number][] = [];
  for (let l = 0, start = 0; l < L; l++) {
    const H = levels[2 * l]!, W = levels[2 * l + 1]!;
    level.push([H, W, start]);
    start += H * W;
  }
  return { B, K, heads, D, Q, L, P, level };
}

/**
 * One sample's bilinear corners into `c`: the value offsets of its four corners in `c.r` (−1 outside the map) and its
 * fractional position (lh, lw) in the cell; false where it lies wholly outside. `base` is the offset of the level's
 * first key for the sample's batch and head. (Scratch arrays, not objects: this runs once per sample.)
 */
const cornerScratch = { r: new Int32Array(4), f: new Float64Array(2) };
function corners(x: number, y: number, H: number, W: number, base: number, rowStride: number, c = cornerScratch): boolean {
  const him = y * H - 0.5, wim = x * W - 0.5;
  if (!(him > -1 && wim > -1 && him < H && wim < W)) return false;
  const h0 = Math.floor(him), w0 = Math.floor(wim);
  const top = h0 >= 0, bottom = h0 + 1 < H, left = w0 >= 0, right = w0 + 1 < W;
  const r00 = base + (h0 * W + w0) * rowStride;
  c.r[0] = top && left ? r00 : -1;
  c.r[1] = top && right ? r00 + rowStride : -1;
  c.r[2] = bottom && left ? r00 + W * rowStride : -1;
  c.r[3] = bottom && right ? r00 + (W + 1) * rowStride : -1;
  c.f[0] = him - h0;
  c.f[1] = wim - w0;
  return true;
}

export function msDeformAttnKernel(args: KernelArgs): TI {
  const { value, samplingLocations, attentionWeights } = args.inputs as unknown as MSDeformAttnInputs;
  const { B, K, heads, D, Q, P, level } = msDeformAttnDims(value, samplingLocations, (args.attrs as { levels: number[] }).levels);
  const rowStride = heads * D;
  const { r, f } = cornerScratch;
  const w = new Float64Array(4);
  return output(args.backend, [B, Q, heads * D], (out) => {
    const vv = read(args.backend, value), lv = read(args.backend, samplingLocations), av = read(args.backend, attentionWeights);
    for (let row = 0, s = 0; row < B * Q * heads; row++) {
      const b = Math.floor(row / (Q * heads)), h = row % heads, o = row * D;
      for (const [H, W, start] of level) {
        const base = (b * K + start) * rowStride + h * D;
        for (let p = 0; p < P; p++, s++) {
          if (!corners(lv[2 * s]!, lv[2 * s + 1]!, H, W, base, rowStride)) continue;
          const a = av[s]!, lh = f[0]!, lw = f[1]!;
          w[0] = a * (1 - lh) * (1 - lw);
          w[1] = a * (1 - lh) * lw;
          w[2] = a * lh * (1 - lw);
          w[3] = a * lh * lw;
          const r0 = r[0]!, r1 = r[1]!, r2 = r[2]!, r3 = r[3]!;
          if (r0 >= 0 && r3 >= 0) {
            const w0 = w[0]!, w1 = w[1]!, w2 = w[2]!, w3 = w[3]!;
            for (let d = 0; d < D; d++) out[o + d] += w0 * vv[r0 + d]! + w1 * vv[r1 + d]! + w2 * vv[r2 + d]! + w3 * vv[r3 + d]!;
            continue;
          }
          for (let k = 0; k < 4; k++) {
            const rk = r[k]!, wk = w[k]!;
            if (rk >= 0) for (let d = 0; d < D; d++) out[o + d] += wk * vv[rk + d]!;
          }
        }
      }
    }
  });
}

export function msDeformAttnGradKernel(args: KernelArgs): TI[] {
  const { dy, value, samplingLocations, attentionWeights } = args.inputs as unknown as MSDeformAttnInputs & { dy: TI };
  const { B, K, heads, D, Q, L, P, level } = msDeformAttnDims(value, samplingLocations, (args.attrs as { levels: number[] }).levels);
  const rowStride = heads * D;
  const S = B * Q * heads * L * P;
  const gl = new Float32Array(2 * S), ga = new Float32Array(S);
  const { r, f } = cornerScratch;
  const bw = new Float64Array(4), dc = new Float64Array(4);
  const dvalue = output(args.backend, value.shape, (gv) => {
    const g = read(args.backend, dy), vv = read(args.backend, value), lv = read(args.backend, samplingLocations), av = read(args.backend, attentionWeights);
    for (let row = 0, s = 0; row < B * Q * heads; row++) {
      const b = Math.floor(row / (Q * heads)), h = row % heads, o = row * D;
      for (const [H, W, start] of level) {
        const base = (b * K + start) * rowStride + h * D;
        for (let p = 0; p < P; p++, s++) {
          if (!corners(lv[2 * s]!, lv[2 * s + 1]!, H, W, base, rowStride) || (r[0]! < 0 && r[1]! < 0 && r[2]! < 0 && r[3]! < 0)) continue;
          const a = av[s]!, lh = f[0]!, lw = f[1]!;
          bw[0] = (1 - lh) * (1 - lw);
          bw[1] = (1 - lh) * lw;
          bw[2] = lh * (1 - lw);
          bw[3] = lh * lw;
          // Per corner Σ_d dy·v (the sample's gradient through that corner's value; 0 for a corner outside).
          for (let k = 0; k < 4; k++) {
            const rk = r[k]!;
            let acc = 0;
            if (rk >= 0) {
              const wk = a * bw[k]!;
              for (let d = 0; d < D; d++) {
                const gd = g[o + d]!;
                acc += gd * vv[rk + d]!;
                gv[rk + d] += wk * gd;
              }
            }
            dc[k] = acc;
          }
          ga[s] = bw[0]! * dc[0]! + bw[1]! * dc[1]! + bw[2]! * dc[2]! + bw[3]! * dc[3]!;
          // The bilinear weights' derivatives in w_im and h_im; the locations are scaled by W and H.
          gl[2 * s] = a * W * ((1 - lh) * (dc[1]! - dc[0]!) + lh * (dc[3]! - dc[2]!));
          gl[2 * s + 1] = a * H * ((1 - lw) * (dc[2]! - dc[0]!) + lw * (dc[3]! - dc[1]!));
        }
      }
    }
  });
  return [dvalue, output(args.backend, samplingLocations.shape, (out) => out.set(gl)), output(args.backend, attentionWeights.shape, (out) => out.set(ga))];
}

let gradientRegistered = false;

/** The gradient of BevzooBatchNormTraining (from its `y` output; mean and invstd are statistics, not trained through). */
export function registerFusedGradients(): void {
  if (gradientRegistered || tf.getGradient(BATCH_NORM_TRAINING) != null) return;
  gradientRegistered = true;
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAINING,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x, scale, mean, invstd] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const dy = (Array.isArray(dys) ? dys[0] : dys) ?? tf.zerosLike(x);
      // One kernel gives all three, computed here, in the scope of the whole backward pass (each closure runs in a
      // tidy of its own): what no closure returns (the gradient of an input off the path) is freed with that scope.
      const [dx, dscale, doffset] = tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, { dy, x, scale, mean, invstd }, {}) as tf.Tensor[];
      return { x: () => dx!, scale: () => dscale!, offset: () => doffset! };
    },
  });
  tf.registerGradient({
    kernelName: BEV_POOL,
    inputsToSave: ['depth', 'context', 'pointIndex', 'pixelIndex', 'segmentIds'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [depth, context, pointIndex, pixelIndex, segmentIds] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const [ddepth, dcontext] = tf.engine().runKernel(BEV_POOL_GRAD, { dy: Array.isArray(dy) ? dy[0]! : dy, depth, context, pointIndex, pixelIndex, segmentIds }, {}) as tf.Tensor[];
      const none = (t: tf.Tensor) => () => tf.zerosLike(t);
      return { depth: () => ddepth!, context: () => dcontext!, pointIndex: none(pointIndex), pixelIndex: none(pixelIndex), segmentIds: none(segmentIds) };
    },
  });
  tf.registerGradient({
    kernelName: MS_DEFORM_ATTN,
    inputsToSave: ['value', 'samplingLocations', 'attentionWeights'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const [value, samplingLocations, attentionWeights] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const [dv, dl, da] = tf.engine().runKernel(MS_DEFORM_ATTN_GRAD, { dy: Array.isArray(dy) ? dy[0]! : dy, value, samplingLocations, attentionWeights }, { levels: attrs.levels } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      return { value: () => dv!, samplingLocations: () => dl!, attentionWeights: () => da! };
    },
  });
}

/** The portable versions of the fused kernels. */
export const FUSED_KERNELS: [string, (a: KernelArgs) => TI[]][] = [
  [BATCH_NORM_TRAINING, batchNormTrainingKernel],
  [BATCH_NORM_TRAINING_GRAD, batchNormTrainingGradKernel],
  [ADAMW, adamWKernel],
  [RELU_GRAD, reluGradKernel as unknown as (a: KernelArgs) => TI[]],
  [BEV_POOL, bevPoolKernel as unknown as (a: KernelArgs) => TI[]],
  [BEV_POOL_GRAD, bevPoolGradKernel],
  [MS_DEFORM_ATTN, msDeformAttnKernel as unknown as (a: KernelArgs) => TI[]],
  [MS_DEFORM_ATTN_GRAD, msDeformAttnGradKernel],
];

/** Registers the portable versions for one backend where nothing is registered under their names yet. Idempotent. */
export function registerFusedKernels(backendName: string): void {
  registerFusedGradients();
  for (const [name, fn] of FUSED_KERNELS) {
    if (tf.getKernel(name, backendName) == null) tf.registerKernel({ kernelName: name, backendName, kernelFunc: fn as unknown as tf.KernelFunc });
  }
}
