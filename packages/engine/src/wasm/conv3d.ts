import * as tf from '@tensorflow/tfjs-core';
import { conv2dFilterGrad, conv2dForward, conv2dInputGrad } from './conv2d.js';
import { alloc, f32, free, runStock, zeros, type Conv2DGeometry, type TI, type WasmBackend } from './util.js';

/**
 * 3-D convolutions as sums of 2-D ones: for each depth tap kd, the depth planes that tap reads form
 * a batch of 2-D images, convolved by the 2-D slice filter[kd] with the fast 2-D kernels.
 * This replaces the stock wasm Conv3D backprops, whose results are wrong (input gradient at every
 * stride, filter gradient at stride 2).
 */

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Pad = 'valid' | 'same' | number;

interface Geometry3D {
  info: tf.backend_util.Conv3DInfo;
  /** For each depth tap: the (n, od) output planes it contributes to and the input plane (n, id) it reads. */
  taps: { outPlanes: Int32Array; inPlanes: Int32Array }[];
  g2: Conv2DGeometry;
}

function geometry3d(xShape: number[], filterShape: number[], strides: number | number[], pad: Pad, dilations: number | number[]): Geometry3D {
  const info = tf.backend_util.computeConv3DInfo(
    xShape as [number, number, number, number, number],
    filterShape as [number, number, number, number, number],
    strides as number | [number, number, number],
    dilations as number | [number, number, number],
    pad,
  );
  const { batchSize: N, inDepth: D, outDepth: OD, filterDepth: KD, strideDepth: sD, dilationDepth: dD } = info;
  const front = info.padInfo.front;
  const taps: Geometry3D['taps'] = [];
  for (let kd = 0; kd < KD; kd++) {
    const outs: number[] = [];
    const ins: number[] = [];
    for (let n = 0; n < N; n++) {
      for (let od = 0; od < OD; od++) {
        const id = od * sD + kd * dD - front;
        if (id < 0 || id >= D) continue;
        outs.push(n * OD + od);
        ins.push(n * D + id);
      }
    }
    taps.push({ outPlanes: Int32Array.from(outs), inPlanes: Int32Array.from(ins) });
  }
  const g2 = (m: number): Conv2DGeometry => ({
    batch: m,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kH: info.filterHeight,
    kW: info.filterWidth,
    sH: info.strideHeight,
    sW: info.strideWidth,
    dH: info.dilationHeight,
    dW: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
    bottom: info.padInfo.bottom,
    right: info.padInfo.right,
  });
  return { info, taps, g2: g2(0) };
}

/** Copies planes `planes` (each `planeSize` floats) of `src` into a new [planes.length, ...shape] tensor. */
function gatherPlanes(b: WasmBackend, src: TI, planes: Int32Array, planeShape: number[]): TI {
  const planeSize = planeShape.reduce((a, d) => a * d, 1);
  const out = alloc(b, [planes.length, ...planeShape]);
  const sv = f32(b, src);
  const ov = f32(b, out);
  for (let i = 0; i < planes.length; i++) {
    const s = planes[i] * planeSize;
    ov.set(sv.subarray(s, s + planeSize), i * planeSize);
  }
  return out;
}

/** dst planes[i] += src plane i. */
function scatterAddPlanes(b: WasmBackend, dst: TI, src: TI, planes: Int32Array, planeSize: number): void {
  const dv = f32(b, dst);
  const sv = f32(b, src);
  for (let i = 0; i < planes.length; i++) {
    const d = planes[i] * planeSize;
    const s = i * planeSize;
    for (let j = 0; j < planeSize; j++) dv[d + j] += sv[s + j];
  }
}

/** filter[kd] as its own [KH, KW, CI, CO] tensor. */
function filterSlice(b: WasmBackend, filter: TI, kd: number): TI {
  const [, KH, KW, CI, CO] = filter.shape;
  const size = KH * KW * CI * CO;
  const out = alloc(b, [KH, KW, CI, CO]);
  f32(b, out).set(f32(b, filter).subarray(kd * size, (kd + 1) * size));
  return out;
}

export function conv3dKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { x, filter } = args.inputs as { x: TI; filter: TI };
  const a = args.attrs as unknown as { strides: number[]; pad: Pad; dilations: number[]; dataFormat?: string };
  if (a.dataFormat != null && a.dataFormat !== 'NDHWC') return runStock('Conv3D', b, args.inputs, args.attrs);
  const { info, taps, g2 } = geometry3d(x.shape, filter.shape, a.strides, a.pad, a.dilations ?? 1);
  const { inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const out = zeros(b, info.outShape);
  taps.forEach((tap, kd) => {
    if (tap.inPlanes.length === 0) return;
    const xs = gatherPlanes(b, x, tap.inPlanes, [H, W, CI]);
    const wk = filterSlice(b, filter, kd);
    const g = { ...g2, batch: tap.inPlanes.length };
    const y = conv2dForward(b, xs, wk, g);
    scatterAddPlanes(b, out, y, tap.outPlanes, OH * OW * CO);
    free(b, xs, wk, y);
  });
  return out;
}

export function conv3dBackpropInputKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TI; filter: TI };
  const a = args.attrs as unknown as { strides: number[]; pad: Pad; inputShape: number[]; dilations?: number[] };
  const { info, taps, g2 } = geometry3d(a.inputShape, filter.shape, a.strides, a.pad, a.dilations ?? 1);
  const { inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const dx = zeros(b, a.inputShape);
  taps.forEach((tap, kd) => {
    if (tap.outPlanes.length === 0) return;
    const dys = gatherPlanes(b, dy, tap.outPlanes, [OH, OW, CO]);
    const wk = filterSlice(b, filter, kd);
    const part = conv2dInputGrad(b, dys, wk, { ...g2, batch: tap.outPlanes.length });
    scatterAddPlanes(b, dx, part, tap.inPlanes, H * W * CI);
    free(b, dys, wk, part);
  });
  return dx;
}

export function conv3dBackpropFilterKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TI; dy: TI };
  const a = args.attrs as unknown as { strides: number[]; pad: Pad; filterShape: number[]; dilations?: number[] };
  const { info, taps, g2 } = geometry3d(x.shape, a.filterShape, a.strides, a.pad, a.dilations ?? 1);
  const { inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const [, KH, KW] = a.filterShape;
  const tapSize = KH * KW * CI * CO;
  const dw = zeros(b, a.filterShape);
  taps.forEach((tap, kd) => {
    if (tap.outPlanes.length === 0) return;
    const xs = gatherPlanes(b, x, tap.inPlanes, [H, W, CI]);
    const dys = gatherPlanes(b, dy, tap.outPlanes, [OH, OW, CO]);
    const part = conv2dFilterGrad(b, xs, dys, { ...g2, batch: tap.outPlanes.length });
    f32(b, dw).set(f32(b, part), kd * tapSize);
    free(b, xs, dys, part);
  });
  return dw;
}
