import * as tf from '@tensorflow/tfjs-core';
import {
  alloc,
  f32,
  free,
  geometry,
  heapF32,
  offsetF32,
  runStock,
  transpose2d,
  view,
  zeros,
  type Conv2DGeometry,
  type TI,
  type WasmBackend,
} from './util.js';

/** Floats of one im2col / col2im buffer before we split the work into chunks of output rows (32 MB). */
let CHUNK_FLOATS = 1 << 23;

/** Test seam: changes the chunk size (returns the previous one) so that small convs take the chunked path. */
export function setIm2colChunk(floats: number): number {
  const prev = CHUNK_FLOATS;
  CHUNK_FLOATS = floats;
  return prev;
}

/**
 * dW of a 2-D convolution (NHWC): dW[kh,kw,ci,co] = Σ x[n, oh·s+kh·d−pad, ow·s+kw·d−pad, ci]·dy[n,oh,ow,co].
 * The patches are written transposed, colT[K = kh·kw·ci, P = n·oh·ow], so that one XNNPACK matmul
 * colT · dy[P, CO] yields dW in filter layout.
 */
export function conv2dFilterGrad(b: WasmBackend, x: TI, dy: TI, g: Conv2DGeometry): TI {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, outC: CO, kH: KH, kW: KW } = g;
  const K = KH * KW * CI;
  const rows = N * OH; // output rows (n, oh)
  const rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(CHUNK_FLOATS / (K * OW))));
  // x transposed to [CI, N, H, W] (on the heap, beside colT) so that each patch row is a run of a channel plane.
  const xT = alloc(b, [CI, N, H, W]);
  transpose2d(f32(b, x), 0, N * H * W, CI, f32(b, xT), 0);
  // Valid ow range per tap column.
  const owLo = new Int32Array(KW);
  const owHi = new Int32Array(KW);
  for (let kw = 0; kw < KW; kw++) {
    const off = kw * g.dW - g.left;
    owLo[kw] = Math.min(OW, Math.max(0, Math.ceil(-off / g.sW)));
    owHi[kw] = Math.max(owLo[kw], Math.min(OW, Math.floor((W - 1 - off) / g.sW) + 1));
  }
  if (rowsPerChunk >= rows) {
    const colT = alloc(b, [K, rows * OW]);
    fillColT(heapF32(b), offsetF32(b, colT), offsetF32(b, xT), g, 0, rows, owLo, owHi);
    free(b, xT);
    const out = runStock('BatchMatMul', b, { a: colT, b: view(dy, [rows * OW, CO]) }, { transposeA: false, transposeB: false });
    free(b, colT);
    out.shape = [KH, KW, CI, CO];
    return out;
  }
  const acc = new Float64Array(K * CO);
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const pc = (r1 - r0) * OW;
    const colT = alloc(b, [K, pc]);
    const dyc = alloc(b, [pc, CO]);
    f32(b, dyc).set(f32(b, dy).subarray(r0 * OW * CO, r1 * OW * CO));
    fillColT(heapF32(b), offsetF32(b, colT), offsetF32(b, xT), g, r0, r1, owLo, owHi);
    const part = runStock('BatchMatMul', b, { a: colT, b: dyc }, { transposeA: false, transposeB: false });
    const pv = f32(b, part);
    for (let i = 0; i < acc.length; i++) acc[i] += pv[i];
    free(b, colT, dyc, part);
  }
  free(b, xT);
  const out = alloc(b, [KH, KW, CI, CO]);
  const ov = f32(b, out);
  for (let i = 0; i < acc.length; i++) ov[i] = acc[i];
  return out;
}

/** Writes rows [r0, r1) of colT (at heap index `col`) from xT (at heap index `xt`), all in one heap view. */
function fillColT(
  heap: Float32Array,
  col: number,
  xt: number,
  g: Conv2DGeometry,
  r0: number,
  r1: number,
  owLo: Int32Array,
  owHi: Int32Array,
): void {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, kH: KH, kW: KW, sH, sW } = g;
  const pc = (r1 - r0) * OW;
  const plane = N * H * W;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const lo = owLo[kw];
      const hi = owHi[kw];
      const off = kw * g.dW - g.left;
      for (let ci = 0; ci < CI; ci++) {
        const rowBase = col + ((kh * KW + kw) * CI + ci) * pc;
        const chan = xt + ci * plane;
        for (let r = r0; r < r1; r++) {
          const n = (r / OH) | 0;
          const oh = r - n * OH;
          const ih = oh * sH + kh * g.dH - g.top;
          const dst = rowBase + (r - r0) * OW;
          if (ih < 0 || ih >= H || hi <= lo) {
            heap.fill(0, dst, dst + OW);
            continue;
          }
          if (lo > 0) heap.fill(0, dst, dst + lo);
          if (hi < OW) heap.fill(0, dst + hi, dst + OW);
          const src = chan + (n * H + ih) * W + off;
          if (sW === 1) {
            heap.copyWithin(dst + lo, src + lo, src + hi);
          } else {
            for (let ow = lo; ow < hi; ow++) heap[dst + ow] = heap[src + ow * sW];
          }
        }
      }
    }
  }
}

/**
 * dx of a 2-D convolution (NHWC). Stride 1: a forward XNNPACK convolution of dy with the spatially
 * flipped, in/out-swapped filter (same dilation). Otherwise: cols = dy · Wᵀ (one matmul) then col2im.
 */
export function conv2dInputGrad(b: WasmBackend, dy: TI, filter: TI, g: Conv2DGeometry): TI {
  const { kH: KH, kW: KW, inC: CI, outC: CO } = g;
  const eH = (KH - 1) * g.dH + 1;
  const eW = (KW - 1) * g.dW + 1;
  const pt = eH - 1 - g.top;
  const pb = eH - 1 - g.bottom;
  const pl = eW - 1 - g.left;
  const pr = eW - 1 - g.right;
  if (g.sH === 1 && g.sW === 1 && pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0) {
    const wf = alloc(b, [KH, KW, CO, CI]);
    const src = f32(b, filter);
    const dst = f32(b, wf);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const s0 = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CI * CO;
        const d0 = (kh * KW + kw) * CO * CI;
        transpose2d(src, s0, CI, CO, dst, d0);
      }
    }
    const out = runStock(
      'Conv2D',
      b,
      { x: dy, filter: wf },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [pt, pb],
          [pl, pr],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [g.dH, g.dW],
      },
    );
    free(b, wf);
    return out;
  }
  return col2imInputGrad(b, dy, filter, g);
}

function col2imInputGrad(b: WasmBackend, dy: TI, filter: TI, g: Conv2DGeometry): TI {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, outC: CO, kH: KH, kW: KW, sH, sW } = g;
  const K = KH * KW * CI;
  const rows = N * OH;
  const rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(CHUNK_FLOATS / (K * OW))));
  // Wᵀ: [CO, K] from the filter viewed as [K, CO].
  const wt = alloc(b, [CO, K]);
  transpose2d(f32(b, filter), 0, K, CO, f32(b, wt), 0);
  const dx = zeros(b, [N, H, W, CI]);
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const pc = (r1 - r0) * OW;
    let dyc: TI;
    let own = false;
    if (r0 === 0 && r1 === rows) dyc = view(dy, [pc, CO]);
    else {
      dyc = alloc(b, [pc, CO]);
      own = true;
      f32(b, dyc).set(f32(b, dy).subarray(r0 * OW * CO, r1 * OW * CO));
    }
    const cols = runStock('BatchMatMul', b, { a: dyc, b: wt }, { transposeA: false, transposeB: false });
    const cv = f32(b, cols);
    const out = f32(b, dx);
    for (let r = r0; r < r1; r++) {
      const n = (r / OH) | 0;
      const oh = r - n * OH;
      for (let ow = 0; ow < OW; ow++) {
        const p = ((r - r0) * OW + ow) * K;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * g.dH - g.top;
          if (ih < 0 || ih >= H) continue;
          const rowOut = (n * H + ih) * W;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * g.dW - g.left;
            if (iw < 0 || iw >= W) continue;
            const d = (rowOut + iw) * CI;
            const s = p + (kh * KW + kw) * CI;
            for (let c = 0; c < CI; c++) out[d + c] += cv[s + c];
          }
        }
      }
    }
    free(b, cols);
    if (own) free(b, dyc);
  }
  free(b, wt);
  return dx;
}

type ConvAttrs = {
  strides: number | [number, number];
  pad: tf.backend_util.ExplicitPadding | 'valid' | 'same' | number;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
};

function nhwcOnly(kernel: string, a: ConvAttrs): void {
  // The wasm forward Conv2D is NHWC-only too, so an NCHW gradient never reaches a wasm training step.
  if (a.dataFormat === 'NCHW') throw new Error(`wasm ${kernel} supports dataFormat 'NHWC' only, got 'NCHW'`);
}

/** Kernel Conv2DBackpropFilter (wasm). Accepts an extra `dilations` attr (used by our dilated-conv gradient). */
export function conv2DBackpropFilterKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TI {
  const b = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TI; dy: TI };
  const a = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  nhwcOnly('Conv2DBackpropFilter', a);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
  );
  return conv2dFilterGrad(b, x, dy, geometry(info));
}

/** Kernel Conv2DBackpropInput (wasm). Accepts an extra `dilations` attr (stride 1 only). */
export function conv2DBackpropInputKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TI {
  const b = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TI; filter: TI };
  const a = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  nhwcOnly('Conv2DBackpropInput', a);
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
  );
  return conv2dInputGrad(b, dy, filter, geometry(info));
}
