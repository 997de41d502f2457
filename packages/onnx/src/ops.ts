/**
 * tfjs kernel → ONNX nodes (opset 17). tfjs tensors are NHWC; ONNX's Conv, ConvTranspose and pooling are NCHW, so
 * those are wrapped in Transposes (onnxruntime's transpose optimizer folds them away). Shapes come from the recording;
 * an axis whose length varies from batch to batch (`dyn`, e.g. the pillars) is carried through, so that Reshape,
 * Slice, Tile and Pad never fix it.
 */
import { windowPadding } from '@bevzoo/core';
import type { KernelCall, TensorRef } from './trace.js';
import { OnnxExportError } from './errors.js';
import type { Attr, DType, Dyn, GraphBuilder, Value } from './graph.js';

export interface Ctx {
  g: GraphBuilder;
  call: KernelCall;
  /** The model and the call, for errors. */
  where: string;
  in(name: string): Value;
  has(name: string): boolean;
  /** Inputs in order (variadic kernels). */
  all(): Value[];
  attr<T = unknown>(name: string): T;
  out: TensorRef[];
  /** Leaf values of an input that is a model variable or constant (null for computed values and graph inputs). */
  constValues(name: string): Float32Array | Int32Array | Uint8Array | null;
  fail(detail: string): never;
}

type Emit = (c: Ctx) => Value[];

const dtypeOf = (c: Ctx, d: string): DType => {
  if (d === 'float32' || d === 'int32' || d === 'bool') return d;
  return c.fail(`dtype ${d}`);
};
const ONNX_CAST: Record<string, number> = { float32: 1, int32: 6, int64: 7, bool: 9 };

/** A value for output `i` of the call with name `name` and the recorded shape. */
function outValue(c: Ctx, name: string, i: number, dyn: Dyn | null): Value {
  const o = c.out[i]!;
  return { name, shape: o.shape, dtype: dtypeOf(c, o.dtype), dyn };
}

const norm = (a: number, rank: number) => (a < 0 ? a + rank : a);
const axesOf = (v: unknown, rank: number): number[] =>
  v == null ? [...Array(rank).keys()] : (Array.isArray(v) ? (v as number[]) : [v as number]).map((a) => norm(a, rank));

/** The varying axis of a broadcasting op's output (inputs aligned to the right). */
function broadcastDyn(c: Ctx, ins: Value[], outRank: number): Dyn | null {
  let dyn: Dyn | null = null;
  for (const v of ins) {
    if (!v.dyn) continue;
    const axis = v.dyn.axis + outRank - v.shape.length;
    if (dyn && dyn.axis !== axis) c.fail('two inputs whose varying axes differ');
    dyn = { ...v.dyn, axis };
  }
  if (dyn) {
    for (const v of ins) {
      if (v.dyn) continue;
      const a = dyn.axis - (outRank - v.shape.length);
      if (a >= 0 && v.shape[a] !== 1) c.fail(`a value of fixed shape [${v.shape}] broadcast against the varying axis ${dyn.axis} (a constant made from the traced batch)`);
    }
  }
  return dyn;
}

const elementwise =
  (op: string, names: string[] = ['a', 'b']): Emit =>
  (c) => {
    const ins = names.map((n) => c.in(n));
    const name = c.g.op(op, ins.map((v) => v.name));
    return [outValue(c, name, 0, broadcastDyn(c, ins, c.out[0]!.shape.length))];
  };
const unary =
  (op: string, attrs?: (c: Ctx) => Record<string, Attr | undefined>): Emit =>
  (c) => {
    const x = c.in('x');
    return [outValue(c, c.g.op(op, [x.name], attrs?.(c) ?? {}), 0, x.dyn)];
  };

/** Reshape `x` to `shape`, the varying axis (if any) written as −1. */
export function reshape(c: Ctx, x: Value, shape: number[], outIndex = 0): Value {
  const g = c.g;
  if (!x.dyn) {
    return { name: g.op('Reshape', [x.name, g.i64(shape)]), shape, dtype: x.dtype, dyn: null };
  }
  const { axis: d, p } = x.dyn;
  const before = x.shape.slice(0, d).reduce((a, b) => a * b, 1);
  const candidates: number[] = [];
  let prefix = 1;
  for (let k = 0; k < shape.length; k++) {
    if (shape[k]! % p === 0 && before % prefix === 0) candidates.push(k);
    prefix *= shape[k]!;
  }
  let pre = 1;
  const prefixes = shape.map((s) => ((pre *= s), pre / s));
  const k = candidates.find((k) => prefixes[k] === before) ?? candidates[0];
  if (k === undefined) c.fail(`reshape of [${x.shape}] (axis ${d} varies) to [${shape}]: no output axis takes the varying length`);
  const target = shape.map((s, i) => (i === k ? -1 : s));
  const name = g.op('Reshape', [x.name, g.i64(target)]);
  void outIndex;
  return { name, shape, dtype: x.dtype, dyn: { ...x.dyn, axis: k, factor: shape[k]! / p } };
}

function checkFixedAxis(c: Ctx, x: Value, axis: number, what: string): void {
  if (x.dyn && x.dyn.axis === axis) c.fail(`${what} along the varying axis ${axis}`);
}

/** NHWC → NCHW and back. */
const toNCHW = (g: GraphBuilder, x: string) => g.op('Transpose', [x], { perm: [0, 3, 1, 2] }, 'nchw');
const toNHWC = (g: GraphBuilder, x: string) => g.op('Transpose', [x], { perm: [0, 2, 3, 1] }, 'nhwc');

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number]);

/** An activation of a fused kernel applied to `y`. */
function activation(c: Ctx, y: string): string {
  const a = (c.attr<string>('activation') ?? 'linear') || 'linear';
  const g = c.g;
  switch (a) {
    case 'linear':
      return y;
    case 'relu':
      return g.op('Relu', [y]);
    case 'relu6':
      return g.op('Clip', [y, g.scalar('float32', 0), g.scalar('float32', 6)]);
    case 'sigmoid':
      return g.op('Sigmoid', [y]);
    case 'elu':
      return g.op('Elu', [y], { alpha: { float: 1 } });
    case 'leakyrelu':
      return g.op('LeakyRelu', [y], { alpha: { float: c.attr<number>('leakyreluAlpha') ?? 0.2 } });
    case 'prelu':
      return g.op('PRelu', [y, c.in('preluActivationWeights').name]);
    default:
      return c.fail(`activation ${a}`);
  }
}

/** A filter in HWIO (or HWIM) as an OIHW initializer when it is a leaf, else by a Transpose node. */
function filterOIHW(c: Ctx, depthwise: boolean): string {
  const f = c.in('filter');
  const [kh, kw, ci, co] = f.shape as [number, number, number, number];
  const values = c.constValues('filter');
  // Depthwise: HWIM → [C·M, 1, kh, kw]; regular: HWIO → OIHW; a transposed convolution reads the same OIHW view as IOHW.
  const O = depthwise ? ci * co : co, I = depthwise ? 1 : ci;
  if (values) {
    const out = new Float32Array(values.length);
    for (let h = 0; h < kh; h++)
      for (let w = 0; w < kw; w++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) {
            const src = ((h * kw + w) * ci + i) * co + o;
            const oo = depthwise ? i * co + o : o, ii = depthwise ? 0 : i;
            out[((oo * I + ii) * kh + h) * kw + w] = values[src]!;
          }
    return c.g.initializer(`${f.name}.oihw`, [O, I, kh, kw], 'float32', out);
  }
  if (depthwise) return c.g.op('Reshape', [c.g.op('Transpose', [f.name], { perm: [2, 3, 0, 1] }), c.g.i64([O, 1, kh, kw])]);
  return c.g.op('Transpose', [f.name], { perm: [3, 2, 0, 1] });
}

function conv2d(c: Ctx, depthwise: boolean, fused: boolean): Value[] {
  if ((c.attr<string>('dataFormat') ?? 'NHWC') !== 'NHWC') c.fail(`dataFormat ${c.attr('dataFormat')}`);
  const x = c.in('x');
  if (x.dyn) c.fail('a convolution of a value with a varying axis');
  const [, inH, inW, inC] = x.shape as [number, number, number, number];
  const [kh, kw] = c.in('filter').shape as [number, number];
  const [, outH, outW] = c.out[0]!.shape as [number, number, number];
  const s = pair(c.attr('strides'));
  const d = pair(c.attr('dilations') ?? 1);
  const [pt, pb, pl, pr] = windowPadding(c, inH, inW, [kh, kw], s, d, outH, outW);
  const g = c.g;
  const ins = [toNCHW(g, x.name), filterOIHW(c, depthwise)];
  if (fused && c.has('bias')) {
    const b = c.in('bias');
    ins.push(b.shape.length === 1 ? b.name : g.op('Reshape', [b.name, g.i64([-1])]));
  }
  const y = g.op('Conv', ins, { kernel_shape: [kh, kw], strides: s, dilations: d, pads: [pt, pl, pb, pr], group: depthwise ? inC : 1 });
  const out = toNHWC(g, y);
  return [outValue(c, fused ? activation(c, out) : out, 0, null)];
}

const triple = (v: unknown): [number, number, number] => (Array.isArray(v) ? [v[0] as number, v[1] as number, v[2] as number] : [v as number, v as number, v as number]);

/**
 * Conv3D (x NDHWC, filter [kd, kh, kw, I, O]): NDHWC → NCDHW, Conv with the filter as OIDHW, back to NDHWC. Padding
 * 'valid', 'same' (TF's split: the extra cell at the end) or a number.
 */
function conv3d(c: Ctx): Value[] {
  if ((c.attr<string>('dataFormat') ?? 'NDHWC') !== 'NDHWC') c.fail(`dataFormat ${c.attr('dataFormat')}`);
  const x = c.in('x');
  if (x.dyn) c.fail('a convolution of a value with a varying axis');
  const f = c.in('filter');
  const [kd, kh, kw, ci, co] = f.shape as [number, number, number, number, number];
  const inS = x.shape.slice(1, 4), outS = c.out[0]!.shape.slice(1, 4);
  const k = [kd, kh, kw];
  const st = triple(c.attr('strides'));
  const dl = triple(c.attr('dilations') ?? 1);
  const pad = c.attr<unknown>('pad');
  const begin: number[] = [], end: number[] = [];
  for (let a = 0; a < 3; a++) {
    if (pad === 'valid') begin.push(0), end.push(0);
    else if (typeof pad === 'number') begin.push(pad), end.push(pad);
    else if (pad === 'same') {
      const total = Math.max((outS[a]! - 1) * st[a]! + (k[a]! - 1) * dl[a]! + 1 - inS[a]!, 0);
      begin.push(Math.floor(total / 2)), end.push(total - Math.floor(total / 2));
    } else c.fail(`pad ${JSON.stringify(pad)}`);
  }
  const g = c.g;
  const values = c.constValues('filter');
  let w: string;
  if (values) {
    const out = new Float32Array(values.length);
    for (let d = 0; d < kd; d++)
      for (let h = 0; h < kh; h++)
        for (let ww = 0; ww < kw; ww++)
          for (let i = 0; i < ci; i++)
            for (let o = 0; o < co; o++) out[(((o * ci + i) * kd + d) * kh + h) * kw + ww] = values[(((d * kh + h) * kw + ww) * ci + i) * co + o]!;
    w = g.initializer(`${f.name}.oidhw`, [co, ci, kd, kh, kw], 'float32', out);
  } else w = g.op('Transpose', [f.name], { perm: [4, 3, 0, 1, 2] });
  const y = g.op('Conv', [g.op('Transpose', [x.name], { perm: [0, 4, 1, 2, 3] }, 'ncdhw'), w], { kernel_shape: k, strides: st, dilations: dl, pads: [...begin, ...end], group: 1 });
  return [outValue(c, g.op('Transpose', [y], { perm: [0, 2, 3, 4, 1] }, 'ndhwc'), 0, null)];
}

/** Conv2DBackpropInput in a forward pass: a transposed convolution (dy NHWC, filter HWIO of the forward convolution). */
function convTranspose2d(c: Ctx): Value[] {
  if ((c.attr<string>('dataFormat') ?? 'NHWC') !== 'NHWC') c.fail(`dataFormat ${c.attr('dataFormat')}`);
  const dy = c.in('dy');
  if (dy.dyn) c.fail('a transposed convolution of a value with a varying axis');
  const [, dyH, dyW] = dy.shape as [number, number, number];
  const [kh, kw] = c.in('filter').shape as [number, number];
  const [, H, W] = c.attr<number[]>('inputShape') as [number, number, number];
  const s = pair(c.attr('strides'));
  const [pt, , pl] = windowPadding(c, H, W, [kh, kw], s, [1, 1], dyH, dyW);
  // Full output (dy−1)·s + k, cropped by pt/pl at the start and to H, W at the end (or extended by output_padding).
  const full = (n: number, st: number, k: number) => (n - 1) * st + k;
  const pbEff = full(dyH, s[0], kh) - pt - H, prEff = full(dyW, s[1], kw) - pl - W;
  const g = c.g;
  const y = g.op('ConvTranspose', [toNCHW(g, dy.name), filterOIHW(c, false)], {
    kernel_shape: [kh, kw],
    strides: s,
    pads: [pt, pl, Math.max(pbEff, 0), Math.max(prEff, 0)],
    output_padding: pbEff < 0 || prEff < 0 ? [Math.max(-pbEff, 0), Math.max(-prEff, 0)] : undefined,
  });
  return [outValue(c, toNHWC(g, y), 0, null)];
}

function pool2d(c: Ctx, kind: 'max' | 'avg'): Value[] {
  const x = c.in('x');
  if (x.dyn) c.fail('pooling of a value with a varying axis');
  const [, inH, inW] = x.shape as [number, number, number];
  const [, outH, outW] = c.out[0]!.shape as [number, number, number];
  const k = pair(c.attr('filterSize'));
  const s = pair(c.attr('strides'));
  const [pt, pb, pl, pr] = windowPadding(c, inH, inW, k, s, [1, 1], outH, outW);
  const g = c.g;
  const y = g.op(kind === 'max' ? 'MaxPool' : 'AveragePool', [toNCHW(g, x.name)], {
    kernel_shape: k,
    strides: s,
    pads: [pt, pl, pb, pr],
    ...(kind === 'avg' ? { count_include_pad: 0 } : {}),
  });
  return [outValue(c, toNHWC(g, y), 0, null)];
}

function reduce(op: string, axisAttr = 'axis', axesAsInput = false): Emit {
  return (c) => {
    const x = c.in('x');
    const rank = x.shape.length;
    const ax = axesOf(c.attr(axisAttr), rank);
    const keep = c.attr('keepDims') ? 1 : 0;
    if (ax.length === 0) return [outValue(c, c.g.op('Identity', [x.name]), 0, x.dyn)];
    let dyn: Dyn | null = null;
    if (x.dyn && !ax.includes(x.dyn.axis)) dyn = { ...x.dyn, axis: keep ? x.dyn.axis : x.dyn.axis - ax.filter((a) => a < x.dyn!.axis).length };
    const name = axesAsInput ? c.g.op(op, [x.name, c.g.i64(ax)], { keepdims: keep }) : c.g.op(op, [x.name], { axes: ax, keepdims: keep });
    return [outValue(c, name, 0, dyn)];
  };
}

function matmul(c: Ctx, fused: boolean): Value[] {
  const g = c.g;
  let a = c.in('a'), b = c.in('b');
  const t = (v: Value, flag: string): string => {
    if (!c.attr(flag)) return v.name;
    if (v.dyn && v.dyn.axis >= v.shape.length - 2) c.fail(`${flag} of a value whose varying axis is a matrix axis`);
    const perm = [...v.shape.keys()];
    [perm[perm.length - 1], perm[perm.length - 2]] = [perm[perm.length - 2]!, perm[perm.length - 1]!];
    return g.op('Transpose', [v.name], { perm });
  };
  if (b.dyn) c.fail('a matrix product whose right factor has a varying axis');
  const outRank = c.out[0]!.shape.length;
  const dyn = a.dyn ? { ...a.dyn, axis: a.dyn.axis + outRank - a.shape.length } : null;
  let y = g.op('MatMul', [t(a, 'transposeA'), t(b, 'transposeB')]);
  if (fused && c.has('bias')) y = g.op('Add', [y, c.in('bias').name]);
  if (fused) y = activation(c, y);
  void a, b;
  return [outValue(c, y, 0, dyn)];
}

function slice(c: Ctx): Value[] {
  const x = c.in('x');
  const rank = x.shape.length;
  const beginA = c.attr<number | number[]>('begin');
  const begin = Array.isArray(beginA) ? beginA : [beginA];
  const out = c.out[0]!.shape;
  const starts: number[] = [], ends: number[] = [], axes: number[] = [];
  for (let i = 0; i < rank; i++) {
    const b = begin[i] ?? 0;
    if (b === 0 && out[i] === x.shape[i]) continue; // whole axis
    checkFixedAxis(c, x, i, 'a slice');
    starts.push(b), ends.push(b + out[i]!), axes.push(i);
  }
  if (axes.length === 0) return [outValue(c, c.g.op('Identity', [x.name]), 0, x.dyn)];
  const g = c.g;
  return [outValue(c, g.op('Slice', [x.name, g.i64(starts), g.i64(ends), g.i64(axes)]), 0, x.dyn)];
}

function stridedSlice(c: Ctx): Value[] {
  const x = c.in('x');
  const shape = x.shape;
  const begin = c.attr<number[]>('begin'), end = c.attr<number[]>('end');
  const strides = c.attr<number[]>('strides') ?? begin.map(() => 1);
  if (c.attr<number>('ellipsisMask') || c.attr<number>('newAxisMask')) c.fail('ellipsisMask / newAxisMask');
  const bm = c.attr<number>('beginMask') ?? 0, em = c.attr<number>('endMask') ?? 0;
  const starts: number[] = [], ends: number[] = [], axes: number[] = [], steps: number[] = [];
  for (let i = 0; i < Math.min(begin.length, shape.length); i++) {
    const n = shape[i]!, st = strides[i] ?? 1;
    if (st <= 0) c.fail(`stride ${st}`);
    const clampI = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    const b = bm & (1 << i) ? 0 : clampI(begin[i]!);
    const sm = (c.attr<number>('shrinkAxisMask') ?? 0) & (1 << i);
    const e = sm ? b + 1 : em & (1 << i) ? n : clampI(end[i]!);
    if (b === 0 && e === n && st === 1) continue;
    checkFixedAxis(c, x, i, 'a strided slice');
    starts.push(b), ends.push(e), axes.push(i), steps.push(st);
  }
  const g = c.g;
  let y: Value = axes.length
    ? { name: g.op('Slice', [x.name, g.i64(starts), g.i64(ends), g.i64(axes), g.i64(steps)]), shape: [], dtype: x.dtype, dyn: x.dyn }
    : { name: x.name, shape: [], dtype: x.dtype, dyn: x.dyn };
  // the slice's own shape, then the kernel's (shrunk axes removed)
  y = { ...y, shape: shape.map((n, i) => { const j = axes.indexOf(i); return j < 0 ? n : Math.ceil((ends[j]! - starts[j]!) / steps[j]!); }) };
  const outShape = c.out[0]!.shape;
  if (y.shape.join() !== outShape.join()) y = reshape(c, y, outShape);
  else if (y.name === x.name) y = { ...y, name: g.op('Identity', [x.name]) };
  return [{ ...y, dtype: dtypeOf(c, c.out[0]!.dtype) }];
}

function concat(c: Ctx): Value[] {
  const ins = c.all();
  const rank = c.out[0]!.shape.length;
  const axis = norm(c.attr<number>('axis'), rank);
  const dyn = broadcastDynSameRank(c, ins);
  if (dyn && dyn.axis === axis) c.fail('a concatenation along the varying axis');
  return [outValue(c, c.g.op('Concat', ins.map((v) => v.name), { axis }), 0, dyn)];
}

/** Inputs of one rank that must agree on the varying axis (concat, pack). */
function broadcastDynSameRank(c: Ctx, ins: Value[]): Dyn | null {
  const d = ins.find((v) => v.dyn)?.dyn ?? null;
  if (d && ins.some((v) => !v.dyn || v.dyn.axis !== d.axis)) c.fail('inputs of which only some have the varying axis');
  return d;
}

function padV2(c: Ctx): Value[] {
  const x = c.in('x');
  const p = c.attr<[number, number][]>('paddings');
  p.forEach((pp, i) => (pp[0] || pp[1] ? checkFixedAxis(c, x, i, 'padding') : undefined));
  const g = c.g;
  const pads = [...p.map((q) => q[0]), ...p.map((q) => q[1])];
  const value = g.scalar(x.dtype, c.attr<number>('constantValue') ?? 0);
  return [outValue(c, g.op('Pad', [x.name, g.i64(pads), value], { mode: 'constant' }), 0, x.dyn)];
}

/**
 * tf.unsortedSegmentSum(x [N, ...], ids [N], S): a ScatterND with reduction add into zeros [S, ...] (ids outside
 * [0, S) are not allowed here: tfjs drops them, ScatterND refuses them).
 */
function unsortedSegmentSum(c: Ctx): Value[] {
  const x = c.in('x'), ids = c.in('segmentIds');
  if (ids.shape.length !== 1) c.fail(`segment ids of rank ${ids.shape.length} (rank 1 handled)`);
  const g = c.g;
  const outShape = c.out[0]!.shape;
  const zeros = g.op('ConstantOfShape', [g.i64(outShape)], { value: { tensor: { name: '', dims: [1], dataType: x.dtype === 'float32' ? 1 : 6, rawData: new Uint8Array(4) } } });
  const idx = g.op('Unsqueeze', [g.op('Cast', [ids.name], { to: 7 }), g.i64([1])]);
  return [outValue(c, g.op('ScatterND', [zeros, idx, x.name], { reduction: 'add' }), 0, null)];
}

/** tf.scatterND(indices [..., K], updates, shape): zeros of `shape` with updates added at the indices. */
function scatterNd(c: Ctx): Value[] {
  const idx = c.in('indices'), upd = c.in('updates');
  const g = c.g;
  const shape = c.attr<number[]>('shape');
  const zeros = g.op('ConstantOfShape', [g.i64(shape)], { value: { tensor: { name: '', dims: [1], dataType: upd.dtype === 'float32' ? 1 : 6, rawData: new Uint8Array(4) } } });
  return [outValue(c, g.op('ScatterND', [zeros, g.op('Cast', [idx.name], { to: 7 }), upd.name], { reduction: 'add' }), 0, null)];
}

function fusedBatchNorm(c: Ctx): Value[] {
  const g = c.g;
  const x = c.in('x');
  const eps = c.attr<number>('varianceEpsilon') ?? 1e-3;
  const C = x.shape[x.shape.length - 1]!;
  const mean = c.constValues('mean'), variance = c.constValues('variance');
  const scale = c.has('scale') ? c.constValues('scale') : new Float32Array(C).fill(1);
  const offset = c.has('offset') ? c.constValues('offset') : new Float32Array(C);
  let y: string;
  if (mean && variance && scale && offset && mean.length === C && variance.length === C && scale.length === C && offset.length === C) {
    // Folded: y = x·a + b with a = scale / √(var + eps), b = offset − mean·a (float64, then float32).
    const a = new Float32Array(C), b = new Float32Array(C);
    for (let i = 0; i < C; i++) {
      a[i] = scale[i]! / Math.sqrt(variance[i]! + eps);
      b[i] = offset[i]! - mean[i]! * a[i]!;
    }
    y = g.op('Add', [g.op('Mul', [x.name, g.initializer('bn_scale', [C], 'float32', a)]), g.initializer('bn_shift', [C], 'float32', b)]);
  } else {
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [c.in('variance').name, g.scalar('float32', eps)])])]);
    y = g.op('Mul', [g.op('Sub', [x.name, c.in('mean').name]), inv]);
    if (c.has('scale')) y = g.op('Mul', [y, c.in('scale').name]);
    if (c.has('offset')) y = g.op('Add', [y, c.in('offset').name]);
  }
  return [outValue(c, y, 0, x.dyn)];
}

function resizeBilinear(c: Ctx): Value[] {
  const x = c.in('images');
  if (x.dyn) c.fail('a resize of a value with a varying axis');
  const ac = !!c.attr('alignCorners'), hp = !!c.attr('halfPixelCenters');
  const g = c.g;
  const out = c.out[0]!.shape;
  const y = g.op('Resize', [toNCHW(g, x.name), '', '', g.i64([out[0]!, out[3]!, out[1]!, out[2]!])], {
    mode: 'linear',
    coordinate_transformation_mode: ac ? 'align_corners' : hp ? 'half_pixel' : 'asymmetric',
  });
  return [outValue(c, toNHWC(g, y), 0, null)];
}

/**
 * tf.image.resizeNearestNeighbor: ONNX Resize, mode nearest, with tfjs's source pixel: ⌊r·in/out⌋ (asymmetric, floor),
 * ⌊(r + ½)·in/out⌋ with halfPixelCenters (tf_half_pixel_for_nn), round(r·(in − 1)/(out − 1)) with alignCorners.
 */
function resizeNearest(c: Ctx): Value[] {
  const x = c.in('images');
  if (x.dyn) c.fail('a resize of a value with a varying axis');
  const ac = !!c.attr('alignCorners'), hp = !!c.attr('halfPixelCenters');
  if (ac && hp) c.fail('alignCorners with halfPixelCenters');
  const g = c.g;
  const out = c.out[0]!.shape;
  const y = g.op('Resize', [toNCHW(g, x.name), '', '', g.i64([out[0]!, out[3]!, out[1]!, out[2]!])], {
    mode: 'nearest',
    coordinate_transformation_mode: ac ? 'align_corners' : hp ? 'tf_half_pixel_for_nn' : 'asymmetric',
    nearest_mode: ac ? 'round_prefer_ceil' : 'floor',
  });
  return [outValue(c, toNHWC(g, y), 0, null)];
}

function gatherV2(c: Ctx): Value[] {
  if (c.attr<number>('batchDims')) c.fail(`batchDims ${c.attr('batchDims')}`);
  const x = c.in('x'), idx = c.in('indices');
  const axis = norm(c.attr<number>('axis'), x.shape.length);
  checkFixedAxis(c, x, axis, 'a gather');
  let dyn: Dyn | null = null;
  if (x.dyn) dyn = { ...x.dyn, axis: x.dyn.axis < axis ? x.dyn.axis : x.dyn.axis + idx.shape.length - 1 };
  if (idx.dyn) dyn = { ...idx.dyn, axis: axis + idx.dyn.axis };
  return [outValue(c, c.g.op('Gather', [x.name, idx.name], { axis }), 0, dyn)];
}

function transpose(c: Ctx): Value[] {
  const x = c.in('x');
  const perm = c.attr<number[]>('perm');
  const dyn = x.dyn ? { ...x.dyn, axis: perm.indexOf(x.dyn.axis) } : null;
  return [outValue(c, c.g.op('Transpose', [x.name], { perm }), 0, dyn)];
}

function tile(c: Ctx): Value[] {
  const x = c.in('x');
  const reps = c.attr<number[]>('reps');
  reps.forEach((r, i) => (r !== 1 ? checkFixedAxis(c, x, i, 'a tile') : undefined));
  return [outValue(c, c.g.op('Tile', [x.name, c.g.i64(reps)]), 0, x.dyn)];
}

function cast(c: Ctx): Value[] {
  const x = c.in('x');
  const to = c.attr<string>('dtype');
  if (!(to in ONNX_CAST)) c.fail(`cast to ${to}`);
  return [outValue(c, c.g.op('Cast', [x.name], { to: ONNX_CAST[to]! }), 0, x.dyn)];
}

function range(c: Ctx): Value[] {
  const start = c.attr<number>('start'), stop = c.attr<number>('stop'), step = c.attr<number>('step');
  const n = c.out[0]!.shape[0]!;
  const values = Array.from({ length: n }, (_, i) => start + i * step);
  void stop;
  return [outValue(c, c.g.op('Identity', [c.g.constant([n], dtypeOf(c, c.out[0]!.dtype), values)]), 0, null)];
}

function fill(c: Ctx): Value[] {
  const shape = c.attr<number[]>('shape');
  const n = shape.reduce((a, b) => a * b, 1);
  return [outValue(c, c.g.op('Identity', [c.g.constant(shape, dtypeOf(c, c.out[0]!.dtype), new Array(n).fill(c.attr<number>('value')))]), 0, null)];
}

function reshapeKernel(name: string): Emit {
  return (c) => [reshape(c, c.in(name), c.out[0]!.shape)];
}

function pack(c: Ctx): Value[] {
  const ins = c.all();
  const rank = c.out[0]!.shape.length;
  const axis = norm(c.attr<number>('axis'), rank);
  const d = broadcastDynSameRank(c, ins);
  const g = c.g;
  const parts = ins.map((v) => g.op('Unsqueeze', [v.name, g.i64([axis])]));
  return [outValue(c, g.op('Concat', parts, { axis }), 0, d ? { ...d, axis: d.axis >= axis ? d.axis + 1 : d.axis } : null)];
}

function unpack(c: Ctx): Value[] {
  const x = c.in('value');
  const axis = norm(c.attr<number>('axis'), x.shape.length);
  checkFixedAxis(c, x, axis, 'an unstack');
  const g = c.g;
  const n = x.shape[axis]!;
  const parts = Array.from({ length: n }, () => g.fresh('unpack'));
  g.node('Split', [x.name, g.i64(new Array(n).fill(1))], parts, { axis });
  const dyn = x.dyn ? { ...x.dyn, axis: x.dyn.axis > axis ? x.dyn.axis - 1 : x.dyn.axis } : null;
  return parts.map((p, i) => outValue(c, g.op('Squeeze', [p, g.i64([axis])]), i, dyn));
}

function splitV(c: Ctx): Value[] {
  const x = c.in('x');
  const axis = norm(c.attr<number>('axis'), x.shape.length);
  checkFixedAxis(c, x, axis, 'a split');
  const g = c.g;
  const sizes = c.out.map((o) => o.shape[axis]!);
  const parts = sizes.map(() => g.fresh('split'));
  g.node('Split', [x.name, g.i64(sizes)], parts, { axis });
  return parts.map((p, i) => outValue(c, p, i, x.dyn));
}

function select(c: Ctx): Value[] {
  const cond = c.in('condition'), t = c.in('t'), e = c.in('e');
  const g = c.g;
  let cn = cond.name;
  if (cond.shape.length === 1 && t.shape.length > 1) cn = reshape(c, cond, [cond.shape[0]!, ...new Array(t.shape.length - 1).fill(1)]).name;
  return [outValue(c, g.op('Where', [cn, t.name, e.name]), 0, broadcastDyn(c, [t, e], c.out[0]!.shape.length))];
}

function clip(c: Ctx): Value[] {
  const x = c.in('x');
  const g = c.g;
  return [outValue(c, g.op('Clip', [x.name, g.scalar('float32', c.attr<number>('clipValueMin')), g.scalar('float32', c.attr<number>('clipValueMax'))]), 0, x.dyn)];
}

function softmax(c: Ctx): Value[] {
  const x = c.in('logits');
  const axis = norm(c.attr<number>('dim') ?? -1, x.shape.length);
  checkFixedAxis(c, x, axis, 'a softmax');
  return [outValue(c, c.g.op('Softmax', [x.name], { axis }), 0, x.dyn)];
}

function argMinMax(op: 'ArgMax' | 'ArgMin'): Emit {
  return (c) => {
    const x = c.in('x');
    const axis = norm(axesOf(c.attr('axis'), x.shape.length)[0]!, x.shape.length);
    checkFixedAxis(c, x, axis, op);
    const y = c.g.op('Cast', [c.g.op(op, [x.name], { axis, keepdims: 0 })], { to: 6 });
    return [outValue(c, y, 0, x.dyn ? { ...x.dyn, axis: x.dyn.axis > axis ? x.dyn.axis - 1 : x.dyn.axis } : null)];
  };
}

function gatherNd(c: Ctx): Value[] {
  const p = c.in('params'), idx = c.in('indices');
  if (p.dyn) c.fail('a gather from a value with a varying axis');
  const g = c.g;
  return [outValue(c, g.op('GatherND', [p.name, g.op('Cast', [idx.name], { to: 7 })]), 0, idx.dyn)];
}

/** Kernel name → ONNX emitter. */
export const KERNELS: Record<string, Emit> = {
  Add: elementwise('Add'),
  Sub: elementwise('Sub'),
  Multiply: elementwise('Mul'),
  RealDiv: elementwise('Div'),
  Maximum: elementwise('Max'),
  Minimum: elementwise('Min'),
  Pow: elementwise('Pow'),
  Equal: elementwise('Equal'),
  Greater: elementwise('Greater'),
  GreaterEqual: elementwise('GreaterOrEqual'),
  Less: elementwise('Less'),
  LessEqual: elementwise('LessOrEqual'),
  LogicalAnd: elementwise('And'),
  LogicalOr: elementwise('Or'),
  LogicalNot: unary('Not'),
  SquaredDifference: (c) => {
    const a = c.in('a'), b = c.in('b');
    const d = c.g.op('Sub', [a.name, b.name]);
    return [outValue(c, c.g.op('Mul', [d, d]), 0, broadcastDyn(c, [a, b], c.out[0]!.shape.length))];
  },
  AddN: (c) => {
    const ins = c.all();
    return [outValue(c, c.g.op('Sum', ins.map((v) => v.name)), 0, broadcastDyn(c, ins, c.out[0]!.shape.length))];
  },
  Abs: unary('Abs'),
  Neg: unary('Neg'),
  Sign: unary('Sign'),
  Exp: unary('Exp'),
  Log: unary('Log'),
  Sqrt: unary('Sqrt'),
  Rsqrt: (c) => {
    const x = c.in('x');
    return [outValue(c, c.g.op('Reciprocal', [c.g.op('Sqrt', [x.name])]), 0, x.dyn)];
  },
  Square: (c) => {
    const x = c.in('x');
    return [outValue(c, c.g.op('Mul', [x.name, x.name]), 0, x.dyn)];
  },
  Reciprocal: unary('Reciprocal'),
  Sigmoid: unary('Sigmoid'),
  Tanh: unary('Tanh'),
  Sin: unary('Sin'),
  Cos: unary('Cos'),
  Erf: unary('Erf'),
  Floor: unary('Floor'),
  Ceil: unary('Ceil'),
  Round: unary('Round'),
  Relu: unary('Relu'),
  Relu6: (c) => {
    const x = c.in('x');
    return [outValue(c, c.g.op('Clip', [x.name, c.g.scalar('float32', 0), c.g.scalar('float32', 6)]), 0, x.dyn)];
  },
  Elu: unary('Elu', () => ({ alpha: { float: 1 } })),
  Softplus: unary('Softplus'),
  LeakyRelu: unary('LeakyRelu', (c) => ({ alpha: { float: c.attr<number>('alpha') } })),
  Prelu: (c) => {
    const x = c.in('x');
    return [outValue(c, c.g.op('PRelu', [x.name, c.in('alpha').name]), 0, x.dyn)];
  },
  ClipByValue: clip,
  Cast: cast,
  Identity: (c) => {
    const x = c.in('x');
    return [outValue(c, c.g.op('Identity', [x.name]), 0, x.dyn)];
  },
  Select: select,
  Sum: reduce('ReduceSum', 'axis', true),
  Mean: reduce('ReduceMean'),
  Max: reduce('ReduceMax', 'reductionIndices'),
  Min: reduce('ReduceMin'),
  Prod: reduce('ReduceProd'),
  ArgMax: argMinMax('ArgMax'),
  ArgMin: argMinMax('ArgMin'),
  Softmax: softmax,
  Reshape: reshapeKernel('x'),
  ExpandDims: reshapeKernel('input'),
  Squeeze: reshapeKernel('x'),
  Transpose: transpose,
  Concat: concat,
  Pack: pack,
  Unpack: unpack,
  Slice: slice,
  StridedSlice: stridedSlice,
  SplitV: splitV,
  Tile: tile,
  PadV2: padV2,
  GatherV2: gatherV2,
  GatherNd: gatherNd,
  ScatterNd: scatterNd,
  UnsortedSegmentSum: unsortedSegmentSum,
  Range: range,
  Fill: fill,
  BatchMatMul: (c) => matmul(c, false),
  _FusedMatMul: (c) => matmul(c, true),
  Conv2D: (c) => conv2d(c, false, false),
  FusedConv2D: (c) => conv2d(c, false, true),
  DepthwiseConv2dNative: (c) => conv2d(c, true, false),
  FusedDepthwiseConv2D: (c) => conv2d(c, true, true),
  Conv2DBackpropInput: convTranspose2d,
  Conv3D: conv3d,
  ResizeNearestNeighbor: resizeNearest,
  MaxPool: (c) => pool2d(c, 'max'),
  AvgPool: (c) => pool2d(c, 'avg'),
  ResizeBilinear: resizeBilinear,
  FusedBatchNorm: fusedBatchNorm,
};
