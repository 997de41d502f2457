/**
 * The loss pieces of RadOcc: a soft-target KL with a hand-written gradient (the teacher side detached), the
 * segment affinity of rendered semantics, and the depth-value losses of the naive RDC variant.
 */
import * as tf from '@tensorflow/tfjs-core';
import { detach } from '@bevzoo/nn';
import { RadOccError } from './errors.js';

/** log softmax along the last axis, shifted by the (gradient-free) row maximum. */
function logSoftmaxRows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const m = tf.max(x, 1, true);
    const z = tf.sub(x, m);
    return tf.sub(z, tf.log(tf.sum(tf.exp(z), 1, true))) as tf.Tensor2D;
  });
}

/**
 * Per row, KL(softmax(t/τ) ‖ softmax(s/τ)) = Σ_c p_c (log p_c − log q_c): t, s [n, C] → [n]. The gradient flows to
 * `s` only ((q − p)/τ per row, scaled by the incoming gradient); the teacher side `t` is detached.
 */
export function softKl(t: tf.Tensor2D, s: tf.Tensor2D, tau: number): tf.Tensor1D {
  if (t.rank !== 2 || s.rank !== 2 || t.shape[0] !== s.shape[0] || t.shape[1] !== s.shape[1])
    throw new RadOccError(`softKl: teacher and student must be [n, C] of one shape; found [${t.shape}] and [${s.shape}]`);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [ti, si] = args as [tf.Tensor2D, tf.Tensor2D];
    const save = args[2] as tf.GradSaveFunc;
    const logP = logSoftmaxRows(tf.div(ti, tau) as tf.Tensor2D), logQ = logSoftmaxRows(tf.div(si, tau) as tf.Tensor2D);
    const p = tf.exp(logP), q = tf.exp(logQ);
    const value = tf.sum(tf.mul(p, tf.sub(logP, logQ)), 1);
    save([p, q]);
    tf.dispose([logP, logQ]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ps, qs] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.zerosLike(ps), tf.mul(tf.expandDims(dy, 1), tf.div(tf.sub(qs, ps), tau))];
      },
    };
  });
  return op(t, s) as tf.Tensor1D;
}

/** Mean over rows of the per-row KL, ×τ², divided by C for the 'mean' reduction. */
export function klLoss(t: tf.Tensor2D, s: tf.Tensor2D, tau: number, reduction: 'mean' | 'sum', rowWeights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const kl = softKl(t, s, tau);
    const scale = (tau * tau) / (reduction === 'mean' ? t.shape[1] : 1);
    if (!rowWeights) return tf.mul(tf.mean(kl), scale) as tf.Scalar;
    return tf.mul(tf.div(tf.sum(tf.mul(kl, rowWeights)), tf.maximum(tf.sum(rowWeights), 1)), scale) as tf.Scalar;
  });
}

/** Rows divided by their L2 norm (√(Σx² + 1e-12): finite gradient at 0). */
function normaliseRows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12))) as tf.Tensor2D);
}

/** The affinity of segment vectors F [M, C]: normalise_rows(F·Fᵀ) ('rows', the reference) or the cosine similarity of the rows. */
export function affinity(f: tf.Tensor2D, mode: 'rows' | 'cosine'): tf.Tensor2D {
  return tf.tidy(() => (mode === 'rows' ? normaliseRows(tf.matMul(f, f, false, true)) : (() => {
    const n = normaliseRows(f);
    return tf.matMul(n, n, false, true);
  })()));
}

/** The segments of a set of rays: `pool` [M, R] averages the rays of each segment (1/count at its rays). */
export interface SegmentPool {
  /** Segments kept. */
  count: number;
  /** [M·R] row-major pooling matrix. */
  pool: Float32Array;
  /** The (camera, id) of each segment. */
  keys: string[];
}

/**
 * Group rays by segment: `ids[r]` the segment id at ray r's pixel (≤ 0: none), `camera[r]` its camera (ids are per
 * image, as SAM's). Segments with fewer than `minRays` rays are dropped.
 */
export function segmentPool(ids: ArrayLike<number>, camera: ArrayLike<number>, minRays: number): SegmentPool {
  const R = ids.length;
  const groups = new Map<string, number[]>();
  for (let r = 0; r < R; r++) {
    const id = ids[r]!;
    if (!(id > 0)) continue;
    const key = `${camera[r]}:${id}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  const kept = [...groups.entries()].filter(([, g]) => g.length >= minRays);
  const pool = new Float32Array(kept.length * R);
  kept.forEach(([, g], m) => {
    for (const r of g) pool[m * R + r] = 1 / g.length;
  });
  return { count: kept.length, pool, keys: kept.map(([k]) => k) };
}

/** mean (A_T − A_S)² of the segment affinities of rendered semantics (teacher detached); null with fewer than 2 segments. */
export function affinityLoss(semT: tf.Tensor2D, semS: tf.Tensor2D, seg: SegmentPool, mode: 'rows' | 'cosine'): tf.Scalar | null {
  if (seg.count < 2) return null;
  const R = semS.shape[0];
  return tf.tidy(() => {
    const P = tf.tensor2d(seg.pool, [seg.count, R]);
    const aT = affinity(tf.matMul(P, detach(semT)), mode);
    const aS = affinity(tf.matMul(P, semS), mode);
    return tf.mean(tf.square(tf.sub(aT, aS))) as tf.Scalar;
  });
}

/** The naive RDC: rendered depth values of the student against the teacher's (detached). */
export function depthValueLoss(dT: tf.Tensor1D, dS: tf.Tensor1D, kind: 'smooth_l1' | 'l1' | 'silog'): tf.Scalar {
  return tf.tidy(() => {
    const t = detach(dT);
    if (kind === 'l1') return tf.mean(tf.abs(tf.sub(dS, t))) as tf.Scalar;
    if (kind === 'smooth_l1') {
      const d = tf.abs(tf.sub(dS, t));
      return tf.mean(tf.where(tf.less(d, 1), tf.mul(tf.square(d), 0.5), tf.sub(d, 0.5))) as tf.Scalar;
    }
    // SILog: sqrt(mean d² − 0.85·(mean d)²), d = log D_S − log D_T (depths floored at 1e-3 m; the root's argument at 1e-12)
    const d = tf.sub(tf.log(tf.maximum(dS, 1e-3)), tf.log(tf.maximum(t, 1e-3)));
    const m = tf.mean(d);
    return tf.sqrt(tf.maximum(tf.sub(tf.mean(tf.square(d)), tf.mul(tf.square(m), 0.85)), 1e-12)) as tf.Scalar;
  });
}
