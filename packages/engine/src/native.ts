import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADAMW, BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD, BEV_POOL, BEV_POOL_GRAD, FUSED_KERNELS, MS_DEFORM_ATTN, MS_DEFORM_ATTN_GRAD, RELU_GRAD, adamWKernel, batchNormTrainingGradKernel, batchNormTrainingKernel, bevPoolGradKernel, bevPoolKernel, msDeformAttnDims, msDeformAttnGradKernel, msDeformAttnKernel, type AdamWAttrs } from './fused.js';
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel, conv2DKernel } from './wasm/conv2d.js';
import { transposeKernel } from './wasm/matmul.js';
import { install } from './register.js';
import { maxPoolGradKernel } from './wasm/portable.js';
import { BINARY_KERNELS, collapseBroadcast } from './wasm/binary.js';
import { alloc, geometry, rememberStock, runStock, sizeOf, stridesOf, type TI, type WasmBackend } from './wasm/util.js';

/**
 * The native kernel path: the hot training ops of the wasm backend run in libtorch (oneDNN convolutions, ATen
 * reductions and batch norm, OpenMP threads) through our N-API addon (native/bevzoo_native.cc), on the tensors where
 * the wasm backend keeps them: the addon gets the wasm heap's ArrayBuffer and byte offsets and writes into outputs
 * allocated on that heap. Cases the addon does not cover (NCHW, other dtypes) run the wasm kernels.
 */

type Dims = number[];
export interface NativeAddon {
  setThreads(n: number): number;
  info(): { threads: number; parallel: string };
  conv2d(heap: ArrayBuffer, x: number, xs: Dims, w: number, ws: Dims, y: number, ys: Dims, stride: Dims, pads: Dims, dil: Dims, bias?: number, relu?: boolean): void;
  conv2dBackpropInput(heap: ArrayBuffer, dy: number, dys: Dims, w: number, ws: Dims, dx: number, dxs: Dims, stride: Dims, pads: Dims, dil: Dims): void;
  conv2dBackpropFilter(heap: ArrayBuffer, x: number, xs: Dims, dy: number, dys: Dims, dw: number, dws: Dims, stride: Dims, pads: Dims, dil: Dims): void;
  maxPoolGrad(heap: ArrayBuffer, dy: number, dys: Dims, x: number, xs: Dims, dx: number, k: Dims, s: Dims, pads: Dims): void;
  reduce(heap: ArrayBuffer, op: 'sum' | 'mean', x: number, xs: Dims, axes: Dims, out: number): void;
  batchNormTrain(heap: ArrayBuffer, x: number, rc: Dims, scale: number, offset: number, eps: number, y: number, mean: number, invstd: number): void;
  batchNormTrainGrad(heap: ArrayBuffer, dy: number, x: number, rc: Dims, scale: number, mean: number, invstd: number, eps: number, dx: number, dscale: number, doffset: number): void;
  copyStrided(heap: ArrayBuffer, src: number, sizes: Dims, srcStrides: Dims, dst: number, dstStrides: Dims): void;
  fill(heap: ArrayBuffer, dst: number, n: number, value: number): void;
  gather(heap: ArrayBuffer, x: number, oni: Dims, indices: number, count: number, out: number): void;
  binary(heap: ArrayBuffer, op: 'add' | 'sub' | 'mul' | 'div', a: number, as: Dims, b: number, bs: Dims, out: number, outShape: Dims): void;
  reluGrad(heap: ArrayBuffer, dy: number, x: number, n: number, dx: number): void;
  relu(heap: ArrayBuffer, x: number, n: number, y: number): void;
  adamw(heap: ArrayBuffer, n: number, p: number, m: number, v: number, g: number, po: number, mo: number, vo: number, stepSize: number, b1: number, b2: number, eps: number, decay: number, bc2Sqrt: number): void;
  /** Absent from addons built before it (the portable kernel runs then). */
  bevPool?(heap: ArrayBuffer, depth: number, context: number, pointIndex: number, pixelIndex: number, segmentIds: number, k: number, c: number, out: number, numSegments: number): void;
  bevPoolGrad?(heap: ArrayBuffer, depth: number, context: number, pointIndex: number, pixelIndex: number, segmentIds: number, k: number, c: number, dy: number, ddepth: number, numPoints: number, dcontext: number, numPixels: number): void;
  /** dims: [B, K, heads, D, Q, levels, points]; levels: their [H, W] pairs, flat. Absent from older addons. */
  msDeformAttn?(heap: ArrayBuffer, value: number, loc: number, attn: number, dims: Dims, levels: Dims, out: number): void;
  msDeformAttnGrad?(heap: ArrayBuffer, value: number, loc: number, attn: number, dims: Dims, levels: Dims, dy: number, dvalue: number, dloc: number, dattn: number): void;
}

/** The package folder (one level above src/ and dist/). */
function packageDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
}

/** Where the addon is: BEVZOO_NATIVE_ADDON, else native/build/bevzoo_native.node in this package. */
export function nativeAddonPath(): string {
  return process.env.BEVZOO_NATIVE_ADDON || path.join(packageDir(), 'native', 'build', 'bevzoo_native.node');
}

let loaded: { addon: NativeAddon | null; why: string } | null = null;

/** Loads the addon once (from nativeAddonPath()); `why` says what was loaded, or why not (and how to build it). */
export function loadNative(): { addon: NativeAddon | null; why: string } {
  return (loaded ??= loadNativeFrom(nativeAddonPath()));
}

/** Loads the addon at `file`, without caching. */
export function loadNativeFrom(file: string): { addon: NativeAddon | null; why: string } {
  const build = `apt-get install libtorch-dev, then node ${path.join(packageDir(), 'native', 'build.mjs')}`;
  if (!existsSync(file)) return { addon: null, why: `the native addon is not built (${file} missing; ${build})` };
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    return { addon, why: `libtorch through ${path.relative(process.cwd(), file) || file}` };
  } catch (e) {
    const msg = String((e as Error).message).split('\n')[0]!.slice(0, 200);
    return { addon: null, why: `the native addon failed to load (${msg}; ${build})` };
  }
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Kernel = (args: KernelArgs) => TI | TI[];

const heap = (b: WasmBackend): ArrayBuffer => (b.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer as ArrayBuffer;
const at = (b: WasmBackend, t: TI): number => b.getMemoryOffset(t.dataId);

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(xShape: number[], wShape: number[], a: ConvAttrs) {
  const g = geometry(tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], wShape as [number, number, number, number], a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode));
  return { g, stride: [g.sH, g.sW], pads: [g.top, g.bottom, g.left, g.right], dil: [g.dH, g.dW] };
}

/** The addon the native kernels call (set when they are put in place). */
let n: NativeAddon;

/** The wasm-path kernel of `name`, looked up when called (the stock ones are remembered before they are replaced). */
const wasmOf = (name: string): Kernel => (args) => wasmKernel(name)(args);

/** The native kernels by name. */
function nativeKernels(): [string, Kernel][] {
  // The convolution kernels: operands p, q (NHWC / HWIO on the heap) → out, with the geometry of the forward
  // convolution (input shape, filter shape) each of them belongs to; null where the wasm kernel must run. The forward
  // one may add a bias inside the convolution and rectify its output (tf.fused.conv2d).
  type ConvOperands = { p: TI; q: TI; xShape: number[]; wShape: number[]; outShape: (g: ReturnType<typeof convInfo>['g']) => number[]; bias?: TI; relu?: boolean };
  type ConvAttrsOf = ConvAttrs & Record<string, unknown>;
  const convKernel = (call: 'conv2d' | 'conv2dBackpropInput' | 'conv2dBackpropFilter', wasm: Kernel, operands: (inputs: tf.NamedTensorInfoMap, a: ConvAttrsOf) => ConvOperands | null): Kernel => (args) => {
    const a = args.attrs as unknown as ConvAttrsOf;
    const o = operands(args.inputs, a);
    if (o == null || a.dataFormat === 'NCHW' || o.p.dtype !== 'float32') return wasm(args);
    const b = args.backend as WasmBackend;
    const c = convInfo(o.xShape, o.wShape, a);
    const out = alloc(b, o.outShape(c.g));
    if (sizeOf(out.shape) === 0) return out;
    const operandsAt = [heap(b), at(b, o.p), o.p.shape, at(b, o.q), o.q.shape, at(b, out), out.shape, c.stride, c.pads, c.dil] as const;
    if (call === 'conv2d') n.conv2d(...operandsAt, o.bias ? at(b, o.bias) : -1, o.relu ?? false);
    else n[call](...operandsAt);
    return out;
  };
  const forward = (i: tf.NamedTensorInfoMap): ConvOperands => ({ p: i.x!, q: i.filter!, xShape: i.x!.shape, wShape: i.filter!.shape, outShape: (g) => [g.batch, g.outH, g.outW, g.outC] });
  const conv = convKernel('conv2d', conv2DKernel, forward);
  // tf.fused.conv2d: a [C] bias and relu or no activation run natively; other activations run the wasm kernel.
  const fusedConv = convKernel('conv2d', wasmOf(tf.FusedConv2D), (i, a) => {
    const { filter, bias, preluActivationWeights } = i as { filter: TI; bias?: TI; preluActivationWeights?: TI };
    if (preluActivationWeights || !['linear', 'relu'].includes(a.activation as string) || (bias && sizeOf(bias.shape) !== filter.shape[3])) return null;
    return { ...forward(i), bias, relu: a.activation === 'relu' };
  });
  const convInput = convKernel('conv2dBackpropInput', conv2DBackpropInputKernel, (i, a) => {
    const xShape = a.inputShape as number[];
    return { p: i.dy!, q: i.filter!, xShape, wShape: i.filter!.shape, outShape: () => xShape };
  });
  const convFilter = convKernel('conv2dBackpropFilter', conv2DBackpropFilterKernel, (i, a) => {
    const wShape = a.filterShape as number[];
    return { p: i.x!, q: i.dy!, xShape: i.x!.shape, wShape, outShape: () => wShape };
  });
  const maxPoolGrad: Kernel = (args) => {
    const { dy, input } = args.inputs as { dy: TI; input: TI };
    const a = args.attrs as unknown as { filterSize: number | [number, number]; strides: number | [number, number]; pad: ConvAttrs['pad']; dimRoundingMode?: ConvAttrs['dimRoundingMode'] };
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const p = info.padInfo;
    // PyTorch's windows (floor) over the padded input must be tfjs's windows.
    const oh = Math.floor((info.inHeight + p.top + p.bottom - info.filterHeight) / info.strideHeight) + 1;
    const ow = Math.floor((info.inWidth + p.left + p.right - info.filterWidth) / info.strideWidth) + 1;
    if (oh !== info.outHeight || ow !== info.outWidth || p.top < 0 || p.left < 0 || input.dtype !== 'float32') return maxPoolGradKernel(args);
    const b = args.backend as WasmBackend;
    const dx = alloc(b, input.shape);
    if (sizeOf(dx.shape) > 0)
      n.maxPoolGrad(heap(b), at(b, dy), dy.shape, at(b, input), input.shape, at(b, dx), [info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], [p.top, p.bottom, p.left, p.right]);
    return dx;
  };
  const reduce = (op: 'sum' | 'mean', stockName: string): Kernel => (args) => {
    const { x } = args.inputs as { x: TI };
    const a = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(a.axis, x.shape);
    if (x.dtype !== 'float32' || axes.length === 0 || sizeOf(x.shape) === 0) return runStock(stockName, args.backend as WasmBackend, args.inputs, args.attrs);
    const b = args.backend as WasmBackend;
    const shape = x.shape.flatMap((d, i) => (axes.includes(i) ? (a.keepDims ? [1] : []) : [d]));
    const out = alloc(b, shape);
    n.reduce(heap(b), op, at(b, x), x.shape, axes, at(b, out));
    return out;
  };
  const bn: Kernel = (args) => {
    const { x, scale, offset } = args.inputs as { x: TI; scale: TI; offset: TI };
    const c = x.shape[x.shape.length - 1]!;
    if (x.dtype !== 'float32' || sizeOf(x.shape) === 0) return batchNormTrainingKernel(args);
    const b = args.backend as WasmBackend;
    const y = alloc(b, x.shape), mean = alloc(b, [c]), invstd = alloc(b, [c]);
    n.batchNormTrain(heap(b), at(b, x), [sizeOf(x.shape) / c, c], at(b, scale), at(b, offset), Number((args.attrs as { epsilon: number }).epsilon), at(b, y), at(b, mean), at(b, invstd));
    return [y, mean, invstd];
  };
  const bnGrad: Kernel = (args) => {
    const { dy, x, scale, mean, invstd } = args.inputs as { dy: TI; x: TI; scale: TI; mean: TI; invstd: TI };
    const c = x.shape[x.shape.length - 1]!;
    if (sizeOf(x.shape) === 0) return batchNormTrainingGradKernel(args);
    const b = args.backend as WasmBackend;
    const dx = alloc(b, x.shape), dscale = alloc(b, [c]), doffset = alloc(b, [c]);
    n.batchNormTrainGrad(heap(b), at(b, dy), at(b, x), [sizeOf(x.shape) / c, c], at(b, scale), at(b, mean), at(b, invstd), 0, at(b, dx), at(b, dscale), at(b, doffset));
    return [dx, dscale, doffset];
  };
  const adamw: Kernel = (args) => {
    const { param, m, v, grad } = args.inputs as { param: TI; m: TI; v: TI; grad: TI };
    if ([param, m, v, grad].some((t) => t.dtype !== 'float32')) return adamWKernel(args);
    const a = args.attrs as unknown as AdamWAttrs;
    const b = args.backend as WasmBackend;
    const po = alloc(b, param.shape), mo = alloc(b, m.shape), vo = alloc(b, v.shape);
    const size = sizeOf(param.shape);
    if (size > 0) n.adamw(heap(b), size, at(b, param), at(b, m), at(b, v), at(b, grad), at(b, po), at(b, mo), at(b, vo), a.stepSize, a.beta1, a.beta2, a.eps, a.decay, a.bc2Sqrt);
    return [po, mo, vo];
  };
  // LSS's BEV pooling (fused.ts): float32 features, int32 indices.
  const bevPoolOk = (i: tf.NamedTensorInfoMap) => i.depth!.dtype === 'float32' && i.context!.dtype === 'float32' && ['pointIndex', 'pixelIndex', 'segmentIds'].every((k) => i[k]!.dtype === 'int32');
  const bevPoolOperands = (b: WasmBackend, i: tf.NamedTensorInfoMap) =>
    [at(b, i.depth!), at(b, i.context!), at(b, i.pointIndex!), at(b, i.pixelIndex!), at(b, i.segmentIds!), sizeOf(i.pointIndex!.shape), i.context!.shape.at(-1) ?? 1] as const;
  const bevPool: Kernel = (args) => {
    if (!n.bevPool || !bevPoolOk(args.inputs)) return bevPoolKernel(args);
    const b = args.backend as WasmBackend;
    const numSegments = Number((args.attrs as { numSegments: number }).numSegments);
    const out = alloc(b, [numSegments, args.inputs.context!.shape.at(-1) ?? 1]);
    n.bevPool(heap(b), ...bevPoolOperands(b, args.inputs), at(b, out), numSegments);
    return out;
  };
  const bevPoolGrad: Kernel = (args) => {
    const { dy, depth, context } = args.inputs as { dy: TI; depth: TI; context: TI };
    if (!n.bevPoolGrad || !bevPoolOk(args.inputs) || dy.dtype !== 'float32') return bevPoolGradKernel(args);
    const b = args.backend as WasmBackend;
    const dd = alloc(b, depth.shape), dc = alloc(b, context.shape);
    n.bevPoolGrad(heap(b), ...bevPoolOperands(b, args.inputs), at(b, dy), at(b, dd), sizeOf(depth.shape), at(b, dc), sizeOf(context.shape) / (context.shape.at(-1) ?? 1));
    return [dd, dc];
  };
  // Multi-scale deformable attention (fused.ts): float32 tensors. The heap and the offsets are taken after the outputs
  // are allocated (an allocation may grow the heap, which detaches its old ArrayBuffer).
  const deformOk = (i: tf.NamedTensorInfoMap) => ['value', 'samplingLocations', 'attentionWeights', 'dy'].every((k) => i[k] == null || i[k]!.dtype === 'float32');
  const deform = (args: KernelArgs) => {
    const { value, samplingLocations: loc, attentionWeights: attn, dy } = args.inputs as { value: TI; samplingLocations: TI; attentionWeights: TI; dy?: TI };
    const levels = Array.from((args.attrs as { levels: number[] }).levels);
    const d = msDeformAttnDims(value, loc, levels);
    const dims: number[] = [d.B, d.K, d.heads, d.D, d.Q, d.L, d.P];
    const operands = (b: WasmBackend) => [heap(b), at(b, value), at(b, loc), at(b, attn), dims, levels] as const;
    return { d, value, loc, attn, dy, operands };
  };
  const msDeformAttn: Kernel = (args) => {
    if (!n.msDeformAttn || !deformOk(args.inputs)) return msDeformAttnKernel(args);
    const b = args.backend as WasmBackend;
    const { d, operands } = deform(args);
    const out = alloc(b, [d.B, d.Q, d.heads * d.D]);
    n.msDeformAttn(...operands(b), at(b, out));
    return out;
  };
  const msDeformAttnGrad: Kernel = (args) => {
    if (!n.msDeformAttnGrad || !deformOk(args.inputs)) return msDeformAttnGradKernel(args);
    const b = args.backend as WasmBackend;
    const { value, loc, attn, dy, operands } = deform(args);
    const outs = [alloc(b, value.shape), alloc(b, loc.shape), alloc(b, attn.shape)];
    n.msDeformAttnGrad(...operands(b), at(b, dy!), at(b, outs[0]!), at(b, outs[1]!), at(b, outs[2]!));
    return outs;
  };
  // Data movement and elementwise ops: native from MIN_NATIVE_SIZE values on (below it the call costs more than the
  // wasm kernel), float32 only; the rest runs the wasm kernel.
  const small = (t: TI) => sizeOf(t.shape) < MIN_NATIVE_SIZE || t.dtype !== 'float32';
  const copy = (b: WasmBackend, src: TI, srcOff: number, sizes: number[], srcStrides: number[], dst: TI, dstOff: number, dstStrides: number[]) => {
    if (sizeOf(sizes) > 0) n.copyStrided(heap(b), at(b, src) + 4 * srcOff, sizes, srcStrides, at(b, dst) + 4 * dstOff, dstStrides);
  };
  const transpose: Kernel = (args) => {
    const { x } = args.inputs as { x: TI };
    if (small(x)) return wasmOf(tf.Transpose)(args);
    const perm = (args.attrs as { perm: number[] }).perm;
    const b = args.backend as WasmBackend;
    const st = stridesOf(x.shape);
    const out = alloc(b, perm.map((p) => x.shape[p]!));
    copy(b, x, 0, out.shape, perm.map((p) => st[p]!), out, 0, stridesOf(out.shape));
    return out;
  };
  const slice: Kernel = (args) => {
    const { x } = args.inputs as { x: TI };
    if (small(x)) return wasmOf(tf.Slice)(args);
    const a = args.attrs as { begin: number | number[]; size: number | number[] };
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, a.begin, a.size);
    const b = args.backend as WasmBackend;
    const st = stridesOf(x.shape);
    const out = alloc(b, size);
    copy(b, x, begin.reduce((acc, v, i) => acc + v * st[i]!, 0), size, st, out, 0, stridesOf(size));
    return out;
  };
  const splitV: Kernel = (args) => {
    const { x } = args.inputs as { x: TI };
    if (small(x)) return wasmOf(tf.SplitV)(args);
    const a = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const axis = tf.util.parseAxisParam(a.axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, a.numOrSizeSplits, axis);
    const b = args.backend as WasmBackend;
    const st = stridesOf(x.shape);
    const outs = sizes.map((s) => alloc(b, x.shape.map((d, i) => (i === axis ? s : d))));
    let start = 0;
    outs.forEach((o, k) => {
      copy(b, x, start * st[axis]!, o.shape, st, o, 0, stridesOf(o.shape));
      start += sizes[k]!;
    });
    return outs;
  };
  const concat: Kernel = (args) => {
    const xs = Object.values(args.inputs) as TI[];
    const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, xs[0]!.shape)[0]!;
    const shape = tf.backend_util.computeOutShape(xs.map((t) => t.shape), axis);
    if (sizeOf(shape) < MIN_NATIVE_SIZE || xs.some((t) => t.dtype !== 'float32')) return wasmOf(tf.Concat)(args);
    const b = args.backend as WasmBackend;
    const out = alloc(b, shape);
    const ost = stridesOf(shape);
    let start = 0;
    for (const t of xs) {
      copy(b, t, 0, t.shape, stridesOf(t.shape), out, start * ost[axis]!, ost);
      start += t.shape[axis]!;
    }
    return out;
  };
  const pad: Kernel = (args) => {
    const { x } = args.inputs as { x: TI };
    if (small(x)) return wasmOf(tf.PadV2)(args);
    const a = args.attrs as { paddings: [number, number][]; constantValue: number };
    const b = args.backend as WasmBackend;
    const out = alloc(b, x.shape.map((d, i) => a.paddings[i]![0] + d + a.paddings[i]![1]));
    n.fill(heap(b), at(b, out), sizeOf(out.shape), a.constantValue);
    const ost = stridesOf(out.shape);
    copy(b, x, 0, x.shape, stridesOf(x.shape), out, a.paddings.reduce((acc, p, i) => acc + p[0] * ost[i]!, 0), ost);
    return out;
  };
  const gather: Kernel = (args) => {
    const { x, indices } = args.inputs as { x: TI; indices: TI };
    const a = args.attrs as { axis: number; batchDims: number };
    if (small(x) || a.batchDims !== 0 || indices.dtype !== 'int32') return wasmOf(tf.GatherV2)(args);
    const axis = tf.util.parseAxisParam(a.axis, x.shape)[0]!;
    const b = args.backend as WasmBackend;
    const outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1)), count = sizeOf(indices.shape);
    const out = alloc(b, [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)]);
    if (sizeOf(out.shape) > 0) n.gather(heap(b), at(b, x), [outer, x.shape[axis]!, inner], at(b, indices), count, at(b, out));
    return out;
  };
  const binary = (name: string, op: 'add' | 'sub' | 'mul' | 'div'): Kernel => (args) => {
    const { a, b: bb } = args.inputs as { a: TI; b: TI };
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, bb.shape);
    if (sizeOf(shape) < MIN_NATIVE_SIZE || a.dtype !== 'float32' || bb.dtype !== 'float32') return wasmOf(name)(args);
    const dims = collapseBroadcast(a.shape, bb.shape);
    // Both paths loop per innermost run, so a broadcast with short runs is slow on either: for 0.8 M values with a
    // run of 2 ([12, 1031, 4, 2, 2, 4, 2] ÷ [1, 1, 1, 2, 1, 1, 2]) ATen took 3–7 ms on the idle machine, and on a busy
    // one 10–18 ms against 17–24 ms for XNNPACK (on merged axes). Short runs go to wasm; the evidence for either choice
    // is thin, and models should avoid them (BEVFormer's attentions lay such terms out along whole rows).
    if (dims.out.length > 1 && dims.out.at(-1)! < MIN_BROADCAST_RUN) return wasmOf(name)(args);
    const b = args.backend as WasmBackend;
    const out = alloc(b, shape);
    n.binary(heap(b), op, at(b, a), dims.a, at(b, bb), dims.b, at(b, out), dims.out);
    return out;
  };
  // tf.clone and every tensor tfjs saves for a gradient (1,929 of them in a BEVDet step): the same data, one more
  // reference, as PyTorch saves tensors and as tfjs's cpu backend clones (each of the two is freed on its own). No
  // kernel writes into its inputs; the one cache keyed by data rather than shape, the stock matmul's, is guarded in
  // runStock.
  const identity: Kernel = (args) => {
    const { x } = args.inputs as { x: TI };
    if (x.dtype === 'string' || x.dtype === 'complex64') return wasmOf(tf.Identity)(args);
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
  const relu: Kernel = (args) => {
    const { x } = args.inputs as { x: TI };
    if (small(x)) return wasmOf(tf.Relu)(args);
    const b = args.backend as WasmBackend;
    const y = alloc(b, x.shape);
    n.relu(heap(b), at(b, x), sizeOf(x.shape), at(b, y));
    return y;
  };
  const reluGrad: Kernel = (args) => {
    const { dy, x } = args.inputs as { dy: TI; x: TI };
    if (small(x) || dy.dtype !== 'float32') return wasmOf(RELU_GRAD)(args);
    const b = args.backend as WasmBackend;
    const dx = alloc(b, x.shape);
    n.reluGrad(heap(b), at(b, dy), at(b, x), sizeOf(x.shape), at(b, dx));
    return dx;
  };
  return [
    [tf.FusedConv2D, fusedConv],
    [tf.Relu, relu],
    [RELU_GRAD, reluGrad],
    [tf.Identity, identity],
    [tf.Transpose, transpose],
    [tf.Slice, slice],
    [tf.SplitV, splitV],
    [tf.Concat, concat],
    [tf.PadV2, pad],
    [tf.GatherV2, gather],
    [tf.Add, binary(tf.Add, 'add')],
    [tf.Sub, binary(tf.Sub, 'sub')],
    [tf.Multiply, binary(tf.Multiply, 'mul')],
    [tf.RealDiv, binary(tf.RealDiv, 'div')],
    [tf.Conv2D, conv],
    [tf.Conv2DBackpropInput, convInput],
    [tf.Conv2DBackpropFilter, convFilter],
    [tf.MaxPoolGrad, maxPoolGrad],
    [tf.Sum, reduce('sum', tf.Sum)],
    [tf.Mean, reduce('mean', tf.Mean)],
    [BATCH_NORM_TRAINING, bn],
    [BATCH_NORM_TRAINING_GRAD, bnGrad],
    [ADAMW, adamw],
    [BEV_POOL, bevPool],
    [BEV_POOL_GRAD, bevPoolGrad],
    [MS_DEFORM_ATTN, msDeformAttn],
    [MS_DEFORM_ATTN_GRAD, msDeformAttnGrad],
  ];
}

/** Below this many values a data-movement or elementwise op stays on wasm (the native call costs more). */
export const MIN_NATIVE_SIZE = 4096;

/** A broadcasting elementwise op runs natively only where its innermost run (collapseBroadcast) is at least this long. */
export const MIN_BROADCAST_RUN = 32;

/** The kernels of the wasm path for the names the native path replaces: ours where we have one, else the stock one. */
const WASM_PATH: Record<string, Kernel> = {
  [tf.Conv2D]: conv2DKernel,
  [tf.Conv2DBackpropInput]: conv2DBackpropInputKernel,
  [tf.Conv2DBackpropFilter]: conv2DBackpropFilterKernel,
  [tf.MaxPoolGrad]: maxPoolGradKernel,
  [tf.Transpose]: transposeKernel,
  ...Object.fromEntries(BINARY_KERNELS),
  ...Object.fromEntries(FUSED_KERNELS),
};

function wasmKernel(name: string): Kernel {
  const k = WASM_PATH[name] ?? (rememberStock(name)?.kernelFunc as unknown as Kernel | undefined);
  if (k == null) throw new Error(`@bevzoo/engine: no wasm kernel ${name}`);
  return k;
}

const NATIVE_TABLE = nativeKernels();

/** The wasm kernels that the native path replaces (names). */
export const NATIVE_KERNEL_NAMES = NATIVE_TABLE.map(([name]) => name);

let active: boolean | null = null;

/**
 * Puts the native kernels in place of the wasm ones (true), or the wasm ones back (false). Call after
 * registerWasmTrainingKernels. Returns the names now native. Throws when the addon is missing and native is asked.
 */
export function useNativeKernels(on: boolean): string[] {
  if (active === on) return on ? NATIVE_KERNEL_NAMES.slice() : [];
  // The stock kernels we replace, remembered before the first replacement (wasmKernel falls back to them).
  for (const name of NATIVE_KERNEL_NAMES) if (!(name in WASM_PATH)) rememberStock(name);
  if (!on) {
    for (const name of NATIVE_KERNEL_NAMES) install(name, 'wasm', wasmKernel(name));
    active = false;
    return [];
  }
  const { addon, why } = loadNative();
  if (!addon) throw new Error(`@bevzoo/engine: native kernels requested but ${why}`);
  n = addon;
  for (const [name, fn] of NATIVE_TABLE) install(name, 'wasm', fn);
  active = true;
  return NATIVE_KERNEL_NAMES.slice();
}
