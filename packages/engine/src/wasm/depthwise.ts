import * as tf from '@tensorflow/tfjs-core';
import { alloc, f32, free, runStock, zeros, type TI, type WasmBackend } from './util.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function info(xShape: number[], filterShape: number[], a: DepthwiseAttrs) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
}

/** DepthwiseConv2dNativeBackpropFilter: dW[kh,kw,c,m] = Σ x[n,ih,iw,c]·dy[n,oh,ow,c·M+m], plain JS. */
export function depthwiseBackpropFilterKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TI; dy: TI };
  const a = args.attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  const ci = info(x.shape, a.filterShape, a);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = ci;
  const M = a.filterShape[3];
  const CM = C * M;
  const top = ci.padInfo.top;
  const left = ci.padInfo.left;
  const acc = new Float64Array(KH * KW * CM);
  const xv = f32(b, x);
  const gv = f32(b, dy);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const go = ((n * OH + oh) * OW + ow) * CM;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const xo = ((n * H + ih) * W + iw) * C;
            const wo = (kh * KW + kw) * CM;
            if (M === 1) {
              for (let c = 0; c < C; c++) acc[wo + c] += xv[xo + c] * gv[go + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xval = xv[xo + c];
                for (let m = 0; m < M; m++) acc[wo + c * M + m] += xval * gv[go + c * M + m];
              }
            }
          }
        }
      }
    }
  }
  const out = alloc(b, a.filterShape);
  f32(b, out).set(acc);
  return out;
}

/**
 * DepthwiseConv2dNativeBackpropInput. Stride 1: the stock (XNNPACK) depthwise convolution of dy
 * with the flipped filter, then a sum over the channel multiplier. Otherwise plain JS.
 */
export function depthwiseBackpropInputKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TI; filter: TI };
  const a = args.attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  const ci = info(a.inputShape, filter.shape, a);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = ci;
  const M = filter.shape[3];
  const CM = C * M;
  const top = ci.padInfo.top;
  const left = ci.padInfo.left;
  const pt = ci.effectiveFilterHeight - 1 - top;
  const pb = ci.effectiveFilterHeight - 1 - ci.padInfo.bottom;
  const pl = ci.effectiveFilterWidth - 1 - left;
  const pr = ci.effectiveFilterWidth - 1 - ci.padInfo.right;
  if (sH === 1 && sW === 1 && pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0) {
    // Flipped filter as a multiplier-1 depthwise filter over the C·M channels of dy.
    const wf = alloc(b, [KH, KW, CM, 1]);
    const src = f32(b, filter);
    const dst = f32(b, wf);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const s0 = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CM;
        dst.set(src.subarray(s0, s0 + CM), (kh * KW + kw) * CM);
      }
    }
    const full = runStock(
      'DepthwiseConv2dNative',
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
        dilations: [dH, dW],
        dataFormat: 'NHWC',
      },
    );
    free(b, wf);
    if (M === 1) return full;
    const out = alloc(b, [N, H, W, C]);
    const fv = f32(b, full);
    const ov = f32(b, out);
    for (let i = 0, j = 0; i < ov.length; i++) {
      let s = 0;
      for (let m = 0; m < M; m++, j++) s += fv[j];
      ov[i] = s;
    }
    free(b, full);
    return out;
  }
  const out = zeros(b, [N, H, W, C]);
  const ov = f32(b, out);
  const gv = f32(b, dy);
  const wv = f32(b, filter);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const go = ((n * OH + oh) * OW + ow) * CM;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const xo = ((n * H + ih) * W + iw) * C;
            const wo = (kh * KW + kw) * CM;
            for (let c = 0; c < C; c++) {
              let s = 0;
              for (let m = 0; m < M; m++) s += gv[go + c * M + m] * wv[wo + c * M + m];
              ov[xo + c] += s;
            }
          }
        }
      }
    }
  }
  return out;
}
