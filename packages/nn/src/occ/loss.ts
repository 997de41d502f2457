/**
 * The occupancy loss of BEVDet-Occ and FlashOcc (`BEVOCCHead3D/2D.loss` with mmdet's CrossEntropyLoss): softmax
 * cross-entropy per voxel, weighted by the camera mask and optionally by a class weight of the voxel's label,
 * summed and divided by the sum of those weights (mmdet's avg_factor: the number of camera-visible voxels, or their
 * class-weighted count when class balancing is on).
 *
 * Class weights: the reference configs (bevdet-occ-r50, flashocc-r50) leave `class_balance` off, so the default is
 * none. With `class_balance=True` the reference weighs class c by 1 / ln(f_c + 0.001), f_c the nuScenes voxel
 * counts (`OCC3D_NUSCENES_CLASS_FREQUENCIES`) — 'reference' here; or an explicit list of 18 weights
 * (`inverseLogWeights(counts)` gives the reference's formula for another dataset's counts). 'inverse-sqrt' weighs
 * class c by √(f_free / f_c) on the same counts (free 1, car 10.6, bicycle 111): not in the reference, a stronger
 * balance for short schedules where the rare classes are otherwise never predicted.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';
import { OCC3D, OCC3D_NUSCENES_CLASS_FREQUENCIES } from './occ3d.js';
import type { OccTargets } from './labels.js';

/** 1 / ln(f + 0.001) per class (the reference's class_balance weights). */
export function inverseLogWeights(frequencies: readonly number[]): Float32Array {
  return Float32Array.from(frequencies, (f) => 1 / Math.log(f + 0.001));
}

/** √(f_free / f_c) per class: free weighs 1, a class 100× rarer 10 (a stronger balance than the reference's). */
export function inverseSqrtWeights(frequencies: readonly number[]): Float32Array {
  const free = frequencies[OCC3D.free]!;
  return Float32Array.from(frequencies, (f) => Math.sqrt(free / f));
}

/**
 * 'none', 'reference' (the reference's class_balance weights from the nuScenes counts), 'inverse-sqrt' (√(f_free /
 * f_c) from the same counts; not in the reference) or 18 weights.
 */
export type OccClassWeightSpec = 'none' | 'reference' | 'inverse-sqrt' | readonly number[];

/** The weights of a spec, or null for none. */
export function occClassWeights(spec: OccClassWeightSpec): Float32Array | null {
  if (spec === 'none') return null;
  if (spec === 'reference') return inverseLogWeights(OCC3D_NUSCENES_CLASS_FREQUENCIES);
  if (spec === 'inverse-sqrt') return inverseSqrtWeights(OCC3D_NUSCENES_CLASS_FREQUENCIES);
  if (spec.length !== OCC3D.numClasses || !spec.every((w) => w >= 0 && Number.isFinite(w)))
    throw new ShapeError('occClassWeights', `${OCC3D.numClasses} finite weights ≥ 0`, `[${spec.join(', ')}]`);
  return Float32Array.from(spec);
}

/**
 * Masked, class-weighted cross-entropy of `logits` [..., K] (the voxels in the order of `targets.labels`, e.g.
 * [B, X, Y, Z, K]) against `targets`: Σ_i m_i·w_{y_i}·(−log softmax(logits_i)_{y_i}) / Σ_i m_i·w_{y_i} (0 when no
 * voxel counts). The per-voxel coefficients and the one-hot targets are built on the host; the gradient is written
 * out, (softmax − onehot)·coefficient / Σ coefficients.
 */
export function occCrossEntropy(logits: tf.Tensor, targets: Pick<OccTargets, 'labels' | 'mask'>, classWeights: Float32Array | null = null): tf.Scalar {
  const K = logits.shape[logits.rank - 1]!;
  const n = targets.labels.length;
  if (logits.size !== n * K) throw new ShapeError('occCrossEntropy(logits)', `${n} voxels × ${K} classes (the targets' voxels)`, `shape [${logits.shape}]`);
  if (targets.mask.length !== n) throw new ShapeError('occCrossEntropy(mask)', `${n} values`, `${targets.mask.length}`);
  const coef = new Float32Array(n);
  const onehot = new Float32Array(n * K);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const m = targets.mask[i]!;
    if (!m) continue;
    const y = targets.labels[i]!;
    if (!(y >= 0 && y < K)) throw new ShapeError('occCrossEntropy(labels)', `labels in 0..${K - 1}`, `${y} at voxel ${i}`);
    const c = m * (classWeights ? classWeights[y]! : 1);
    coef[i] = c;
    onehot[i * K + y] = c;
    total += c;
  }
  return tf.tidy(() => {
    if (total === 0) return tf.mul(tf.sum(logits), 0) as tf.Scalar; // keeps the graph connected
    const coefT = tf.tensor2d(coef, [n, 1]);
    const target = tf.tensor2d(onehot, [n, K]);
    // The gradient by hand: tfjs's logSumExp differentiates through its max (an Equal over every logit, ~1 s a step here).
    const ce = tf.customGrad((x, save) => {
      const flat = tf.reshape(x as tf.Tensor, [n, K]);
      const max = tf.max(flat, 1, true);
      const e = tf.exp(tf.sub(flat, max));
      const sum = tf.sum(e, 1, true);
      const lse = tf.add(tf.log(sum), max); // [n, 1]
      (save as tf.GradSaveFunc)([tf.div(e, sum), coefT, target]); // the softmax, for the gradient
      const value = tf.div(tf.sub(tf.sum(tf.mul(lse, coefT)), tf.sum(tf.mul(flat, target))), total) as tf.Scalar;
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [p, c, t] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
          return [tf.reshape(tf.mul(tf.sub(tf.mul(p, c), t), tf.div(dy, total)), (x as tf.Tensor).shape)];
        },
      };
    });
    return ce(logits) as tf.Scalar;
  });
}
