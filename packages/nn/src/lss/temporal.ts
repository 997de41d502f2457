/**
 * BEVDet4D's temporal alignment: the previous keyframe's BEV feature moved into the current frame by the ego motion
 * between them, by bilinear sampling (zero outside the previous map), so that a static object sits in the same cell
 * in both maps. Both maps are in the frame of the batch's BEV augmentation `bda` (the same for both frames, as in
 * BEVDet4D): a current cell centre c maps to the previous frame's q = bda · M⁻¹ · bda⁻¹ · c, with M the rigid
 * transform current ego ← previous ego. The sampling taps are computed in plain JS (they depend only on geometry),
 * the sampling itself is a gather and a weighted sum, so the result is differentiable in the previous map.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mat3Inverse, traceInput, type Mat3 } from '@bevzoo/core';
import { ShapeError } from '../errors.js';

export interface BevGridGeometry {
  /** [xmin, ymin, xmax, ymax] metres. */
  range: [number, number, number, number];
  /** [X, Y] cells: a map is [B, Y, X, C], rows = y. */
  cells: [number, number];
}

/** Bilinear taps of every output cell: 4 source rows (index B·Y·X = the zero row outside the map) and weights. */
export interface AlignTaps {
  index: Int32Array;
  weight: Float32Array;
}

/**
 * Taps of the alignment for a batch: `egoMotion` [B, 4, 4] current ego ← previous ego (row-major), `bda` [B, 3, 3]
 * (absent = none). Cell centres at min + (i + ½)·size, as BEVPool and the CenterHead grid.
 */
export function alignTaps(egoMotion: ArrayLike<number>, grid: BevGridGeometry, bda?: ArrayLike<number>): AlignTaps {
  const [X, Y] = grid.cells;
  const [x0, y0, x1, y1] = grid.range;
  const sx = (x1 - x0) / X, sy = (y1 - y0) / Y;
  const B = egoMotion.length / 16;
  if (!Number.isInteger(B) || B < 1) throw new ShapeError('alignTaps: egoMotion', '[B, 4, 4]', `${egoMotion.length} values`);
  const cells = X * Y, zero = B * cells;
  const index = new Int32Array(B * cells * 4).fill(zero);
  const weight = new Float32Array(B * cells * 4);
  for (let b = 0; b < B; b++) {
    const e = (i: number) => egoMotion[b * 16 + i]!;
    const A = bda ? (Array.from({ length: 9 }, (_, i) => bda[b * 9 + i]!) as Mat3) : ([1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3);
    const Ainv = mat3Inverse(A);
    // M⁻¹ of a rigid transform: Rᵀ, −Rᵀ·t (x, y, z; the planar case is the z = 0 slice).
    const R = [e(0), e(1), e(2), e(4), e(5), e(6), e(8), e(9), e(10)];
    const t = [e(3), e(7), e(11)];
    for (let yi = 0; yi < Y; yi++)
      for (let xi = 0; xi < X; xi++) {
        const cx = x0 + (xi + 0.5) * sx, cy = y0 + (yi + 0.5) * sy;
        const p = [Ainv[0] * cx + Ainv[1] * cy, Ainv[3] * cx + Ainv[4] * cy, Ainv[6] * cx + Ainv[7] * cy]; // current ego
        const d = [p[0]! - t[0]!, p[1]! - t[1]!, p[2]! - t[2]!];
        const q = [R[0]! * d[0]! + R[3]! * d[1]! + R[6]! * d[2]!, R[1]! * d[0]! + R[4]! * d[1]! + R[7]! * d[2]!, R[2]! * d[0]! + R[5]! * d[1]! + R[8]! * d[2]!]; // previous ego
        const qx = A[0] * q[0]! + A[1] * q[1]! + A[2] * q[2]!, qy = A[3] * q[0]! + A[4] * q[1]! + A[5] * q[2]!; // previous bda frame
        const fx = (qx - x0) / sx - 0.5, fy = (qy - y0) / sy - 0.5;
        const ix = Math.floor(fx), iy = Math.floor(fy), ax = fx - ix, ay = fy - iy;
        const o = ((b * Y + yi) * X + xi) * 4;
        const corners: [number, number, number][] = [[ix, iy, (1 - ax) * (1 - ay)], [ix + 1, iy, ax * (1 - ay)], [ix, iy + 1, (1 - ax) * ay], [ix + 1, iy + 1, ax * ay]];
        corners.forEach(([cxi, cyi, w], k) => {
          if (cxi < 0 || cxi >= X || cyi < 0 || cyi >= Y || w === 0) return;
          index[o + k] = (b * Y + cyi) * X + cxi;
          weight[o + k] = w;
        });
      }
  }
  return { index, weight };
}

/**
 * The taps as tensors, reported to a kernel trace as the batch inputs `align.index` [B·Y·X·4] int32 and `align.weight`
 * [B·Y·X, 4, 1] (core's `traceInput`; computed on the host from the ego motion and the BEV augmentation), so that an
 * ONNX export reads them.
 */
export function alignTapInputs(taps: AlignTaps): { index: tf.Tensor1D; weight: tf.Tensor3D } {
  const cells = taps.index.length / 4;
  return {
    index: traceInput('align.index', () => tf.tensor1d(taps.index, 'int32')),
    weight: traceInput('align.weight', () => tf.tensor3d(taps.weight, [cells, 4, 1])),
  };
}

/** The previous BEV map [B, Y, X, C] sampled at the taps → [B, Y, X, C] in the current frame (see `alignTapInputs`). */
export function applyAlignTaps(prev: tf.Tensor4D, taps: AlignTaps): tf.Tensor4D {
  const [B, Y, X, C] = prev.shape;
  if (taps.index.length !== B * Y * X * 4) throw new ShapeError('applyAlignTaps', `taps of ${B}×${Y}×${X} cells`, `${taps.index.length / 4} cells`);
  return tf.tidy(() => {
    const rows = tf.concat([tf.reshape(prev, [B * Y * X, C]), tf.zeros([1, C])], 0);
    const t = alignTapInputs(taps);
    const sampled = tf.reshape(tf.gather(rows, t.index), [B * Y * X, 4, C]);
    const w = t.weight;
    return tf.reshape(tf.sum(tf.mul(sampled, w), 1), [B, Y, X, C]) as tf.Tensor4D;
  });
}

/** The previous BEV map aligned into the current frame (see the module comment). */
export function alignPrevBev(prev: tf.Tensor4D, egoMotion: ArrayLike<number>, grid: BevGridGeometry, bda?: ArrayLike<number>): tf.Tensor4D {
  return applyAlignTaps(prev, alignTaps(egoMotion, grid, bda));
}
