/**
 * BEVDepth's explicit depth supervision of an LSS view transform: the keyframe's LiDAR points projected into each
 * (augmented) image give, per image-feature cell, the smallest positive depth that falls in it; that depth's bin
 * is the label (one-hot over the bins). The loss is the binary cross-entropy of the depth distribution against the
 * one-hot label, summed over the bins and averaged over the labelled cells.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LIDAR_POINT_FEATURES } from '@bevzoo/core';
import { ShapeError } from '../errors.js';
import { egoToImage, type CameraGeometry, type Frustum } from './frustum.js';

/** Values per point in the clouds read here (x, y, z, intensity, Δt) — the loader's layout, `realPoints` of a batch with MVP's virtual points. */
const POINT_STRIDE = LIDAR_POINT_FEATURES;

/**
 * Depth bin label of every feature cell: Int32Array [B·N·fH·fW] (camera-major within a sample, rows then columns),
 * −1 where no keyframe point (Δt = 0) projects or its depth is outside the bins. `points[b]` holds sample b's
 * points in the ego frame after bda (`realPoints(batch)`: the loader's `Batch.points`, without MVP's virtual points). The bin of depth d is ⌊(d − start) / step⌋
 * (BEVDepth's `get_downsampled_gt_depth`); among the points of a cell the nearest one wins.
 */
export function depthLabels(points: readonly Float32Array[], geom: CameraGeometry, frustum: Frustum, numCameras = 6): Int32Array {
  const { batch, project } = egoToImage(geom, numCameras);
  if (points.length !== batch) throw new ShapeError('depthLabels: points', `one cloud per sample (${batch})`, `${points.length}`);
  const { fH, fW, D } = frustum;
  const [start, , step] = frustum.config.depthBins;
  const [H, W] = frustum.config.imageSize;
  const stride = frustum.config.featureStride;
  const cells = fH * fW;
  const nearest = new Float64Array(batch * numCameras * cells).fill(Infinity);
  const uvd = new Float64Array(3);
  for (let b = 0; b < batch; b++) {
    const pts = points[b]!;
    for (let n = 0; n < numCameras; n++) {
      const k = b * numCameras + n;
      for (let i = 0; i + POINT_STRIDE <= pts.length; i += POINT_STRIDE) {
        if (pts[i + 4] !== 0) continue; // keyframe points only
        if (!project(k, pts[i]!, pts[i + 1]!, pts[i + 2]!, uvd)) continue;
        const [u, v, d] = uvd as unknown as [number, number, number];
        if (!(u >= 0 && u < W && v >= 0 && v < H)) continue;
        const c = k * cells + Math.floor(v / stride) * fW + Math.floor(u / stride);
        if (d < nearest[c]!) nearest[c] = d;
      }
    }
  }
  const labels = new Int32Array(nearest.length).fill(-1);
  for (let c = 0; c < nearest.length; c++) {
    const d = nearest[c]!;
    if (!Number.isFinite(d)) continue;
    const bin = Math.floor((d - start) / step);
    if (bin >= 0 && bin < D) labels[c] = bin;
  }
  return labels;
}

/**
 * BEVDepth's depth loss: binary cross-entropy of `depth` [B·N, fH, fW, D] (probabilities, e.g. a softmax) against
 * the one-hot labels, summed over the bins, averaged over the labelled cells (0 when none is labelled).
 */
export function depthLoss(depth: tf.Tensor4D, labels: Int32Array): tf.Scalar {
  const [K, fH, fW, D] = depth.shape;
  if (labels.length !== K * fH * fW) throw new ShapeError('depthLoss: labels', `${K * fH * fW} cells ([B·N, fH, fW] of the depth)`, `${labels.length}`);
  const idx: number[] = [];
  for (let c = 0; c < labels.length; c++) if (labels[c]! >= 0) idx.push(c);
  if (idx.length === 0) return tf.tidy(() => tf.mul(tf.sum(depth), 0) as tf.Scalar);
  return tf.tidy(() => {
    const p = tf.clipByValue(tf.gather(tf.reshape(depth, [K * fH * fW, D]), tf.tensor1d(idx, 'int32')), 1e-6, 1 - 1e-6);
    const y = tf.cast(tf.oneHot(tf.tensor1d(idx.map((c) => labels[c]!), 'int32'), D), 'float32');
    const bce = tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))));
    return tf.div(tf.sum(bce), idx.length) as tf.Scalar;
  });
}
