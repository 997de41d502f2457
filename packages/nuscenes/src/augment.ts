/**
 * BEVDet-style data augmentation. Image space: resize by a random factor, crop, horizontal flip, small rotation,
 * recorded as one affine 3×3 `postAug` acting on pixel coordinates (pixel centres at integers), so that
 * pixel_aug = postAug · [u, v, 1] for u, v = K·p / z. BEV space: rotation, scaling and flips of the ego frame,
 * recorded as a 3×3 `bda` applied to points, boxes (centre, size, yaw, velocity) and, by the model, to the
 * camera-to-ego extrinsics.
 */
import { mat3Inverse, mat3Mul, wrapAngle, type Mat3, type Rng } from '@bevzoo/core';
import { warpAffineRgb } from './io.js';

export interface ImageAugConfig {
  /** Random scale range. */
  resizeLim: [number, number];
  /** Rotation range in degrees. */
  rotLim: [number, number];
  /** Flip horizontally with probability 0.5. */
  flip: boolean;
  /** Fraction of the bottom rows that may be cropped away (BEVDet's bot_pct_lim). */
  botPctLim: [number, number];
}

export interface BevAugConfig {
  /** Rotation range in degrees (about +z). */
  rotLim: [number, number];
  scaleLim: [number, number];
  /** Probability of x → −x. */
  flipXRatio: number;
  /** Probability of y → −y. */
  flipYRatio: number;
}

export interface AugmentConfig {
  image: ImageAugConfig | false;
  bev: BevAugConfig | false;
}

/** BEVDet's training ranges (on an image already at the target size). */
export const DEFAULT_AUGMENT: AugmentConfig = {
  image: { resizeLim: [0.94, 1.11], rotLim: [-5.4, 5.4], flip: true, botPctLim: [0, 0] },
  bev: { rotLim: [-22.5, 22.5], scaleLim: [0.95, 1.05], flipXRatio: 0.5, flipYRatio: 0.5 },
};

export const IDENTITY3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** The parameters of one image augmentation (for logging and for re-use on the previous frame). */
export interface ImageAugParams {
  resize: number;
  cropX: number;
  cropY: number;
  flip: boolean;
  /** degrees */
  rotate: number;
}

/** Draw image augmentation parameters for an image of W×H (BEVDet's sample_augmentation, train mode). */
export function sampleImageAug(rng: Rng, config: ImageAugConfig, W: number, H: number): ImageAugParams {
  const resize = rng.uniform(config.resizeLim[0], config.resizeLim[1]);
  const newW = Math.floor(W * resize), newH = Math.floor(H * resize);
  const cropY = Math.floor((1 - rng.uniform(config.botPctLim[0], config.botPctLim[1])) * newH) - H;
  const cropX = Math.floor(rng.uniform(0, Math.max(0, newW - W)));
  const flip = config.flip && rng.next() < 0.5;
  const rotate = rng.uniform(config.rotLim[0], config.rotLim[1]);
  return { resize, cropX, cropY, flip, rotate };
}

/**
 * The affine 3×3 of an image augmentation on a W×H image (output also W×H): resize (pixel-centre aligned),
 * crop by (cropX, cropY), flip u → W−1−u, rotate by `rotate` degrees about the image centre.
 */
export function imageAugMatrix(p: ImageAugParams, W: number, H: number): Mat3 {
  const s = p.resize;
  let m: Mat3 = [s, 0, 0.5 * s - 0.5 - p.cropX, 0, s, 0.5 * s - 0.5 - p.cropY, 0, 0, 1];
  if (p.flip) m = mat3Mul([-1, 0, W - 1, 0, 1, 0, 0, 0, 1], m);
  if (p.rotate !== 0) {
    const a = (p.rotate / 180) * Math.PI, c = Math.cos(a), sn = Math.sin(a);
    const cx = (W - 1) / 2, cy = (H - 1) / 2;
    m = mat3Mul([c, -sn, cx - c * cx + sn * cy, sn, c, cy - sn * cx - c * cy, 0, 0, 1], m);
  }
  return m;
}

/** Apply an image augmentation matrix to an RGB image (out-of-image pixels are black). */
export function warpImage(src: Uint8Array, W: number, H: number, postAug: Mat3, out?: Uint8Array): Uint8Array {
  const inv = mat3Inverse(postAug);
  return warpAffineRgb({ width: W, height: H, data: src }, W, H, [inv[0], inv[1], inv[2], inv[3], inv[4], inv[5]], 0, out);
}

/** One BEV augmentation. */
export interface BevAugParams {
  /** degrees */
  rotate: number;
  scale: number;
  flipX: boolean;
  flipY: boolean;
}

export function sampleBevAug(rng: Rng, config: BevAugConfig): BevAugParams {
  const rotate = rng.uniform(config.rotLim[0], config.rotLim[1]);
  const scale = rng.uniform(config.scaleLim[0], config.scaleLim[1]);
  const flipX = rng.next() < config.flipXRatio;
  const flipY = rng.next() < config.flipYRatio;
  return { rotate, scale, flipX, flipY };
}

/** BEVDet's bda matrix: flip · scale · rotation. */
export function bevAugMatrix(p: BevAugParams): Mat3 {
  const a = (p.rotate / 180) * Math.PI, c = Math.cos(a), s = Math.sin(a);
  const rot: Mat3 = [c, -s, 0, s, c, 0, 0, 0, 1];
  const k = p.scale;
  const flip: Mat3 = [p.flipX ? -1 : 1, 0, 0, 0, p.flipY ? -1 : 1, 0, 0, 0, 1];
  return mat3Mul(flip, mat3Mul([k, 0, 0, 0, k, 0, 0, 0, k], rot));
}

/** Apply bda to xyz of points stored `stride` floats apart (in place). */
export function applyBdaToPoints(bda: Mat3, pts: Float32Array, stride: number): void {
  for (let o = 0; o + 2 < pts.length; o += stride) {
    const x = pts[o]!, y = pts[o + 1]!, z = pts[o + 2]!;
    pts[o] = bda[0] * x + bda[1] * y + bda[2] * z;
    pts[o + 1] = bda[3] * x + bda[4] * y + bda[5] * z;
    pts[o + 2] = bda[6] * x + bda[7] * y + bda[8] * z;
  }
}

/** Apply a BEV augmentation to one box (BEVDet's bev_transform). Velocity (vx, vy) goes through bda's 2×2 block. */
export function applyBevAugToBox(
  p: BevAugParams, bda: Mat3, center: readonly number[], size: readonly number[], yaw: number, velocity: readonly number[],
): { center: [number, number, number]; size: [number, number, number]; yaw: number; velocity: [number, number] } {
  const [x, y, z] = center as [number, number, number];
  let ny = yaw + (p.rotate / 180) * Math.PI;
  if (p.flipX) ny = Math.PI - ny;
  if (p.flipY) ny = -ny;
  return {
    center: [bda[0] * x + bda[1] * y + bda[2] * z, bda[3] * x + bda[4] * y + bda[5] * z, bda[6] * x + bda[7] * y + bda[8] * z],
    size: [size[0]! * p.scale, size[1]! * p.scale, size[2]! * p.scale],
    yaw: wrapAngle(ny),
    velocity: [bda[0] * velocity[0]! + bda[1] * velocity[1]!, bda[3] * velocity[0]! + bda[4] * velocity[1]!],
  };
}

/** A copy of an Occ3D [x, y, z] grid flipped as the BEV flips do (x → −x mirrors the x index; the grid is symmetric about the ego). */
export function flipOccGrid(grid: Uint8Array, flipX: boolean, flipY: boolean, X = 200, Y = 200, Z = 16): Uint8Array {
  if (!flipX && !flipY) return grid;
  const out = new Uint8Array(grid.length);
  for (let x = 0; x < X; x++) {
    const sx = flipX ? X - 1 - x : x;
    for (let y = 0; y < Y; y++) {
      const sy = flipY ? Y - 1 - y : y;
      out.set(grid.subarray((sx * Y + sy) * Z, (sx * Y + sy + 1) * Z), (x * Y + y) * Z);
    }
  }
  return out;
}
