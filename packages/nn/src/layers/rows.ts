/**
 * Row gather and scatter-add with host loops (forward and backward, tf.customGrad), for backends whose memory is on
 * the host (cpu, wasm): tfjs's gather gradient and UnsortedSegmentSum are slow there. An index of −1 reads a zero
 * row (gather) or drops the row (scatter).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';

/** x must be [rows, C] and every index in [−1, n). */
function check(where: string, x: tf.Tensor, index: Int32Array, n: number): void {
  if (x.rank !== 2) throw new ShapeError(where, 'x of rank 2 [rows, C]', `[${x.shape}]`);
  for (const i of index) if (i >= n || i < -1) throw new ShapeError(where, `indices in [−1, ${n})`, `${i}`);
}

/** out[i] = x[index[i]] (a zero row for −1): x [N, C] → [index.length, C]; its gradient scatter-adds into x's rows. */
export function gatherRows(x: tf.Tensor2D, index: Int32Array): tf.Tensor2D {
  const [N, C] = x.shape;
  check('gatherRows', x, index, N);
  const op = tf.customGrad((t) => ({
    value: tf.tensor2d(gather((t as tf.Tensor).dataSync() as Float32Array, index, C), [index.length, C]),
    gradFunc: (dy: tf.Tensor) => tf.tensor2d(scatterAdd(dy.dataSync() as Float32Array, index, N, C), [N, C]),
  }));
  return op(x) as tf.Tensor2D;
}

/** out[index[i]] += x[i] (rows with −1 dropped): x [index.length, C] → [n, C]; its gradient gathers. */
export function scatterAddRows(x: tf.Tensor2D, index: Int32Array, n: number): tf.Tensor2D {
  const C = x.shape[1];
  check('scatterAddRows', x, index, n);
  if (x.shape[0] !== index.length) throw new ShapeError('scatterAddRows', `${index.length} rows (one per index)`, `${x.shape[0]}`);
  const op = tf.customGrad((t) => ({
    value: tf.tensor2d(scatterAdd((t as tf.Tensor).dataSync() as Float32Array, index, n, C), [n, C]),
    gradFunc: (dy: tf.Tensor) => tf.tensor2d(gather(dy.dataSync() as Float32Array, index, C), [index.length, C]),
  }));
  return op(x) as tf.Tensor2D;
}

/**
 * `gatherRows` in tfjs kernels, the index a tensor [M] int32 (−1: a zero row): a Gather from x below a zero row. The form
 * a kernel trace (an ONNX export) records, with the index a graph input.
 */
export function gatherRowsKernels(x: tf.Tensor2D, index: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => tf.gather(tf.concat([tf.zeros([1, x.shape[1]]), x], 0), tf.add(index, tf.scalar(1, 'int32'))) as tf.Tensor2D);
}

/** `scatterAddRows` in tfjs kernels (−1 dropped): an UnsortedSegmentSum into n + 1 rows, the first (the −1s) cut off. */
export function scatterAddRowsKernels(x: tf.Tensor2D, index: tf.Tensor1D, n: number): tf.Tensor2D {
  return tf.tidy(() => tf.slice(tf.unsortedSegmentSum(x, tf.add(index, tf.scalar(1, 'int32')) as tf.Tensor1D, n + 1), [1, 0], [n, x.shape[1]]) as tf.Tensor2D);
}

/** Rows `index` of `xv` (C values each; zeros for −1). */
function gather(xv: Float32Array, index: Int32Array, C: number): Float32Array {
  const out = new Float32Array(index.length * C);
  index.forEach((r, i) => {
    if (r >= 0) out.set(xv.subarray(r * C, r * C + C), i * C);
  });
  return out;
}

/** Sums of the rows of `xv` into n rows by `index` (−1 dropped). */
function scatterAdd(xv: Float32Array, index: Int32Array, n: number, C: number): Float32Array {
  const out = new Float32Array(n * C);
  for (let i = 0; i < index.length; i++) {
    const r = index[i]!;
    if (r < 0) continue;
    const o = r * C, s = i * C;
    for (let c = 0; c < C; c++) out[o + c] += xv[s + c]!;
  }
  return out;
}
