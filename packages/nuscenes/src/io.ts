/** Data files of a nuScenes folder: LiDAR .pcd.bin, camera images, Occ3D labels.npz. */
import { readFile } from 'node:fs/promises';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { NuScenesError } from './errors.js';

/** Where a data file comes from, for error messages. */
export interface FileOrigin {
  table?: string;
  token?: string;
  field?: string;
}

/** Read a whole file; a missing file is a NuScenesError naming the path and the record that points to it. */
export async function readDataFile(path: string, origin: FileOrigin = {}): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = origin.token ? ` (${origin.table ?? 'record'} ${origin.token}, field "${origin.field ?? 'filename'}")` : '';
    if (err.code === 'ENOENT')
      throw new NuScenesError(`Missing file ${path}${where}`, { file: path, ...origin, field: origin.field ?? 'filename', expected: 'an existing file' });
    throw new NuScenesError(`Cannot read ${path}${where}: ${err.message}`, { file: path, ...origin, field: origin.field ?? 'filename' });
  }
}

/** Values per point in a nuScenes LiDAR .pcd.bin: x, y, z, intensity, ring index (float32 each). */
export const PCD_BIN_DIMS = 5;

/** Parse a nuScenes LiDAR .pcd.bin (raw little-endian float32, 5 per point, all finite). */
export function parsePcdBin(buf: Uint8Array, path: string, origin: FileOrigin = {}): Float32Array {
  const bytesPerPoint = PCD_BIN_DIMS * 4;
  if (buf.byteLength % bytesPerPoint !== 0)
    throw new NuScenesError(
      `${path}: size ${buf.byteLength} bytes is not a multiple of ${bytesPerPoint} (5 float32 per point: x, y, z, intensity, ring)` +
        (origin.token ? ` (${origin.table ?? 'sample_data'} ${origin.token}, field "filename")` : ''),
      { file: path, ...origin, field: origin.field ?? 'filename', expected: `a multiple of ${bytesPerPoint} bytes`, found: `${buf.byteLength} bytes` },
    );
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  for (let i = 0; i < out.length; i++) {
    if (Number.isFinite(out[i]!)) continue;
    const point = Math.floor(i / PCD_BIN_DIMS), value = ['x', 'y', 'z', 'intensity', 'ring'][i % PCD_BIN_DIMS];
    throw new NuScenesError(
      `${path}: point ${point} has ${value} = ${out[i]} (every value of a .pcd.bin must be finite)` +
        (origin.token ? ` (${origin.table ?? 'sample_data'} ${origin.token}, field "filename")` : ''),
      { file: path, ...origin, field: origin.field ?? 'filename', expected: 'finite float32 values', found: `${value} = ${out[i]} at point ${point}` },
    );
  }
  return out;
}

/** A decoded RGB image, HWC uint8. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decode a JPEG (or PNG) into RGB; an undecodable file is a NuScenesError naming the file and record. */
export function decodeImage(buf: Uint8Array, path: string, origin: FileOrigin = {}): RgbImage {
  const where = origin.token ? ` (${origin.table ?? 'sample_data'} ${origin.token}, field "filename")` : '';
  const isPng = buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47;
  try {
    if (isPng) {
      const png = PNG.sync.read(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
      const rgb = new Uint8Array(png.width * png.height * 3);
      for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
        rgb[i] = png.data[j]!;
        rgb[i + 1] = png.data[j + 1]!;
        rgb[i + 2] = png.data[j + 2]!;
      }
      return { width: png.width, height: png.height, data: rgb };
    }
    const img = decodeJpeg(buf, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
    if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 3) throw new Error('empty image');
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new NuScenesError(`Cannot decode image ${path}${where}: ${(e as Error).message}`, {
      file: path, ...origin, field: origin.field ?? 'filename', expected: 'a decodable JPEG or PNG image', found: `${buf.byteLength} bytes that do not decode`,
    });
  }
}

/**
 * Bilinear resampling of an RGB image through an affine map given from OUTPUT pixel to SOURCE pixel coordinates
 * (pixel centres at integer coordinates): src = [a b c; d e f]·[x y 1]. Samples outside the source image by more
 * than half a pixel are `fill`; inside the border half pixel the edge is clamped.
 */
export function warpAffineRgb(
  src: RgbImage, outW: number, outH: number, inv: readonly [number, number, number, number, number, number], fill = 0,
  out: Uint8Array = new Uint8Array(outW * outH * 3),
): Uint8Array {
  const { width: W, height: H, data } = src;
  const [a, b, c, d, e, f] = inv;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const u = a * x + b * y + c, v = d * x + e * y + f;
      const o = (y * outW + x) * 3;
      if (u < -0.5 || v < -0.5 || u > W - 0.5 || v > H - 0.5) {
        out[o] = fill; out[o + 1] = fill; out[o + 2] = fill;
        continue;
      }
      const uc = Math.min(Math.max(u, 0), W - 1), vc = Math.min(Math.max(v, 0), H - 1);
      const x0 = Math.floor(uc), y0 = Math.floor(vc);
      const x1 = Math.min(x0 + 1, W - 1), y1 = Math.min(y0 + 1, H - 1);
      const fx = uc - x0, fy = vc - y0;
      const i00 = (y0 * W + x0) * 3, i01 = (y0 * W + x1) * 3, i10 = (y1 * W + x0) * 3, i11 = (y1 * W + x1) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = data[i00 + ch]! + (data[i01 + ch]! - data[i00 + ch]!) * fx;
        const bot = data[i10 + ch]! + (data[i11 + ch]! - data[i10 + ch]!) * fx;
        out[o + ch] = Math.round(top + (bot - top) * fy);
      }
    }
  }
  return out;
}

/**
 * Nearest-neighbour resampling of a one-channel label image (segment ids) through an affine map from OUTPUT pixel to
 * SOURCE pixel coordinates (pixel centres at integers), as `warpAffineRgb` does for colours: each output pixel takes
 * the label of the source pixel containing its preimage; preimages outside the source image are `fill`.
 */
export function warpAffineNearest(
  src: ArrayLike<number>, W: number, H: number, outW: number, outH: number, inv: readonly [number, number, number, number, number, number], fill = 0,
  out: Int32Array = new Int32Array(outW * outH),
): Int32Array {
  const [a, b, c, d, e, f] = inv;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const u = Math.floor(a * x + b * y + c + 0.5), v = Math.floor(d * x + e * y + f + 0.5);
      out[y * outW + x] = u < 0 || v < 0 || u >= W || v >= H ? fill : src[v * W + u]!;
    }
  }
  return out;
}

/** How an image is brought to the target size. */
export type ResizeMode = 'crop' | 'stretch';

/**
 * The resize + crop that brings an image of `srcW × srcH` to `outW × outH`, as an affine map of pixel-centre
 * coordinates: out = s·(src + 0.5) − 0.5 − crop. 'stretch' scales x and y separately; 'crop' (BEVDet's test-time
 * transform) scales both by max(outW/srcW, outH/srcH), crops the width centred and keeps the bottom rows.
 * Returns the forward map [sx, 0, tx; 0, sy, ty].
 */
export function resizeTransform(srcW: number, srcH: number, outW: number, outH: number, mode: ResizeMode): { sx: number; sy: number; tx: number; ty: number } {
  if (mode === 'stretch') {
    const sx = outW / srcW, sy = outH / srcH;
    return { sx, sy, tx: 0.5 * sx - 0.5, ty: 0.5 * sy - 0.5 };
  }
  const s = Math.max(outW / srcW, outH / srcH);
  const cropX = (srcW * s - outW) / 2, cropY = srcH * s - outH;
  return { sx: s, sy: s, tx: 0.5 * s - 0.5 - cropX, ty: 0.5 * s - 0.5 - cropY };
}

/** Resize an image (see resizeTransform), returning the pixels and the forward transform. */
export function resizeRgb(src: RgbImage, outW: number, outH: number, mode: ResizeMode): { image: RgbImage; sx: number; sy: number; tx: number; ty: number } {
  const t = resizeTransform(src.width, src.height, outW, outH, mode);
  if (t.sx === 1 && t.sy === 1 && t.tx === 0 && t.ty === 0) return { image: { width: outW, height: outH, data: src.data.slice() }, ...t };
  const data = warpAffineRgb(src, outW, outH, [1 / t.sx, 0, -t.tx / t.sx, 0, 1 / t.sy, -t.ty / t.sy]);
  return { image: { width: outW, height: outH, data }, ...t };
}
