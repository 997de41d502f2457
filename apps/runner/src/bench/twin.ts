/**
 * The PyTorch twin of a recorded forward(+loss) (see record.ts): a Python script that replays every recorded kernel
 * call with its torch equivalent, in order, on the same leaves (the model's variables with their values, the
 * batch's constants), so that it is the same model with the same shapes and cannot drift from it. It then times
 * training steps of it (forward+loss, backward + clip_grad_norm_, torch.optim.AdamW with the trainer's settings)
 * and prints one JSON line.
 *
 * Layout: tensors keep tfjs's shapes (NHWC). A convolution views its input as NCHW with `permute(0, 3, 1, 2)`,
 * which on a contiguous NHWC tensor is PyTorch's channels_last memory format (no copy), and views its output back;
 * a filter that is a trained variable is stored as an OIHW channels_last Parameter (HWIO views of it elsewhere),
 * so oneDNN's channels-last convolutions run without reorders, as a channels_last PyTorch model would.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { windowPadding } from '@bevzoo/core';
import { torchEnv, type TorchAllocator } from '@bevzoo/engine';
import type { KernelCall, RecordedGraph, TensorRef } from './record.js';
import type { TorchResult } from './report.js';
import { runForJson } from './child.js';

/** A kernel the twin has no PyTorch mapping for, or a form of a kernel (attributes) it does not handle. */
export class UnmappedKernelError extends Error {
  override name = 'UnmappedKernelError';
  constructor(
    readonly kernel: string,
    detail?: string,
  ) {
    super(
      detail
        ? `kernel ${kernel}: ${detail} — the PyTorch twin does not handle this form (add it in apps/runner/src/bench/twin.ts)`
        : `kernel ${kernel} has no PyTorch mapping in the twin (add one to KERNELS in apps/runner/src/bench/twin.ts)`,
    );
  }
}

/** The optimiser and clipping the tfjs steps use (the trainer's AdamW), for the twin's torch.optim.AdamW. */
export interface TwinSettings {
  model: string;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  clip: number | null;
}

const DTYPES: Record<string, string> = { float32: 'torch.float32', int32: 'torch.int32', bool: 'torch.bool' };

/** What an emitter sees of one call. */
interface Ctx {
  call: KernelCall;
  /** Python expression of input `name` with its recorded shape. */
  in(name: string): string;
  /** Inputs in order (variadic kernels). */
  all(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  attr<T = unknown>(name: string): T;
  out: TensorRef[];
  fail(detail: string): never;
}

type Emit = (c: Ctx) => string;

const py = (v: unknown): string => {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'float("inf")' : v < 0 ? 'float("-inf")' : 'float("nan")';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `(${v.map(py).join(', ')}${v.length === 1 ? ',' : ''})`;
  throw new Error(`cannot write ${typeof v} as Python`);
};
const tuple = (xs: readonly number[]) => py([...xs]);
const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number]);
/** A kernel's axis attribute as non-negative dims; null or undefined = every axis (as tfjs's reductions take it). */
const axes = (v: unknown, rank: number): number[] =>
  v == null ? [...Array(rank).keys()] : (Array.isArray(v) ? (v as number[]) : [v as number]).map((a) => (a < 0 ? a + rank : a));

const ACTIVATIONS: Record<string, (y: string, c: Ctx) => string> = {
  linear: (y) => y,
  relu: (y) => `torch.relu(${y})`,
  relu6: (y) => `torch.clamp(${y}, 0, 6)`,
  sigmoid: (y) => `torch.sigmoid(${y})`,
  elu: (y) => `F.elu(${y})`,
  leakyrelu: (y, c) => `F.leaky_relu(${y}, ${py(c.attr('leakyreluAlpha') ?? 0.2)})`,
  prelu: (y, c) => `_prelu(${y}, ${c.in('preluActivationWeights')})`,
};
function activation(c: Ctx, y: string): string {
  const a = (c.attr<string>('activation') ?? 'linear') || 'linear';
  const f = ACTIVATIONS[a];
  if (!f) c.fail(`activation ${a}`);
  return f(y, c);
}

/** Conv2D, FusedConv2D, DepthwiseConv2dNative (NHWC in, HWIO / HWIM filter). */
function conv2d(c: Ctx, depthwise: boolean, fused: boolean): string {
  if ((c.attr<string>('dataFormat') ?? 'NHWC') !== 'NHWC') c.fail(`dataFormat ${c.attr('dataFormat')}`);
  const [, inH, inW, inC] = c.shape('x');
  const [kh, kw, , mult] = c.shape('filter');
  const [, outH, outW] = c.out[0]!.shape;
  const s = pair(c.attr('strides'));
  const d = pair(c.attr('dilations') ?? 1);
  const [pt, pb, pl, pr] = windowPadding(c, inH!, inW!, [kh!, kw!], s, d, outH!, outW!);
  let x = `${c.in('x')}.permute(0, 3, 1, 2)`;
  let padding = '0';
  let stride = s;
  // A strided 1×1 convolution as the stride-1 convolution of its subsample, as @bevzoo/engine's native kernels run it:
  // libtorch 1.13's weight gradient of a strided 1×1 convolution corrupts its heap when the input has rows past the
  // last window (packages/engine/README.md, "Native kernels").
  const subsample = kh === 1 && kw === 1 && (s[0] > 1 || s[1] > 1);
  if (pt === pb && pl === pr && !subsample) padding = tuple([pt, pl]);
  else if (pt || pb || pl || pr) x = `F.pad(${x}, ${tuple([pl, pr, pt, pb])})`;
  if (subsample) {
    x = `${x}[:, :, :${(outH! - 1) * s[0] + 1}:${s[0]}, :${(outW! - 1) * s[1] + 1}:${s[1]}]`;
    stride = [1, 1];
  }
  const w = depthwise ? `${c.in('filter')}.permute(2, 3, 0, 1).reshape(${inC! * mult!}, 1, ${kh}, ${kw})` : `${c.in('filter')}.permute(3, 2, 0, 1)`;
  const bias = fused && c.has('bias') ? `${c.in('bias')}.reshape(-1)` : 'None';
  const y = `F.conv2d(${x}, ${w}, ${bias}, ${tuple(stride)}, ${padding}, ${tuple(d)}${depthwise ? `, ${inC}` : ''}).permute(0, 2, 3, 1)`;
  return fused ? activation(c, y) : y;
}

/**
 * Conv2DBackpropInput in a forward pass: a transposed convolution (tf.conv2dTranspose; dy = its input, filter HWIO
 * of the convolution it transposes, `inputShape` = its output). PyTorch's conv_transpose2d with the same OIHW view
 * of the filter is exactly that adjoint; tfjs's padding (possibly asymmetric) is cropped off, or zeros added where
 * the forward convolution never reached.
 */
function convTranspose2d(c: Ctx): string {
  if ((c.attr<string>('dataFormat') ?? 'NHWC') !== 'NHWC') c.fail(`dataFormat ${c.attr('dataFormat')}`);
  const [, dyH, dyW] = c.shape('dy');
  const [kh, kw] = c.shape('filter');
  const [, H, W] = c.attr<number[]>('inputShape');
  const s = pair(c.attr('strides'));
  const [pt, pb, pl, pr] = windowPadding(c, H!, W!, [kh!, kw!], s, [1, 1], dyH!, dyW!);
  const full = (n: number, st: number, k: number) => (n - 1) * st + k;
  const [fh, fw] = [full(dyH!, s[0], kh!), full(dyW!, s[1], kw!)];
  const x = `${c.in('dy')}.permute(0, 3, 1, 2)`;
  const w = `${c.in('filter')}.permute(3, 2, 0, 1)`;
  // Symmetric padding that PyTorch's output_padding covers: one call.
  const oph = H! - (fh - 2 * pt);
  const opw = W! - (fw - 2 * pl);
  if (pt === pb && pl === pr && oph >= 0 && oph < s[0] && opw >= 0 && opw < s[1])
    return `F.conv_transpose2d(${x}, ${w}, None, ${tuple(s)}, ${tuple([pt, pl])}, ${tuple([oph, opw])}).permute(0, 2, 3, 1)`;
  return `_crop_pad(F.conv_transpose2d(${x}, ${w}, None, ${tuple(s)}), ${pt}, ${H}, ${pl}, ${W}).permute(0, 2, 3, 1)`;
}

/** MaxPool / AvgPool (NHWC). */
function pool2d(c: Ctx, kind: 'max' | 'avg'): string {
  const [, inH, inW] = c.shape('x');
  const [, outH, outW] = c.out[0]!.shape;
  const k = pair(c.attr('filterSize'));
  const s = pair(c.attr('strides'));
  const [pt, pb, pl, pr] = windowPadding(c, inH!, inW!, k, s, [1, 1], outH!, outW!);
  let x = `${c.in('x')}.permute(0, 3, 1, 2)`;
  if (pt || pb || pl || pr) {
    // tfjs pools over the window inside the input: pad with -inf (max), or average the valid values only.
    if (kind === 'max') x = `F.pad(${x}, ${tuple([pl, pr, pt, pb])}, value=float("-inf"))`;
    else return `_avg_pool_valid(${x}, ${tuple(k)}, ${tuple(s)}, ${tuple([pl, pr, pt, pb])}).permute(0, 2, 3, 1)`;
  }
  return `F.${kind}_pool2d(${x}, ${tuple(k)}, ${tuple(s)}).permute(0, 2, 3, 1)`;
}

const unary = (f: string): Emit => (c) => `${f}(${c.in('x')})`;
const binary = (op: string): Emit => (c) => `(${c.in('a')} ${op} ${c.in('b')})`;
const binaryFn = (f: string): Emit => (c) => `${f}(${c.in('a')}, ${c.in('b')})`;
function reduce(f: string, axisAttr = 'axis'): Emit {
  return (c) => {
    const x = c.in('x');
    const ax = axes(c.attr(axisAttr), c.shape('x').length);
    if (ax.length === 0) return `${x}.clone()`;
    return `${f}(${x}, dim=${tuple(ax)}, keepdim=${py(!!c.attr('keepDims'))})`;
  };
}
/** Reductions torch takes one dim at a time (prod, all, any). */
function reduceEach(f: string): Emit {
  return (c) => {
    let x = c.in('x');
    const ax = axes(c.attr('axis'), c.shape('x').length).sort((a, b) => b - a);
    for (const a of ax) x = `${f}(${x}, dim=${a}, keepdim=True)`;
    return ax.length && !c.attr('keepDims') ? `${x}.reshape(${tuple(c.out[0]!.shape)})` : x;
  };
}

/** Kernel name → PyTorch expression of its output (a tuple expression for kernels with several outputs). */
export const KERNELS: Record<string, Emit> = {
  // elementwise
  Add: binary('+'),
  Sub: binary('-'),
  Multiply: binary('*'),
  RealDiv: (c) => `torch.true_divide(${c.in('a')}, ${c.in('b')})`,
  FloorDiv: (c) => `torch.div(${c.in('a')}, ${c.in('b')}, rounding_mode="floor")`,
  Mod: binaryFn('torch.remainder'),
  Maximum: binaryFn('torch.maximum'),
  Minimum: binaryFn('torch.minimum'),
  Pow: binaryFn('torch.pow'),
  SquaredDifference: (c) => `torch.square(${c.in('a')} - ${c.in('b')})`,
  Atan2: binaryFn('torch.atan2'),
  AddN: (c) => `(${c.all().join(' + ')})`,
  Equal: binary('=='),
  NotEqual: binary('!='),
  Greater: binary('>'),
  GreaterEqual: binary('>='),
  Less: binary('<'),
  LessEqual: binary('<='),
  LogicalAnd: binaryFn('torch.logical_and'),
  LogicalOr: binaryFn('torch.logical_or'),
  LogicalXor: binaryFn('torch.logical_xor'),
  LogicalNot: unary('torch.logical_not'),
  Abs: unary('torch.abs'),
  Neg: unary('torch.neg'),
  Sign: unary('torch.sign'),
  Exp: unary('torch.exp'),
  Expm1: unary('torch.expm1'),
  Log: unary('torch.log'),
  Log1p: unary('torch.log1p'),
  Sqrt: unary('torch.sqrt'),
  Rsqrt: unary('torch.rsqrt'),
  Square: unary('torch.square'),
  Reciprocal: unary('torch.reciprocal'),
  Sigmoid: unary('torch.sigmoid'),
  Tanh: unary('torch.tanh'),
  Sin: unary('torch.sin'),
  Cos: unary('torch.cos'),
  Erf: unary('torch.erf'),
  Floor: unary('torch.floor'),
  Ceil: unary('torch.ceil'),
  Round: unary('torch.round'),
  IsNan: unary('torch.isnan'),
  IsInf: unary('torch.isinf'),
  IsFinite: unary('torch.isfinite'),
  Relu: unary('torch.relu'),
  Relu6: (c) => `torch.clamp(${c.in('x')}, 0, 6)`,
  Elu: unary('F.elu'),
  Selu: unary('F.selu'),
  Softplus: unary('F.softplus'),
  LeakyRelu: (c) => `F.leaky_relu(${c.in('x')}, ${py(c.attr('alpha'))})`,
  Prelu: (c) => `_prelu(${c.in('x')}, ${c.in('alpha')})`,
  Step: (c) => `torch.where(${c.in('x')} > 0, 1.0, ${py(c.attr('alpha'))}).to(${c.in('x')}.dtype)`,
  ClipByValue: (c) => `torch.clamp(${c.in('x')}, ${py(c.attr('clipValueMin'))}, ${py(c.attr('clipValueMax'))})`,
  Cast: (c) => `${c.in('x')}.to(${DTYPES[c.attr<string>('dtype')] ?? c.fail(`dtype ${c.attr('dtype')}`)})`,
  Identity: (c) => c.in('x'),
  ZerosLike: unary('torch.zeros_like'),
  OnesLike: unary('torch.ones_like'),
  Select: (c) => {
    let cond = c.in('condition');
    const cr = c.shape('condition').length;
    const tr = c.shape('t').length;
    if (cr === 1 && tr > 1) cond = `${cond}.reshape(${tuple([c.shape('condition')[0]!, ...Array(tr - 1).fill(1)])})`;
    return `torch.where(${cond}, ${c.in('t')}, ${c.in('e')})`;
  },
  // reductions
  Sum: reduce('torch.sum'),
  Mean: reduce('torch.mean'),
  Max: reduce('torch.amax', 'reductionIndices'),
  Min: reduce('torch.amin'),
  Prod: reduceEach('torch.prod'),
  All: reduceEach('torch.all'),
  Any: reduceEach('torch.any'),
  ArgMax: (c) => `torch.argmax(${c.in('x')}, dim=${py(c.attr('axis'))})`,
  ArgMin: (c) => `torch.argmin(${c.in('x')}, dim=${py(c.attr('axis'))})`,
  Softmax: (c) => `torch.softmax(${c.in('logits')}, dim=${py(c.attr('dim'))})`,
  LogSoftmax: (c) => `torch.log_softmax(${c.in('logits')}, dim=${py(c.attr('axis'))})`,
  Cumsum: (c) => {
    const ax = axes(c.attr('axis'), c.shape('x').length)[0]!;
    let x = c.in('x');
    if (c.attr('reverse')) x = `torch.flip(${x}, (${ax},))`;
    x = `torch.cumsum(${x}, dim=${ax})`;
    if (c.attr('exclusive')) x = `(${x} - ${c.attr('reverse') ? `torch.flip(${c.in('x')}, (${ax},))` : c.in('x')})`;
    return c.attr('reverse') ? `torch.flip(${x}, (${ax},))` : x;
  },
  TopK: (c) => `_topk(${c.in('x')}, ${py(c.attr('k'))}, ${py(c.attr('sorted'))})`,
  // shapes and data movement
  Reshape: (c) => `${c.in('x')}.reshape(${tuple(c.out[0]!.shape)})`,
  ExpandDims: (c) => `${c.in('input')}.reshape(${tuple(c.out[0]!.shape)})`,
  Squeeze: (c) => `${c.in('x')}.reshape(${tuple(c.out[0]!.shape)})`,
  Transpose: (c) => `${c.in('x')}.permute(${tuple(c.attr<number[]>('perm'))})`,
  Concat: (c) => `torch.cat([${c.all().join(', ')}], dim=${axes(c.attr('axis'), c.out[0]!.shape.length)[0]})`,
  Pack: (c) => `torch.stack([${c.all().join(', ')}], dim=${axes(c.attr('axis'), c.out[0]!.shape.length)[0]})`,
  Unpack: (c) => `torch.unbind(${c.in('value')}, dim=${axes(c.attr('axis'), c.shape('value').length)[0]})`,
  Slice: (c) => {
    const begin = Array.isArray(c.attr('begin')) ? c.attr<number[]>('begin') : [c.attr<number>('begin')];
    const shape = c.out[0]!.shape;
    const idx = shape.map((n, i) => `${begin[i] ?? 0}:${(begin[i] ?? 0) + n}`);
    return `${c.in('x')}[${idx.join(', ')}]`;
  },
  StridedSlice: (c) => stridedSlice(c),
  SplitV: (c) => {
    const ax = axes(c.attr('axis'), c.shape('x').length)[0]!;
    return `torch.split(${c.in('x')}, ${py(c.out.map((o) => o.shape[ax]!))}, dim=${ax})`;
  },
  Tile: (c) => `${c.in('x')}.repeat(${tuple(c.attr<number[]>('reps'))})`,
  BroadcastTo: (c) => `${c.in('x')}.expand(${tuple(c.out[0]!.shape)})`,
  Reverse: (c) => `torch.flip(${c.in('x')}, ${tuple(axes(c.attr('dims'), c.shape('x').length))})`,
  PadV2: (c) => `F.pad(${c.in('x')}, ${tuple(c.attr<[number, number][]>('paddings').slice().reverse().flat())}, value=${py(c.attr('constantValue') ?? 0)})`,
  MirrorPad: (c) => `_mirror_pad(${c.in('x')}, ${py(c.attr('paddings'))}, ${py(c.attr('mode'))})`,
  GatherV2: (c) => {
    if (c.attr<number>('batchDims')) c.fail(`batchDims ${c.attr('batchDims')}`);
    const ax = axes(c.attr('axis'), c.shape('x').length)[0]!;
    return `torch.index_select(${c.in('x')}, ${ax}, ${c.in('indices')}.reshape(-1).long()).reshape(${tuple(c.out[0]!.shape)})`;
  },
  GatherNd: (c) => `${c.in('params')}[tuple(${c.in('indices')}.long().unbind(-1))]`,
  ScatterNd: (c) =>
    `torch.zeros(${tuple(c.attr<number[]>('shape'))}, dtype=${c.in('updates')}.dtype).index_put(tuple(${c.in('indices')}.long().unbind(-1)), ${c.in('updates')}, accumulate=True)`,
  UnsortedSegmentSum: (c) => {
    const x = c.shape('x');
    const ids = c.shape('segmentIds');
    const rest = x.slice(ids.length);
    return `_segment_sum(${c.in('x')}.reshape(${tuple([-1, ...rest])}), ${c.in('segmentIds')}.reshape(-1), ${py(c.attr('numSegments'))})`;
  },
  OneHot: (c) => {
    // tfjs gives all-off rows for indices outside [0, depth); F.one_hot refuses them, so they are masked.
    const i = c.in('indices');
    const depth = c.attr<number>('depth');
    const on = py(c.attr('onValue') ?? 1);
    const off = py(c.attr('offValue') ?? 0);
    return `torch.where((F.one_hot(${i}.long().clamp(0, ${depth - 1}), ${depth}) > 0) & ((${i} >= 0) & (${i} < ${depth})).unsqueeze(-1), ${on}, ${off}).to(${DTYPES[c.attr<string>('dtype')] ?? 'torch.int32'})`;
  },
  Fill: (c) => `torch.full(${tuple(c.attr<number[]>('shape'))}, ${py(c.attr('value'))}, dtype=${DTYPES[c.attr<string>('dtype')] ?? 'torch.float32'})`,
  Range: (c) => `torch.arange(${py(c.attr('start'))}, ${py(c.attr('stop'))}, ${py(c.attr('step'))}, dtype=${DTYPES[c.attr<string>('dtype')] ?? 'torch.float32'})`,
  LinSpace: (c) => `torch.linspace(${py(c.attr('start'))}, ${py(c.attr('stop'))}, ${py(c.attr('num'))})`,
  // linear algebra
  BatchMatMul: (c) => matmul(c, false),
  _FusedMatMul: (c) => matmul(c, true),
  Einsum: (c) => `torch.einsum(${py(c.attr('equation'))}, ${c.all().join(', ')})`,
  // convolutions, pooling, resizing, normalisation
  Conv2D: (c) => conv2d(c, false, false),
  FusedConv2D: (c) => conv2d(c, false, true),
  DepthwiseConv2dNative: (c) => conv2d(c, true, false),
  Conv2DBackpropInput: (c) => convTranspose2d(c),
  FusedDepthwiseConv2D: (c) => conv2d(c, true, true),
  MaxPool: (c) => pool2d(c, 'max'),
  AvgPool: (c) => pool2d(c, 'avg'),
  ResizeBilinear: (c) => {
    const [h, w] = c.attr<[number, number]>('size');
    const ac = !!c.attr('alignCorners');
    if (!ac && !c.attr('halfPixelCenters')) return `_resize_bilinear_legacy(${c.in('images')}, ${h}, ${w})`;
    return `F.interpolate(${c.in('images')}.permute(0, 3, 1, 2), size=(${h}, ${w}), mode="bilinear", align_corners=${py(ac)}).permute(0, 2, 3, 1)`;
  },
  FusedBatchNorm: (c) => {
    // Inference form with given moments (in training, the moments come from earlier calls and carry gradients).
    let y = `(${c.in('x')} - ${c.in('mean')}) * torch.rsqrt(${c.in('variance')} + ${py(c.attr('varianceEpsilon'))})`;
    if (c.has('scale')) y = `${y} * ${c.in('scale')}`;
    if (c.has('offset')) y = `(${y} + ${c.in('offset')})`;
    return y;
  },
  // a host copy that cuts the gradient (record.ts, core's KernelTrace)
  BevzooDetach: (c) => `${c.in('x')}.detach()`,
  // @bevzoo/engine's fused training batch norm (channels last, any rank): y, batch mean, 1/√(biased var + eps).
  BevzooBatchNormTraining: (c) => {
    const eps = c.attr('epsilon') ?? c.attr('eps') ?? c.attr('varianceEpsilon') ?? 1e-5;
    const bn = `_bn_train(${c.in('x')}, ${c.has('scale') ? c.in('scale') : 'None'}, ${c.has('offset') ? c.in('offset') : 'None'}, ${py(eps)})`;
    return c.out.length === 1 ? `${bn}[0]` : bn;
  },
};

function matmul(c: Ctx, fused: boolean): string {
  const a = c.attr('transposeA') ? `${c.in('a')}.transpose(-1, -2)` : c.in('a');
  const b = c.attr('transposeB') ? `${c.in('b')}.transpose(-1, -2)` : c.in('b');
  let y = `torch.matmul(${a}, ${b})`;
  if (fused && c.has('bias')) y = `(${y} + ${c.in('bias')})`;
  return fused ? activation(c, y) : y;
}

/** tfjs StridedSlice without ellipsis / new axes: per-axis begin, end and positive strides, masks applied. */
function stridedSlice(c: Ctx): string {
  const shape = c.shape('x');
  const begin = c.attr<number[]>('begin');
  const end = c.attr<number[]>('end');
  const strides = c.attr<number[]>('strides') ?? begin.map(() => 1);
  if (c.attr<number>('ellipsisMask') || c.attr<number>('newAxisMask')) c.fail('ellipsisMask / newAxisMask');
  const bm = c.attr<number>('beginMask') ?? 0;
  const em = c.attr<number>('endMask') ?? 0;
  const sm = c.attr<number>('shrinkAxisMask') ?? 0;
  const idx: string[] = [];
  for (let i = 0; i < shape.length; i++) {
    const n = shape[i]!;
    if (i >= begin.length) {
      idx.push(':');
      continue;
    }
    const st = strides[i] ?? 1;
    if (st <= 0) c.fail(`stride ${st}`);
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    const b = bm & (1 << i) ? 0 : norm(begin[i]!);
    if (sm & (1 << i)) {
      idx.push(String(b));
      continue;
    }
    const e = em & (1 << i) ? n : norm(end[i]!);
    idx.push(`${b}:${e}${st !== 1 ? `:${st}` : ''}`);
  }
  return `${c.in('x')}[${idx.join(', ')}].reshape(${tuple(c.out[0]!.shape)})`;
}

/** The Python helpers the generated forward uses. */
const PRELUDE = String.raw`
def _prelu(x, a):
    return torch.where(x > 0, x, x * a)

def _topk(x, k, sorted_):
    v, i = torch.topk(x, k, dim=-1, sorted=sorted_)
    return v, i.to(torch.int32)

def _segment_sum(x, ids, n):
    ids = ids.long()
    keep = (ids >= 0) & (ids < n)
    if not bool(keep.all()):
        x, ids = x[keep], ids[keep]
    return torch.zeros((n,) + tuple(x.shape[1:]), dtype=x.dtype).index_add(0, ids, x)

def _mirror_pad(x, pads, mode):
    for ax in range(x.dim()):
        b, a = pads[ax]
        if b == 0 and a == 0:
            continue
        n = x.shape[ax]
        off = 1 if mode == "reflect" else 0
        before = torch.flip(x.narrow(ax, off, b), (ax,)) if b else None
        after = torch.flip(x.narrow(ax, n - a - off, a), (ax,)) if a else None
        x = torch.cat([t for t in (before, x, after) if t is not None], dim=ax)
    return x

def _crop_pad(y, top, h, left, w):
    # rows top .. top + h and columns left .. left + w of an NCHW tensor, zeros beyond its end
    y = y[:, :, top:top + h, left:left + w]
    return F.pad(y, (0, w - y.shape[3], 0, h - y.shape[2])) if y.shape[2] < h or y.shape[3] < w else y

def _avg_pool_valid(x, k, s, pads):
    ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
    num = F.avg_pool2d(F.pad(x, pads), k, s, divisor_override=1)
    den = F.avg_pool2d(F.pad(ones, pads), k, s, divisor_override=1)
    return num / den

def _resize_bilinear_legacy(x, h, w):
    # TF's resize without align_corners or half-pixel centres: src = dst * in / out.
    def axis(t, ax, out):
        n = t.shape[ax]
        src = torch.arange(out, dtype=torch.float32) * (n / out)
        lo = src.floor().clamp(max=n - 1)
        hi = (lo + 1).clamp(max=n - 1)
        f = (src - lo).reshape([-1 if d == ax else 1 for d in range(t.dim())])
        a = t.index_select(ax, lo.long())
        b = t.index_select(ax, hi.long())
        return a + (b - a) * f
    return axis(axis(x, 1, h), 2, w)

def _bn_train(x, scale, offset, eps):
    # PyTorch's own training batch norm (oneDNN / ATen), on a channels_last view for NHWC: (y, mean, invstd).
    c = x.shape[-1]
    if x.dim() == 4:
        y, mean, invstd = torch.native_batch_norm(x.permute(0, 3, 1, 2), scale, offset, None, None, True, 0.0, eps)
        return y.permute(0, 2, 3, 1), mean, invstd
    y, mean, invstd = torch.native_batch_norm(x.reshape(-1, c), scale, offset, None, None, True, 0.0, eps)
    return y.reshape(x.shape), mean, invstd
`;

const TIMER = String.raw`
def main():
    torch.set_num_threads(THREADS)
    params = [p for p in PARAMS]
    opt = torch.optim.AdamW(params, lr=SETTINGS["lr"], betas=tuple(SETTINGS["betas"]), eps=SETTINGS["eps"], weight_decay=SETTINGS["weightDecay"])
    clip = SETTINGS["clip"]
    fwd, fwd_bwd, opt_ms = [], [], []
    first = None
    for i in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        with torch.no_grad():
            l = forward()
            v = float(l.item())
        a = (time.perf_counter() - t0) * 1000
        if first is None:
            first = v
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        l = forward()
        l.backward()
        torch.nn.utils.clip_grad_norm_(params, clip if clip else float("inf"))
        float(l.item())
        b = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        opt.step()
        float(params[-1].reshape(-1)[0].item()) if params else None
        c = (time.perf_counter() - t0) * 1000
        if i >= WARMUP:
            fwd.append(a); fwd_bwd.append(b); opt_ms.append(c)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "firstLoss": first, "fwd": fwd, "fwdBwd": fwd_bwd, "opt": opt_ms,
                      "layout": "NHWC tensors; convolutions on channels_last views, filters stored OIHW channels_last"}))

if __name__ == "__main__":
    main()
`;

/**
 * tfjs's training batch norm as the nn layers build it — `tf.moments` (Mean of x; Cast, Sub of the mean, Square,
 * Mean) then FusedBatchNorm with those moments — is PyTorch's one training batch norm: the same values and the same
 * gradient (through the batch mean and variance). Where the moments feed nothing else, the twin runs
 * `torch.native_batch_norm` instead of the five calls, as a PyTorch model would. Returns the calls to run.
 */
export function fuseBatchNorms(calls: readonly KernelCall[]): KernelCall[] {
  // A call whose output shares its input's data (a reshape) is an alias: look through it.
  const alias = (c: KernelCall) => c.outputs.length === 1 && c.inputs.some(([, r]) => r.key === c.outputs[0]!.key);
  const producers = new Map<string, number[]>(); // key → indices of the calls that made it, in order
  const uses = new Map<string, number>();
  for (const c of calls) if (!alias(c)) for (const [, r] of c.inputs) uses.set(r.key, (uses.get(r.key) ?? 0) + 1);
  const dropKeys = new Set<string>();
  const out = [...calls];
  const made = (key: string, kernel: string, before: number): KernelCall | undefined => {
    const list = producers.get(key) ?? [];
    for (let k = list.length - 1; k >= 0; k--) {
      const c = calls[list[k]!]!;
      if (list[k]! >= before || alias(c)) continue;
      return c.kernel === kernel ? c : undefined;
    }
    return undefined;
  };
  const input = (c: KernelCall, n: string) => c.inputs.find(([k]) => k === n)?.[1];
  const overAllButLast = (c: KernelCall) => {
    const rank = c.inputs[0]![1].shape.length;
    const ax = axes(c.attrs.axis, rank).sort((a, b) => a - b);
    return ax.length === rank - 1 && ax.every((a, i) => a === i);
  };
  calls.forEach((c, i) => {
    if (c.kernel === 'FusedBatchNorm' && c.outputs.length === 1) {
      const x = input(c, 'x');
      const meanRef = input(c, 'mean');
      const varRef = input(c, 'variance');
      const mean = meanRef && made(meanRef.key, 'Mean', i);
      const variance = varRef && made(varRef.key, 'Mean', i);
      const square = variance && made(variance.inputs[0]![1].key, 'Square', i);
      const sub = square && made(square.inputs[0]![1].key, 'Sub', i);
      const a = sub && input(sub, 'a');
      const cast = a && a.key !== x?.key ? made(a.key, 'Cast', i) : undefined;
      const fits =
        !!(x && mean && variance && square && sub && a) &&
        mean!.inputs[0]![1].key === x!.key && overAllButLast(mean!) && overAllButLast(variance!) &&
        input(sub!, 'b')?.key === mean!.outputs[0]!.key && (a!.key === x!.key || cast?.inputs[0]![1].key === x!.key);
      // Each intermediate is read by the pattern only: the mean by Sub and the batch norm, the others once.
      const parts = fits ? [mean!, variance!, square!, sub!, ...(cast ? [cast] : [])] : [];
      const ownUses = new Map<KernelCall, number>([[mean!, 2]]);
      if (fits && parts.every((p) => uses.get(p.outputs[0]!.key) === (ownUses.get(p) ?? 1))) {
        for (const p of parts) dropKeys.add(p.outputs[0]!.key);
        out[i] = {
          kernel: 'BevzooBatchNormTraining',
          inputs: c.inputs.filter(([k]) => k === 'x' || k === 'scale' || k === 'offset'),
          attrs: { epsilon: c.attrs.varianceEpsilon },
          outputs: c.outputs,
        };
      }
    }
    for (const o of c.outputs) producers.set(o.key, [...(producers.get(o.key) ?? []), i]);
  });
  // Drop the moments' calls and the reshapes of their results.
  return out.filter((c) => !c.outputs.every((o) => dropKeys.has(o.key)));
}

/**
 * The Python forward of a recorded graph: lines of its body and the keys of the trained filters to store as OIHW
 * channels_last. Throws UnmappedKernelError for a kernel without a mapping.
 */
export function twinForward(g: RecordedGraph): { lines: string[]; oihw: Set<string> } {
  const shapes = new Map<string, number[]>();
  for (const l of g.leaves) shapes.set(l.key, l.shape);
  const lines: string[] = [];
  // Keys are data numbers (record.ts), so that `v<key>` is a Python name.
  const name = (key: string) => {
    if (!/^\d+$/.test(key)) throw new Error(`twin: tensor key ${JSON.stringify(key)} is not a data number (apps/runner/src/bench/record.ts)`);
    return `v${key}`;
  };
  const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  const oihw = new Set<string>();
  const params = new Set(g.leaves.filter((l) => l.kind === 'param').map((l) => l.key));
  for (const call of fuseBatchNorms(g.calls)) {
    const emit = KERNELS[call.kernel];
    if (!emit) throw new UnmappedKernelError(call.kernel);
    const inputs = new Map(call.inputs);
    const expr = (r: TensorRef): string => {
      const have = shapes.get(r.key);
      if (!have) throw new Error(`twin: kernel ${call.kernel} reads a tensor (key ${r.key}) that no earlier call made and that is no leaf`);
      return sameShape(have, r.shape) ? name(r.key) : `${name(r.key)}.reshape(${tuple(r.shape)})`;
    };
    const ctx: Ctx = {
      call,
      in: (n) => {
        const r = inputs.get(n);
        if (!r) throw new UnmappedKernelError(call.kernel, `no input '${n}' (inputs: ${[...inputs.keys()].join(', ') || 'none'})`);
        return expr(r);
      },
      all: () => call.inputs.map(([, r]) => expr(r)),
      has: (n) => inputs.has(n),
      shape: (n) => inputs.get(n)?.shape ?? [],
      attr: <T>(n: string) => call.attrs[n] as T,
      out: call.outputs,
      fail: (detail) => {
        throw new UnmappedKernelError(call.kernel, detail);
      },
    };
    const filter = inputs.get('filter');
    if (['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput'].includes(call.kernel) && filter && params.has(filter.key)) oihw.add(filter.key);
    const e = emit(ctx);
    const outs = call.outputs;
    const fix = (o: TensorRef, v: string) => (o.dtype === 'float32' ? v : `_as(${v}, ${DTYPES[o.dtype] ?? 'torch.float32'})`);
    if (outs.length === 1) lines.push(`${name(outs[0]!.key)} = ${fix(outs[0]!, e)}`);
    else {
      lines.push(`_o = ${e}`);
      outs.forEach((o, i) => lines.push(`${name(o.key)} = ${fix(o, `_o[${i}]`)}`));
    }
    for (const o of outs) shapes.set(o.key, o.shape);
  }
  lines.push(`return ${name(g.output.key)}.reshape(())`);
  return { lines, oihw };
}

/**
 * Write the twin of a recorded graph to `dir`: twin.py, leaves.bin (raw float32 / int32 / uint8 values) and
 * leaves.json (offsets). Returns `unmapped` (the error's message) instead of throwing when a kernel has no mapping.
 */
export function writeTwin(g: RecordedGraph, dir: string, s: TwinSettings): { unmapped?: string; script?: string } {
  let fwd: ReturnType<typeof twinForward>;
  try {
    fwd = twinForward(g);
  } catch (e) {
    if (e instanceof UnmappedKernelError) return { unmapped: e.message };
    throw e;
  }
  mkdirSync(dir, { recursive: true });
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const meta = g.leaves.map((l) => {
    const bytes = new Uint8Array(l.values.buffer, l.values.byteOffset, l.values.byteLength);
    const pad = (8 - (offset % 8)) % 8;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    const m = { key: l.key, kind: l.kind, name: l.name ?? null, shape: l.shape, dtype: l.dtype, offset, count: l.values.length, oihw: fwd.oihw.has(l.key) };
    chunks.push(bytes);
    offset += bytes.byteLength;
    return m;
  });
  writeFileSync(join(dir, 'leaves.bin'), Buffer.concat(chunks));
  writeFileSync(join(dir, 'leaves.json'), JSON.stringify({ leaves: meta, output: g.output, loss: g.loss, settings: s }));
  const script = [
    `# PyTorch twin of ${s.model}, written by bench:step from ${g.calls.length} recorded kernel calls of one forward(+loss). Do not edit.`,
    'import json, os, sys, time',
    'import torch',
    'import torch.nn.functional as F',
    '',
    'HERE = os.path.dirname(os.path.abspath(__file__))',
    'THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1',
    'STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 5',
    'WARMUP = int(sys.argv[3]) if len(sys.argv) > 3 else 2',
    'with open(os.path.join(HERE, "leaves.json")) as f:',
    '    META = json.load(f)',
    'SETTINGS = META["settings"]',
    '_DT = {"float32": torch.float32, "int32": torch.int32, "bool": torch.uint8}',
    'def _as(t, dt):',
    '    return t if t.dtype == dt else t.to(dt)',
    'def _load():',
    '    raw = bytearray(open(os.path.join(HERE, "leaves.bin"), "rb").read())',
    '    values, params = {}, []',
    '    for m in META["leaves"]:',
    '        t = torch.frombuffer(raw, dtype=_DT[m["dtype"]], count=m["count"], offset=m["offset"]).clone().reshape(m["shape"]) if m["count"] else torch.zeros(m["shape"], dtype=_DT[m["dtype"]])',
    '        if m["dtype"] == "bool":',
    '            t = t.bool()',
    '        if m["kind"] == "param":',
    '            if m["oihw"]:',
    '                p = torch.nn.Parameter(t.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last))',
    '                params.append(p)',
    '                values[m["key"]] = (p, True)',
    '            else:',
    '                p = torch.nn.Parameter(t)',
    '                params.append(p)',
    '                values[m["key"]] = (p, False)',
    '        else:',
    '            values[m["key"]] = (t, False)',
    '    return values, params',
    'LEAVES, PARAMS = _load()',
    PRELUDE,
    'def forward():',
    ...g.leaves.map((l) => `    ${`v${l.key}`} = LEAVES[${JSON.stringify(l.key)}][0]${fwd.oihw.has(l.key) ? '.permute(2, 3, 1, 0)' : ''}`),
    ...fwd.lines.map((l) => `    ${l}`),
    TIMER,
  ].join('\n');
  writeFileSync(join(dir, 'twin.py'), script);
  return { script: join(dir, 'twin.py') };
}

/** Run a written twin (glibc malloc as installed, or with its thresholds raised: `allocator`); resolves with its JSON line, or the error. */
export function runTwin(python: string, dir: string, o: { threads: number; steps: number; warmup: number; allocator?: TorchAllocator }): Promise<TorchResult | { error: string }> {
  const script = join(dir, 'twin.py');
  return runForJson<TorchResult>(python, [script, String(o.threads), String(o.steps), String(o.warmup)], {
    env: { ...torchEnv(o.allocator ?? 'default'), OMP_NUM_THREADS: String(o.threads) },
    stderr: 'capture',
    failed: (exit, stderrTail) => `${python} ${script} exited with ${exit}: ${stderrTail}`,
  });
}
