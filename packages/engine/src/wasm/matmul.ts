import * as tf from '@tensorflow/tfjs-core';
import { chunksFor, runSplit, splitRange } from '../threads.js';
import { run, type Chunk } from './parts.js';
import { alloc, f32, free, runStock, sizeOf, transpose2d, transposeInto, values, view, type TI, type WasmBackend } from './util.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Below this many multiply-adds per batch the stock (scalar) batched loop is cheaper than XNNPACK calls. */
const SMALL_MATMUL = 1 << 15;

/**
 * BatchMatMul. The stock wasm kernel uses XNNPACK only for one untransposed batch and a scalar loop
 * otherwise (≈ 25× slower); the gradients of matMul always transpose. Here a transposed operand is
 * transposed in JS first, and each batch of a large batched product is one XNNPACK call.
 */
export function batchMatMulKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { a, b: bb } = args.inputs as { a: TI; b: TI };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  if (a.dtype !== 'float32' || bb.dtype !== 'float32') return runStock('BatchMatMul', b, args.inputs, args.attrs);
  const ra = a.shape.length;
  const rb = bb.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const Ka = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const Kb = transposeB ? bb.shape[rb - 1] : bb.shape[rb - 2];
  const N = transposeB ? bb.shape[rb - 2] : bb.shape[rb - 1];
  if (Ka !== Kb) {
    throw new Error(
      `Error in matMul: inner shapes (${Ka}) and (${Kb}) of Tensors with shapes ${a.shape} and ${bb.shape} ` +
        `and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const K = Ka;
  const aOuter = a.shape.slice(0, -2);
  const bOuter = bb.shape.slice(0, -2);
  const outOuter = tf.broadcast_util.assertAndGetBroadcastShape(aOuter, bOuter);
  const batch = sizeOf(outOuter);
  const outShape = [...outOuter, M, N];
  if (batch > 1 && M * N * K < SMALL_MATMUL) return runStock('BatchMatMul', b, args.inputs, args.attrs);
  if (M === 0 || N === 0 || K === 0 || batch === 0) {
    const out = alloc(b, outShape);
    f32(b, out).fill(0);
    return out;
  }
  if (batch === 1) {
    const a2 = transposeA ? transposedCopy(b, a, 0, K, M) : view(a, [M, K]);
    const b2 = transposeB ? transposedCopy(b, bb, 0, N, K) : view(bb, [K, N]);
    const out = matmul2d(b, a2, b2);
    if (a2.dataId !== a.dataId) free(b, a2);
    if (b2.dataId !== bb.dataId) free(b, b2);
    out.shape = outShape;
    return out;
  }
  // One XNNPACK product per batch; operands broadcast along the outer dimensions.
  const out = alloc(b, outShape);
  const aIdx = broadcastIndex(aOuter, outOuter);
  const bIdx = broadcastIndex(bOuter, outOuter);
  let lastB = -1;
  let b2: TI | null = null;
  for (let i = 0; i < batch; i++) {
    const ai = aIdx(i);
    const bi = bIdx(i);
    const a2 = transposeA ? transposedCopy(b, a, ai * M * K, K, M) : sliceCopy(b, a, ai * M * K, [M, K]);
    if (bi !== lastB) {
      free(b, b2);
      b2 = transposeB ? transposedCopy(b, bb, bi * K * N, N, K) : sliceCopy(b, bb, bi * K * N, [K, N]);
      lastB = bi;
    }
    const part = runStock('BatchMatMul', b, { a: a2, b: b2! }, { transposeA: false, transposeB: false });
    f32(b, out).set(f32(b, part), i * M * N);
    free(b, a2, part);
  }
  free(b, b2);
  return out;
}

/** Fewest rows (or inner-dimension entries) per part when a matmul is split across threads. */
const MIN_SPLIT = 16;

/**
 * a [M, K] · b [K, N] with XNNPACK. With worker threads and enough work it is split into chunks of
 * rows of `a` (each: its rows times all of `b`; stacked) when K ≤ M, else of the inner dimension
 * (each: a column block of `a` times a row block of `b`; summed), whichever hands less data around.
 */
export function matmul2d(b: WasmBackend, a: TI, bb: TI): TI {
  const [M, K] = a.shape;
  const N = bb.shape[1];
  const byRows = K <= M;
  const k = chunksFor(2 * M * K * N, Math.floor((byRows ? M : K) / MIN_SPLIT));
  if (k <= 1) return runStock('BatchMatMul', b, { a, b: bb }, { transposeA: false, transposeB: false });
  const bounds = splitRange(byRows ? M : K, k);
  const chunks: Chunk[] = bounds.slice(0, k).map((r0, p) => {
    const r1 = bounds[p + 1];
    return byRows
      ? {
          part: { kind: 'matmul' },
          inputs: [
            { shape: [r1 - r0, K], from: run(0, r0 * K, (r1 - r0) * K) },
            { shape: [K, N], from: run(1, 0, K * N) },
          ],
          out: run(0, r0 * N, (r1 - r0) * N),
        }
      : {
          part: { kind: 'matmul' },
          inputs: [
            { shape: [M, r1 - r0], from: { src: 0, start: r0, len: r1 - r0, stride: K, count: M } },
            { shape: [r1 - r0, N], from: run(1, r0 * N, (r1 - r0) * N) },
          ],
          out: null,
        };
  });
  return runSplit(b, { inputs: [a, bb], outShape: [M, N], chunks });
}

/** New [cols, rows] tensor holding the transpose of the [rows, cols] block of `t` at `offset`. */
function transposedCopy(b: WasmBackend, t: TI, offset: number, rows: number, cols: number): TI {
  const out = alloc(b, [cols, rows]);
  transpose2d(f32(b, t), offset, rows, cols, f32(b, out), 0);
  return out;
}

function sliceCopy(b: WasmBackend, t: TI, offset: number, shape: number[]): TI {
  const out = alloc(b, shape);
  f32(b, out).set(f32(b, t).subarray(offset, offset + sizeOf(shape)));
  return out;
}

/** Maps a linear index over `outShape` to the linear index of a broadcast operand of shape `shape`. */
function broadcastIndex(shape: number[], outShape: number[]): (i: number) => number {
  const r = outShape.length;
  const full = [...new Array<number>(r - shape.length).fill(1), ...shape];
  const strides = new Array<number>(r);
  let acc = 1;
  for (let d = r - 1; d >= 0; d--) {
    strides[d] = full[d] === 1 ? 0 : acc;
    acc *= full[d];
  }
  return (i: number) => {
    let idx = 0;
    for (let d = r - 1; d >= 0; d--) {
      const c = i % outShape[d];
      i = (i - c) / outShape[d];
      idx += c * strides[d];
    }
    return idx;
  };
}

/** Transpose in JS on the heap (the stock kernel is several times slower on large tensors). */
export function transposeKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { x } = args.inputs as { x: TI };
  const perm = (args.attrs as unknown as { perm: number[] }).perm;
  if (x.dtype === 'string' || x.dtype === 'complex64') return runStock('Transpose', b, args.inputs, args.attrs);
  const outShape = perm.map((p) => x.shape[p]);
  const out = alloc(b, outShape, x.dtype);
  transposeInto(values(b, x), x.shape, perm, values(b, out));
  return out;
}
