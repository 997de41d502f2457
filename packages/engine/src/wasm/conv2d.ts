import * as tf from '@tensorflow/tfjs-core';
import { chunksFor, runSplit, splitRange } from '../threads.js';
import { matmul2d } from './matmul.js';
import { rowsPerChunk, run, runPart, type Chunk } from './parts.js';
import {
  alloc,
  f32,
  free,
  geometry,
  runStock,
  sizeOf,
  transpose2d,
  view,
  zeros,
  type Conv2DGeometry,
  type TI,
  type WasmBackend,
} from './util.js';

export { setIm2colChunk } from './parts.js';

/** FLOPs of a 2-D convolution (or of either of its gradients). */
function convFlops(g: Conv2DGeometry): number {
  return 2 * g.batch * g.outH * g.outW * g.kH * g.kW * g.inC * g.outC;
}

function explicitAttrs(g: Conv2DGeometry): object {
  return {
    strides: [g.sH, g.sW],
    pad: [
      [0, 0],
      [g.top, g.bottom],
      [g.left, g.right],
      [0, 0],
    ],
    dataFormat: 'NHWC',
    dilations: [g.dH, g.dW],
  };
}

/**
 * Forward 2-D convolution (NHWC) with the stock XNNPACK kernel. With worker threads and enough work it
 * is split into chunks of output rows: each convolves a slab of input rows (with the padding its rows
 * see), and the slabs are stacked. `attrs`, when given, are passed as is to the unsplit stock kernel.
 */
export function conv2dForward(b: WasmBackend, x: TI, filter: TI, g: Conv2DGeometry, attrs?: object): TI {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, outC: CO } = g;
  const k = chunksFor(convFlops(g), OH);
  const bounds = splitRange(OH, k);
  const slabs = bounds.slice(0, k).map((o0, p) => {
    const o1 = bounds[p + 1];
    const start = o0 * g.sH - g.top;
    const end = (o1 - 1) * g.sH - g.top + (g.kH - 1) * g.dH + 1;
    return { o0, o1, start, end, lo: Math.max(0, start), hi: Math.min(H, end) };
  });
  if (k <= 1 || slabs.some((s) => s.hi <= s.lo)) return runStock('Conv2D', b, { x, filter }, attrs ?? explicitAttrs(g));
  return runSplit(b, {
    inputs: [x, filter],
    outShape: [N, OH, OW, CO],
    chunks: slabs.map(({ o0, o1, start, end, lo, hi }) => ({
      part: { kind: 'conv', strides: [g.sH, g.sW], dilations: [g.dH, g.dW], pad: [lo - start, end - hi, g.left, g.right] },
      inputs: [
        { shape: [N, hi - lo, W, CI], from: { src: 0, start: lo * W * CI, len: (hi - lo) * W * CI, stride: H * W * CI, count: N } },
        { shape: filter.shape, from: run(1, 0, sizeOf(filter.shape)) },
      ],
      out: { src: 0, start: o0 * OW * CO, len: (o1 - o0) * OW * CO, stride: OH * OW * CO, count: N },
    })),
  });
}

/**
 * dW of a 2-D convolution (NHWC) as im2col + one XNNPACK matmul (parts.ts: filterGradRows). With
 * worker threads and enough work, it is split into chunks of output rows (whole images when there are
 * more images than chunks, else slabs of rows of one image, with the input rows they read), and the
 * partial filter gradients are summed.
 */
export function conv2dFilterGrad(b: WasmBackend, x: TI, dy: TI, g: Conv2DGeometry): TI {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, outC: CO } = g;
  const k = chunksFor(convFlops(g), N * OH);
  if (k <= 1) return runPart(b, { kind: 'filterGrad', g, r0: 0, r1: N * OH }, [x, view(dy, [N * OH * OW, CO])]);
  const img = H * W * CI;
  const chunks: Chunk[] = [];
  if (N >= k) {
    const bounds = splitRange(N, k);
    for (let p = 0; p < k; p++) {
      const [n0, n1] = [bounds[p], bounds[p + 1]];
      chunks.push({
        part: { kind: 'filterGrad', g: { ...g, batch: n1 - n0 }, r0: 0, r1: (n1 - n0) * OH },
        inputs: [
          { shape: [n1 - n0, H, W, CI], from: run(0, n0 * img, (n1 - n0) * img) },
          { shape: [(n1 - n0) * OH * OW, CO], from: run(1, n0 * OH * OW * CO, (n1 - n0) * OH * OW * CO) },
        ],
        out: null,
      });
    }
  } else {
    const bounds = splitRange(OH, Math.min(OH, Math.ceil(k / N)));
    const slabs = bounds.slice(0, -1).map((o0, p) => {
      const o1 = bounds[p + 1];
      const start = o0 * g.sH - g.top;
      const end = (o1 - 1) * g.sH - g.top + (g.kH - 1) * g.dH + 1;
      return { o0, o1, start, lo: Math.max(0, start), hi: Math.min(H, end) };
    });
    if (slabs.some((s) => s.hi <= s.lo)) return runPart(b, { kind: 'filterGrad', g, r0: 0, r1: N * OH }, [x, view(dy, [N * OH * OW, CO])]);
    for (let n = 0; n < N; n++) {
      for (const { o0, o1, start, lo, hi } of slabs) {
        // The slab as a one-image conv whose output rows are [o0, o1).
        const gs: Conv2DGeometry = { ...g, batch: 1, inH: hi - lo, outH: o1 - o0, top: lo - start };
        chunks.push({
          part: { kind: 'filterGrad', g: gs, r0: 0, r1: o1 - o0 },
          inputs: [
            { shape: [1, hi - lo, W, CI], from: run(0, n * img + lo * W * CI, (hi - lo) * W * CI) },
            { shape: [(o1 - o0) * OW, CO], from: run(1, (n * OH + o0) * OW * CO, (o1 - o0) * OW * CO) },
          ],
          out: null,
        });
      }
    }
  }
  return runSplit(b, { inputs: [x, dy], outShape: [g.kH, g.kW, CI, CO], chunks });
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
    // The flipped convolution: dy [N, OH, OW, CO] → dx [N, H, W, CI], stride 1, same dilation.
    const gf: Conv2DGeometry = {
      ...g,
      inH: g.outH,
      inW: g.outW,
      inC: CO,
      outH: g.inH,
      outW: g.inW,
      outC: CI,
      sH: 1,
      sW: 1,
      top: pt,
      bottom: pb,
      left: pl,
      right: pr,
    };
    const out = conv2dForward(b, dy, wf, gf);
    free(b, wf);
    return out;
  }
  return col2imInputGrad(b, dy, filter, g);
}

function col2imInputGrad(b: WasmBackend, dy: TI, filter: TI, g: Conv2DGeometry): TI {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, outC: CO, kH: KH, kW: KW, sH, sW } = g;
  const K = KH * KW * CI;
  const rows = N * OH;
  const perChunk = rowsPerChunk(K, OW, rows);
  // Wᵀ: [CO, K] from the filter viewed as [K, CO].
  const wt = alloc(b, [CO, K]);
  transpose2d(f32(b, filter), 0, K, CO, f32(b, wt), 0);
  const dx = zeros(b, [N, H, W, CI]);
  for (let r0 = 0; r0 < rows; r0 += perChunk) {
    const r1 = Math.min(rows, r0 + perChunk);
    const pc = (r1 - r0) * OW;
    let dyc: TI;
    let own = false;
    if (r0 === 0 && r1 === rows) dyc = view(dy, [pc, CO]);
    else {
      dyc = alloc(b, [pc, CO]);
      own = true;
      f32(b, dyc).set(f32(b, dy).subarray(r0 * OW * CO, r1 * OW * CO));
    }
    const cols = matmul2d(b, dyc, wt);
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

/**
 * Kernel Conv2D (wasm): the stock XNNPACK kernel, split along the output rows across the intra-op
 * threads when there are several and the convolution is large enough.
 */
export function conv2DKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TI {
  const b = args.backend as WasmBackend;
  const { x, filter } = args.inputs as { x: TI; filter: TI };
  const a = args.attrs as unknown as ConvAttrs;
  if (a.dataFormat === 'NCHW') return runStock('Conv2D', b, args.inputs, args.attrs); // the stock kernel says why not
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
  );
  return conv2dForward(b, x, filter, geometry(info), args.attrs);
}
