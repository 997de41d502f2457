import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Kernel-level plumbing for the wasm backend: heap views, allocation, calls into stock kernels. */

export type TI = tf.TensorInfo;
export type WasmBackend = BackendWasm;
type AnyArray = Float32Array | Int32Array | Uint8Array | Float64Array;

/**
 * A Float32Array view on the wasm heap for `t`. Views die when the heap grows: take them after the
 * last allocation of a kernel, never keep them across calls that allocate.
 */
export function f32(b: WasmBackend, t: TI): Float32Array {
  return b.typedArrayFromHeap(t) as Float32Array;
}

/** An Int32Array view (int32 tensors) or Uint8Array view (bool tensors) on the wasm heap. */
export function ints(b: WasmBackend, t: TI): Int32Array | Uint8Array {
  return b.typedArrayFromHeap(t) as Int32Array | Uint8Array;
}

/** Reads any numeric tensor (float32/int32/bool) of the wasm backend as a heap view. */
export function values(b: WasmBackend, t: TI): Float32Array | Int32Array | Uint8Array {
  return b.typedArrayFromHeap(t) as Float32Array | Int32Array | Uint8Array;
}

/** A Float32Array over the whole wasm heap (same lifetime rules as `f32`). */
export function heapF32(b: WasmBackend): Float32Array {
  return new Float32Array((b.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
}

/** Index of `t`'s first float in `heapF32(b)`. */
export function offsetF32(b: WasmBackend, t: TI): number {
  return b.getMemoryOffset(t.dataId) >>> 2;
}

/** Allocates an uninitialised tensor on the wasm heap. */
export function alloc(b: WasmBackend, shape: number[], dtype: tf.DataType = 'float32'): TI {
  return b.makeOutput(shape, dtype);
}

/** Allocates a tensor on the wasm heap filled with zeros. */
export function zeros(b: WasmBackend, shape: number[], dtype: tf.DataType = 'float32'): TI {
  const t = b.makeOutput(shape, dtype);
  b.typedArrayFromHeap(t).fill(0);
  return t;
}

/** Copies JS values into a new wasm tensor. */
export function fromValues(b: WasmBackend, shape: number[], dtype: tf.DataType, vals: AnyArray): TI {
  const t = b.makeOutput(shape, dtype);
  const v = b.typedArrayFromHeap(t);
  if (vals instanceof Float64Array && v instanceof Float32Array) {
    for (let i = 0; i < v.length; i++) v[i] = vals[i];
  } else v.set(vals as ArrayLike<number>);
  return t;
}

/** Frees intermediate tensors (decrements their reference count). */
export function free(b: WasmBackend, ...ts: (TI | null | undefined)[]): void {
  for (const t of ts) if (t != null) b.disposeData(t.dataId);
}

/** Same data, other shape: only to hand to a kernel that neither keeps nor returns its input. */
export function view(t: TI, shape: number[]): TI {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

// Stock kernels captured before we replace them (and looked up lazily otherwise).
const stock = new Map<string, tf.KernelConfig>();

/** Remembers the stock wasm kernel `name` before it is overridden. */
export function rememberStock(name: string): tf.KernelConfig | undefined {
  if (!stock.has(name)) {
    const k = tf.getKernel(name, 'wasm');
    if (k != null) stock.set(name, k);
  }
  return stock.get(name);
}

/**
 * The stock wasm matmul (BatchMatMul, _FusedMatMul) caches XNNPACK's packed weights by the tensor id of `b` (with its
 * bias and activation), not by `b`'s shape. Data seen through two shapes — a reshape or `view`, or a tensor and its
 * clone, which share their data on the native path — would reuse weights packed for the other shape. So each data
 * remembers the shape it was first multiplied in as `b`; under another shape, `b` goes to the kernel as a copy.
 */
const matmulShapes = new WeakMap<object, string>();
const MATMUL_KERNELS = new Set(['BatchMatMul', '_FusedMatMul']);

function matmulInputs(b: WasmBackend, inputs: tf.NamedTensorInfoMap): { inputs: tf.NamedTensorInfoMap; copy?: TI } {
  const w = inputs.b!;
  const key = w.shape.join(',');
  const seen = matmulShapes.get(w.dataId);
  if (seen === undefined) matmulShapes.set(w.dataId, key);
  if (seen === undefined || seen === key) return { inputs };
  const copy = b.makeOutput(w.shape, w.dtype);
  b.typedArrayFromHeap(copy).set(b.typedArrayFromHeap(w));
  matmulShapes.set(copy.dataId, key);
  return { inputs: { ...inputs, b: copy }, copy };
}

/** Runs the stock wasm kernel `name` (the one shipped with @tensorflow/tfjs-backend-wasm). */
export function runStock(name: string, b: WasmBackend, inputs: tf.NamedTensorInfoMap, attrs: object = {}): TI {
  const k = stock.get(name) ?? tf.getKernel(name, 'wasm');
  if (k == null) throw new Error(`@bevzoo/engine: wasm kernel ${name} is not registered`);
  const m = MATMUL_KERNELS.has(name) && inputs.b ? matmulInputs(b, inputs) : { inputs };
  const out = k.kernelFunc({ inputs: m.inputs, backend: b, attrs: attrs as tf.NamedAttrMap });
  if (m.copy) free(b, m.copy);
  return out as TI;
}

/** Runs whatever kernel is registered now for `name` on wasm (ours where we replaced the stock one). */
export function runKernel(name: string, b: WasmBackend, inputs: tf.NamedTensorInfoMap, attrs: object = {}): TI {
  const k = tf.getKernel(name, 'wasm');
  if (k == null) throw new Error(`@bevzoo/engine: wasm kernel ${name} is not registered`);
  return k.kernelFunc({ inputs, backend: b, attrs: attrs as tf.NamedAttrMap }) as TI;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * dst = transpose(src, perm) on plain typed arrays. Adjacent axes that stay adjacent are merged first;
 * a resulting (batched) 2-D transpose runs cache-blocked.
 */
export function transposeInto(src: AnyArray, shape: readonly number[], perm: readonly number[], dst: AnyArray): void {
  // Merge runs of axes that stay consecutive in perm.
  const groups: number[][] = [];
  for (const p of perm) {
    const last = groups[groups.length - 1];
    if (last != null && last[last.length - 1] + 1 === p) last.push(p);
    else groups.push([p]);
  }
  const order = groups.map((g) => g[0]).slice().sort((a, b) => a - b);
  const mergedShape = order.map((first) => {
    const g = groups.find((x) => x[0] === first)!;
    return g.reduce((acc, ax) => acc * shape[ax], 1);
  });
  const mergedPerm = groups.map((g) => order.indexOf(g[0]));
  // Drop size-1 axes.
  const keep = mergedShape.map((d) => d !== 1);
  const shp: number[] = [];
  const idx: number[] = [];
  mergedShape.forEach((d, i) => {
    if (keep[i]) {
      idx[i] = shp.length;
      shp.push(d);
    }
  });
  const prm = mergedPerm.filter((p) => keep[p]).map((p) => idx[p]);
  const r = shp.length;
  const n = sizeOf(shp);
  if (r <= 1 || prm.every((p, i) => p === i)) {
    dst.set(src.subarray(0, n) as never);
    return;
  }
  if (r === 2) {
    transpose2d(src, 0, shp[0], shp[1], dst, 0);
    return;
  }
  if (r === 3 && prm[0] === 0 && prm[1] === 2 && prm[2] === 1) {
    const m = shp[1] * shp[2];
    for (let b0 = 0; b0 < shp[0]; b0++) transpose2d(src, b0 * m, shp[1], shp[2], dst, b0 * m);
    return;
  }
  // General case: walk dst in order, with the last dst axis as the inner loop.
  const srcStrides = stridesOf(shp);
  const outShape = prm.map((p) => shp[p]);
  const step = prm.map((p) => srcStrides[p]);
  const inner = outShape[r - 1];
  const innerStep = step[r - 1];
  const counter = new Array<number>(r - 1).fill(0);
  let srcBase = 0;
  for (let o = 0; o < n; o += inner) {
    let s = srcBase;
    for (let i = 0; i < inner; i++, s += innerStep) dst[o + i] = src[s];
    for (let ax = r - 2; ax >= 0; ax--) {
      counter[ax]++;
      srcBase += step[ax];
      if (counter[ax] < outShape[ax]) break;
      srcBase -= step[ax] * outShape[ax];
      counter[ax] = 0;
    }
  }
}

/**
 * dst[j * rows + i] = src[i * cols + j] (both at offsets), in blocks of 64 rows × 8 columns: writes run
 * contiguously, reads stay within a few cache lines per row (large power-of-two strides make square
 * blocks thrash the cache sets).
 */
export function transpose2d(src: AnyArray, so: number, rows: number, cols: number, dst: AnyArray, d0: number): void {
  const BI = 64;
  const BJ = 8;
  for (let j0 = 0; j0 < cols; j0 += BJ) {
    const j1 = Math.min(j0 + BJ, cols);
    for (let i0 = 0; i0 < rows; i0 += BI) {
      const i1 = Math.min(i0 + BI, rows);
      for (let j = j0; j < j1; j++) {
        let s = so + i0 * cols + j;
        const o = d0 + j * rows;
        for (let i = i0; i < i1; i++, s += cols) dst[o + i] = src[s];
      }
    }
  }
}

/** Result of computeConv2DInfo reduced to what the kernels need. */
export interface Conv2DGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kH: number;
  kW: number;
  sH: number;
  sW: number;
  dH: number;
  dW: number;
  top: number;
  left: number;
  bottom: number;
  right: number;
}

export function geometry(info: tf.backend_util.Conv2DInfo): Conv2DGeometry {
  return {
    batch: info.batchSize,
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
  };
}
