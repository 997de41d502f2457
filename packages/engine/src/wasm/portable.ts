import * as tf from '@tensorflow/tfjs-core';
import { runStock, type TI } from './util.js';

/**
 * Plain typed-array kernels that run on both the wasm and the cpu backend. They replace stock
 * kernels whose results disagree with their forward op (see README: AvgPoolGrad, ResizeBilinearGrad,
 * MaxPoolGrad on wasm).
 */

interface HeapBackend {
  typedArrayFromHeap(t: TI): tf.TypedArray;
  makeOutput(shape: number[], dtype: tf.DataType): TI;
}
interface CpuLikeBackend {
  readSync(dataId: tf.DataId): tf.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.BackendValues): TI;
}

function isHeap(b: unknown): b is HeapBackend {
  return typeof (b as HeapBackend).typedArrayFromHeap === 'function';
}

/** Input values without a copy where the backend allows it. */
export function read(backend: unknown, t: TI): tf.TypedArray {
  if (isHeap(backend)) return backend.typedArrayFromHeap(t);
  return (backend as CpuLikeBackend).readSync(t.dataId) as tf.TypedArray;
}

/**
 * Allocates the output, hands a zeroed Float32Array to `fill`, returns the TensorInfo. On wasm the
 * array is a heap view: `fill` must not allocate on the backend (it would invalidate the view), so
 * inputs are read before the output is made and re-read after.
 */
export function output(backend: unknown, shape: number[], fill: (out: Float32Array) => void): TI {
  if (isHeap(backend)) {
    const t = backend.makeOutput(shape, 'float32');
    const v = backend.typedArrayFromHeap(t) as Float32Array;
    v.fill(0);
    fill(v);
    return t;
  }
  const v = new Float32Array(shape.reduce((a, d) => a * d, 1));
  fill(v);
  return (backend as CpuLikeBackend).makeTensorInfo(shape, 'float32', v);
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/**
 * AvgPoolGrad that matches AvgPool: each output averages only the window pixels inside the input
 * (TensorFlow semantics), so its gradient spreads dy / count. The stock kernels divide by the full
 * window size, which is wrong next to 'same' padding.
 */
export function avgPoolGradKernel(args: KernelArgs): TI {
  const { dy, input } = args.inputs as { dy: TI; input: TI };
  const a = args.attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const eH = info.effectiveFilterHeight;
  const eW = info.effectiveFilterWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  return output(args.backend, input.shape, (dx) => {
    const g = read(args.backend, dy);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = oh * sH - top;
        const rLo = r0 < 0 ? Math.ceil(-r0 / dH) * dH + r0 : r0;
        const rHi = Math.min(H, r0 + eH);
        for (let ow = 0; ow < OW; ow++) {
          const c0 = ow * sW - left;
          const cLo = c0 < 0 ? Math.ceil(-c0 / dW) * dW + c0 : c0;
          const cHi = Math.min(W, c0 + eW);
          let count = 0;
          for (let r = rLo; r < rHi; r += dH) for (let c = cLo; c < cHi; c += dW) count++;
          if (count === 0) continue;
          const inv = 1 / count;
          const go = ((n * OH + oh) * OW + ow) * C;
          for (let r = rLo; r < rHi; r += dH) {
            for (let c = cLo; c < cHi; c += dW) {
              const xo = ((n * H + r) * W + c) * C;
              for (let ch = 0; ch < C; ch++) dx[xo + ch] += g[go + ch] * inv;
            }
          }
        }
      }
    }
  });
}

/**
 * MaxPoolGrad: dy goes to the first maximum of each window (the cpu backend's rule). The stock wasm
 * kernel disagrees with its own MaxPool at stride 2 / 'same' padding.
 */
export function maxPoolGradKernel(args: KernelArgs): TI {
  const { dy, input } = args.inputs as { dy: TI; input: TI };
  const a = args.attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const eH = info.effectiveFilterHeight;
  const eW = info.effectiveFilterWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const best = new Float32Array(C);
  const pos = new Int32Array(C);
  return output(args.backend, input.shape, (dx) => {
    const x = read(args.backend, input);
    const g = read(args.backend, dy);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = oh * sH - top;
        const rLo = r0 < 0 ? Math.ceil(-r0 / dH) * dH + r0 : r0;
        const rHi = Math.min(H, r0 + eH);
        for (let ow = 0; ow < OW; ow++) {
          const c0 = ow * sW - left;
          const cLo = c0 < 0 ? Math.ceil(-c0 / dW) * dW + c0 : c0;
          const cHi = Math.min(W, c0 + eW);
          best.fill(-Infinity);
          pos.fill(-1);
          for (let r = rLo; r < rHi; r += dH) {
            for (let c = cLo; c < cHi; c += dW) {
              const xo = ((n * H + r) * W + c) * C;
              for (let ch = 0; ch < C; ch++) {
                const v = x[xo + ch];
                if (v > best[ch]) {
                  best[ch] = v;
                  pos[ch] = xo + ch;
                }
              }
            }
          }
          const go = ((n * OH + oh) * OW + ow) * C;
          for (let ch = 0; ch < C; ch++) if (pos[ch] >= 0) dx[pos[ch]] += g[go + ch];
        }
      }
    }
  });
}

/**
 * ResizeBilinearGrad, the exact adjoint of ResizeBilinear for every alignCorners / halfPixelCenters
 * combination. The stock kernels ignore halfPixelCenters, and the cpu one returns height and width
 * swapped.
 */
export function resizeBilinearGradKernel(args: KernelArgs): TI {
  const { images, dy } = args.inputs as { images: TI; dy: TI };
  const a = args.attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
  // The stock wasm kernel is right (and faster) without half-pixel centers.
  if (!a.halfPixelCenters && isHeap(args.backend)) return runStock('ResizeBilinearGrad', args.backend as never, args.inputs, args.attrs);
  const [N, H, W, C] = images.shape;
  const [, OH, OW] = dy.shape;
  const rowScale = (a.alignCorners && OH > 1 ? H - 1 : H) / (a.alignCorners && OH > 1 ? OH - 1 : OH);
  const colScale = (a.alignCorners && OW > 1 ? W - 1 : W) / (a.alignCorners && OW > 1 ? OW - 1 : OW);
  const src = (scale: number, i: number, size: number): [number, number, number] => {
    const f = a.halfPixelCenters ? scale * (i + 0.5) - 0.5 : scale * i;
    const lo = Math.max(0, Math.floor(f));
    const hi = Math.min(size - 1, Math.ceil(f));
    return [lo, hi, f - lo];
  };
  const cols = Array.from({ length: OW }, (_, c) => src(colScale, c, W));
  return output(args.backend, images.shape, (dx) => {
    const g = read(args.backend, dy);
    let o = 0;
    for (let n = 0; n < N; n++) {
      for (let r = 0; r < OH; r++) {
        const [r0, r1, rf] = src(rowScale, r, H);
        const top = (n * H + r0) * W;
        const bot = (n * H + r1) * W;
        for (let c = 0; c < OW; c++) {
          const [c0, c1, cf] = cols[c];
          const wTL = (1 - rf) * (1 - cf);
          const wTR = (1 - rf) * cf;
          const wBL = rf * (1 - cf);
          const wBR = rf * cf;
          const tl = (top + c0) * C;
          const tr = (top + c1) * C;
          const bl = (bot + c0) * C;
          const br = (bot + c1) * C;
          for (let ch = 0; ch < C; ch++, o++) {
            const v = g[o];
            dx[tl + ch] += v * wTL;
            dx[tr + ch] += v * wTR;
            dx[bl + ch] += v * wBL;
            dx[br + ch] += v * wBR;
          }
        }
      }
    }
  });
}
