/**
 * Lift-Splat-Shoot geometry (BEVDet's create_frustum / get_geometry, bda applied as in BEVDet 2.x), in plain JS
 * on typed arrays: camera geometry is data, no gradient flows through it.
 *
 * Conventions:
 * - Pixel coordinates have pixel centres at integers (as @bevzoo/nuscenes' postAug): the pixel in column u spans
 *   [u − ½, u + ½].
 * - Frustum point order (per camera): ((y·fW + x)·D + d), i.e. feature row, feature column, depth bin — the
 *   order of an NHWC depth map [fH, fW, D] flattened, so no transpose is needed to line points up with features.
 * - Matrices are row-major: intrinsics [3, 3], sensor2ego [4, 4] camera → ego, postAug [3, 3] with
 *   pixel_aug = postAug · [u, v, 1], bda [3, 3] applied to ego points after sensor2ego.
 */
import { mat3Inverse, type Mat3 } from '@bevzoo/core';
import { ConfigurationError, ShapeError } from '../errors.js';

/** Depth bins as torch.arange(start, stop, step): start, start + step, … < stop. */
export type DepthBins = [start: number, stop: number, step: number];

export interface FrustumConfig {
  /** [H, W] of the (augmented) network input image. */
  imageSize: [number, number];
  /** Image pixels per feature cell (the image feature map is ⌊H/stride⌋ × ⌊W/stride⌋). */
  featureStride: number;
  depthBins: DepthBins;
  /**
   * Where a feature cell's pixel sits: 'center' (default) at the centre of the stride × stride pixel block it
   * covers, x·s + (s − 1)/2; 'linspace' as BEVDet's create_frustum, linspace(0, W − 1, fW).
   */
  pixelMode?: 'center' | 'linspace';
}

export interface Frustum {
  readonly config: Required<FrustumConfig>;
  /** Feature map rows and columns. */
  readonly fH: number;
  readonly fW: number;
  /** Depth bins. */
  readonly D: number;
  /** The depth of each bin (metres along the camera axis). */
  readonly depths: Float64Array;
  /** Pixel column of each feature column and pixel row of each feature row (augmented image). */
  readonly us: Float64Array;
  readonly vs: Float64Array;
  /** [fH·fW·D, 3] (u, v, d) per point, in point order (y·fW + x)·D + d. */
  readonly points: Float32Array;
}

/** Number of bins of torch.arange(start, stop, step). */
export function depthBinCount(bins: DepthBins): number {
  const [start, stop, step] = bins;
  if (!(step > 0) || !(stop > start)) throw new ConfigurationError(`depthBins: expected [start, stop, step] with stop > start and step > 0, found [${bins.join(', ')}]`);
  return Math.ceil((stop - start) / step - 1e-9);
}

/** The depth of every bin. */
export function depthBinValues(bins: DepthBins): Float64Array {
  const D = depthBinCount(bins);
  const out = new Float64Array(D);
  for (let d = 0; d < D; d++) out[d] = bins[0] + d * bins[2];
  return out;
}

/** Frustum points (u, v, d) at the feature cells of the augmented image, for every depth bin. */
export function createFrustum(config: FrustumConfig): Frustum {
  const cfg: Required<FrustumConfig> = { pixelMode: 'center', ...config, imageSize: [...config.imageSize], depthBins: [...config.depthBins] };
  const [H, W] = cfg.imageSize;
  const s = cfg.featureStride;
  if (!(Number.isInteger(s) && s > 0)) throw new ConfigurationError(`createFrustum: featureStride must be a positive integer, found ${s}`);
  const fH = Math.floor(H / s), fW = Math.floor(W / s);
  if (!(fH >= 1 && fW >= 1)) throw new ConfigurationError(`createFrustum: imageSize [${H}, ${W}] gives an empty feature map at stride ${s}`);
  const depths = depthBinValues(cfg.depthBins);
  const D = depths.length;
  const axis = (n: number, size: number): Float64Array => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = cfg.pixelMode === 'linspace' ? (n === 1 ? 0 : (i * (size - 1)) / (n - 1)) : i * s + (s - 1) / 2;
    return a;
  };
  const us = axis(fW, W), vs = axis(fH, H);
  const points = new Float32Array(fH * fW * D * 3);
  let o = 0;
  for (let y = 0; y < fH; y++) {
    for (let x = 0; x < fW; x++) {
      for (let d = 0; d < D; d++) {
        points[o++] = us[x]!;
        points[o++] = vs[y]!;
        points[o++] = depths[d]!;
      }
    }
  }
  return { config: cfg, fH, fW, D, depths, us, vs, points };
}

/** Camera geometry of a batch (the fields of @bevzoo/nuscenes' `Batch` with these names). */
export interface CameraGeometry {
  /** [B, N, 3, 3] intrinsics of the un-augmented image. */
  intrinsics: ArrayLike<number>;
  /** [B, N, 4, 4] camera → ego. */
  sensor2ego: ArrayLike<number>;
  /** [B, N, 3, 3] image augmentation (identity when absent). */
  postAug?: ArrayLike<number>;
  /** [B, 3, 3] BEV augmentation (identity when absent). */
  bda?: ArrayLike<number>;
}

/** Batch size of a geometry with `numCameras` cameras per sample; throws when the array lengths disagree. */
export function geometryBatchSize(geom: CameraGeometry, numCameras: number): number {
  const n = geom.intrinsics.length / (9 * numCameras);
  const check = (field: string, len: number | undefined, per: number) => {
    if (len !== undefined && len !== n * per) throw new ShapeError(`CameraGeometry.${field}`, `${n * per} values ([B=${n}, ${per === 9 ? '3, 3' : per === 16 ? '4, 4' : per}] per sample)`, `${len}`);
  };
  if (!Number.isInteger(n) || n < 1) throw new ShapeError('CameraGeometry.intrinsics', `a multiple of ${9 * numCameras} values ([B, ${numCameras}, 3, 3])`, `${geom.intrinsics.length}`);
  check('sensor2ego', geom.sensor2ego.length, 16 * numCameras);
  check('postAug', geom.postAug?.length, 9 * numCameras);
  check('bda', geom.bda?.length, 9);
  return n;
}

const mat3At = (a: ArrayLike<number>, k: number): Mat3 => Array.from({ length: 9 }, (_, i) => a[k * 9 + i]!) as Mat3;

/**
 * Per camera k = b·N + n: the affine map from (u0·d, v0·d, d) (un-augmented pixel times depth) to the ego frame
 * after bda, as a row-major 3×4 [M | t] with M = bda·R·K⁻¹ and t = bda·t_cam, plus the inverse of postAug.
 */
export function cameraTransforms(geom: CameraGeometry, numCameras: number): { toEgo: Float64Array; postAugInv: Float64Array; batch: number } {
  const B = geometryBatchSize(geom, numCameras);
  const K = B * numCameras;
  const toEgo = new Float64Array(K * 12);
  const postAugInv = new Float64Array(K * 9);
  for (let b = 0; b < B; b++) {
    const bda = geom.bda ? mat3At(geom.bda, b) : ([1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3);
    for (let n = 0; n < numCameras; n++) {
      const k = b * numCameras + n;
      const kinv = mat3Inverse(mat3At(geom.intrinsics, k));
      const s = geom.sensor2ego;
      const R = [s[k * 16]!, s[k * 16 + 1]!, s[k * 16 + 2]!, s[k * 16 + 4]!, s[k * 16 + 5]!, s[k * 16 + 6]!, s[k * 16 + 8]!, s[k * 16 + 9]!, s[k * 16 + 10]!];
      const t = [s[k * 16 + 3]!, s[k * 16 + 7]!, s[k * 16 + 11]!];
      // A = bda · R
      const A = new Float64Array(9);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) A[i * 3 + j] = bda[i * 3]! * R[j]! + bda[i * 3 + 1]! * R[3 + j]! + bda[i * 3 + 2]! * R[6 + j]!;
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) toEgo[k * 12 + i * 4 + j] = A[i * 3]! * kinv[j]! + A[i * 3 + 1]! * kinv[3 + j]! + A[i * 3 + 2]! * kinv[6 + j]!;
        toEgo[k * 12 + i * 4 + 3] = bda[i * 3]! * t[0]! + bda[i * 3 + 1]! * t[1]! + bda[i * 3 + 2]! * t[2]!;
      }
      postAugInv.set(geom.postAug ? mat3Inverse(mat3At(geom.postAug, k)) : [1, 0, 0, 0, 1, 0, 0, 0, 1], k * 9);
    }
  }
  return { toEgo, postAugInv, batch: B };
}

/** Projects ego points into the cameras' augmented images; see `egoToImage`. */
export interface EgoToImage {
  /** Samples of the geometry. */
  batch: number;
  /**
   * Point (x, y, z) in the ego frame after bda into camera k = b·N + n: writes [u, v, d] into `out` (pixels of the
   * augmented image, depth along the optical axis); false when the point is not in front of the camera (d ≤ 1e-3).
   */
  project(k: number, x: number, y: number, z: number, out: Float64Array): boolean;
}

/** The projection of ego points (after bda) into every camera's augmented image: K, the camera pose, postAug and bda. */
export function egoToImage(geom: CameraGeometry, numCameras: number): EgoToImage {
  const { toEgo, batch } = cameraTransforms(geom, numCameras);
  const K = batch * numCameras;
  const Minv = new Float64Array(K * 9), P = new Float64Array(K * 9);
  for (let k = 0; k < K; k++) {
    const T = toEgo.subarray(k * 12, k * 12 + 12);
    Minv.set(mat3Inverse([T[0]!, T[1]!, T[2]!, T[4]!, T[5]!, T[6]!, T[8]!, T[9]!, T[10]!] as Mat3), k * 9);
    P.set(geom.postAug ? Array.from({ length: 9 }, (_, i) => geom.postAug![k * 9 + i]!) : [1, 0, 0, 0, 1, 0, 0, 0, 1], k * 9);
  }
  return {
    batch,
    project(k, px, py, pz, out) {
      const x = px - toEgo[k * 12 + 3]!, y = py - toEgo[k * 12 + 7]!, z = pz - toEgo[k * 12 + 11]!;
      const m = k * 9;
      const d = Minv[m + 6]! * x + Minv[m + 7]! * y + Minv[m + 8]! * z;
      if (!(d > 1e-3)) return false;
      const u0 = (Minv[m]! * x + Minv[m + 1]! * y + Minv[m + 2]! * z) / d;
      const v0 = (Minv[m + 3]! * x + Minv[m + 4]! * y + Minv[m + 5]! * z) / d;
      const w = P[m + 6]! * u0 + P[m + 7]! * v0 + P[m + 8]!;
      out[0] = (P[m]! * u0 + P[m + 1]! * v0 + P[m + 2]!) / w;
      out[1] = (P[m + 3]! * u0 + P[m + 4]! * v0 + P[m + 5]!) / w;
      out[2] = d;
      return true;
    },
  };
}

/**
 * Ego coordinates (after bda) of every frustum point of every camera: [B, N, fH, fW, D, 3] flattened, in the
 * frustum's point order per camera. Undoes postAug, un-projects with K⁻¹ scaled by the depth, maps camera →
 * ego, then applies bda.
 */
export function frustumToEgo(frustum: Frustum, geom: CameraGeometry, numCameras = 6): Float32Array {
  const { toEgo, postAugInv, batch } = cameraTransforms(geom, numCameras);
  const P = frustum.fH * frustum.fW * frustum.D;
  const out = new Float32Array(batch * numCameras * P * 3);
  const pts = frustum.points;
  for (let k = 0; k < batch * numCameras; k++) {
    const T = toEgo.subarray(k * 12, k * 12 + 12);
    const Pi = postAugInv.subarray(k * 9, k * 9 + 9);
    let o = k * P * 3;
    for (let i = 0; i < P; i++) {
      const u = pts[i * 3]!, v = pts[i * 3 + 1]!, d = pts[i * 3 + 2]!;
      const w = Pi[6]! * u + Pi[7]! * v + Pi[8]!;
      const u0 = (Pi[0]! * u + Pi[1]! * v + Pi[2]!) / w;
      const v0 = (Pi[3]! * u + Pi[4]! * v + Pi[5]!) / w;
      const cx = u0 * d, cy = v0 * d;
      out[o++] = T[0]! * cx + T[1]! * cy + T[2]! * d + T[3]!;
      out[o++] = T[4]! * cx + T[5]! * cy + T[6]! * d + T[7]!;
      out[o++] = T[8]! * cx + T[9]! * cy + T[10]! * d + T[11]!;
    }
  }
  return out;
}
