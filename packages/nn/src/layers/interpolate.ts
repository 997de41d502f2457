import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';

export type InterpolateMode = 'linear' | 'nearest';

/**
 * Resize one axis of a tensor with PyTorch's `F.interpolate` index rules: 'nearest' takes
 * ⌊o·in/out⌋; 'linear' with `alignCorners` maps o ↦ o·(in−1)/(out−1), without it o ↦ (o+½)·in/out − ½
 * clamped at 0. Built from gathers (its gradient is a segment sum), avoiding tfjs's resize gradients
 * (the cpu backend's ResizeBilinearGrad returns a transposed shape for non-square inputs).
 */
export function resizeAxis(x: tf.Tensor, axis: number, size: number, mode: InterpolateMode = 'linear', alignCorners = false): tf.Tensor {
  const n = x.shape[axis];
  if (n === undefined || !(size >= 1)) throw new ShapeError('resizeAxis', `axis < ${x.rank} and size ≥ 1`, `axis ${axis}, size ${size}`);
  if (n === size) return x.clone();
  const i0 = new Int32Array(size), i1 = new Int32Array(size), t = new Float32Array(size);
  for (let o = 0; o < size; o++) {
    if (mode === 'nearest') {
      i0[o] = Math.min(Math.floor((o * n) / size), n - 1);
      continue;
    }
    const src = alignCorners ? (size > 1 ? (o * (n - 1)) / (size - 1) : 0) : Math.max(0, ((o + 0.5) * n) / size - 0.5);
    i0[o] = Math.min(Math.floor(src), n - 1);
    i1[o] = Math.min(i0[o]! + 1, n - 1);
    t[o] = src - i0[o]!;
  }
  return tf.tidy(() => {
    const lo = tf.gather(x, tf.tensor1d(i0, 'int32'), axis);
    if (mode === 'nearest') return lo;
    const hi = tf.gather(x, tf.tensor1d(i1, 'int32'), axis);
    const shape = x.shape.map((_, i) => (i === axis ? size : 1));
    return tf.add(lo, tf.mul(tf.sub(hi, lo), tf.tensor(t, shape)));
  });
}

/** Resize NHWC to [h, w] (PyTorch `F.interpolate(mode='bilinear' | 'nearest', align_corners)`). */
export function resize2d(x: tf.Tensor, size: [number, number], mode: InterpolateMode = 'linear', alignCorners = false): tf.Tensor4D {
  if (x.rank !== 4) throw new ShapeError('resize2d', 'rank 4 (NHWC)', `shape [${x.shape}]`);
  return tf.tidy(() => resizeAxis(resizeAxis(x, 1, size[0], mode, alignCorners), 2, size[1], mode, alignCorners) as tf.Tensor4D);
}

/** Resize NDHWC to [d, h, w] (PyTorch `F.interpolate(mode='trilinear' | 'nearest', align_corners)`). */
export function resize3d(x: tf.Tensor, size: [number, number, number], mode: InterpolateMode = 'linear', alignCorners = false): tf.Tensor5D {
  if (x.rank !== 5) throw new ShapeError('resize3d', 'rank 5 (NDHWC)', `shape [${x.shape}]`);
  return tf.tidy(() => {
    let y = x;
    for (let a = 0; a < 3; a++) y = resizeAxis(y, a + 1, size[a]!, mode, alignCorners);
    return y as tf.Tensor5D;
  });
}
