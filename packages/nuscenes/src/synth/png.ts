/**
 * Minimal deterministic PNG codec for the generator's own files: grayscale (8 or 16 bit) or RGB(A) 8 bit,
 * non-interlaced. Decoding handles all five row filters, so PNGs written by other tools also read.
 */
import { deflateSync } from 'node:zlib';
import { unzlibSync } from 'fflate';
import { BevzooError } from '@bevzoo/core';
import { crc32 } from '../npz.js';

export interface PngImage {
  width: number;
  height: number;
  /** 1 (gray), 3 (RGB) or 4 (RGBA). */
  channels: 1 | 3 | 4;
  bitDepth: 8 | 16;
  /** Samples row-major, channel-interleaved: Uint8Array for 8 bit, Uint16Array for 16 bit. */
  data: Uint8Array | Uint16Array;
}

export class PngFormatError extends BevzooError {
  constructor(message: string, readonly where: string) {
    super(`${where}: ${message}`, { where });
  }
}


const COLOR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 };

/** Encode with row filter "Up" (good for label images) and a fixed deflate level (node:zlib): same input, same bytes. */
export function encodePng(img: PngImage, level: 1 | 6 | 9 = 6): Uint8Array {
  const { width: W, height: H, channels: C, bitDepth } = img;
  const bps = bitDepth / 8;
  const stride = W * C * bps;
  if (img.data.length !== W * H * C) throw new PngFormatError(`expected ${W * H * C} samples, found ${img.data.length}`, 'encodePng');
  const raw = new Uint8Array((stride + 1) * H);
  const row = new Uint8Array(stride), prev = new Uint8Array(stride);
  for (let y = 0; y < H; y++) {
    if (bitDepth === 8) row.set((img.data as Uint8Array).subarray(y * W * C, (y + 1) * W * C));
    else {
      const d = img.data as Uint16Array;
      for (let x = 0, o = y * W * C; x < W * C; x++) {
        row[2 * x] = d[o + x]! >> 8;
        row[2 * x + 1] = d[o + x]! & 0xff;
      }
    }
    const o = y * (stride + 1);
    raw[o] = y === 0 ? 0 : 2;
    for (let x = 0; x < stride; x++) raw[o + 1 + x] = y === 0 ? row[x]! : (row[x]! - prev[x]!) & 0xff;
    prev.set(row);
  }
  const idat = new Uint8Array(deflateSync(raw, { level }));
  const out = new Uint8Array(8 + 25 + 12 + idat.length + 12);
  out.set([137, 80, 78, 71, 13, 10, 26, 10]);
  let p = 8;
  const chunk = (type: string, data: Uint8Array) => {
    const dv = new DataView(out.buffer);
    dv.setUint32(p, data.length);
    for (let i = 0; i < 4; i++) out[p + 4 + i] = type.charCodeAt(i);
    out.set(data, p + 8);
    dv.setUint32(p + 8 + data.length, crc32(out, p + 4, p + 8 + data.length));
    p += 12 + data.length;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, W);
  dv.setUint32(4, H);
  ihdr[8] = bitDepth;
  ihdr[9] = COLOR_TYPE[C]!;
  chunk('IHDR', ihdr);
  chunk('IDAT', idat);
  chunk('IEND', new Uint8Array(0));
  return out;
}

/** Decode a non-interlaced grayscale / RGB / RGBA PNG of bit depth 8 or 16. */
export function decodePng(bytes: Uint8Array, where = 'png'): PngImage {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 33 || sig.some((s, i) => bytes[i] !== s)) throw new PngFormatError('expected the PNG signature', where);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  let W = 0, H = 0, bitDepth = 0, colorType = -1, interlace = 0;
  const idat: Uint8Array[] = [];
  while (p + 8 <= bytes.length) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(bytes[p + 4]!, bytes[p + 5]!, bytes[p + 6]!, bytes[p + 7]!);
    const data = bytes.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      W = dv.getUint32(p + 8); H = dv.getUint32(p + 12);
      bitDepth = bytes[p + 16]!; colorType = bytes[p + 17]!; interlace = bytes[p + 20]!;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    p += 12 + len;
  }
  const channels = colorType === 0 ? 1 : colorType === 2 ? 3 : colorType === 6 ? 4 : 0;
  if (!channels || (bitDepth !== 8 && bitDepth !== 16) || interlace !== 0) {
    throw new PngFormatError(`unsupported PNG (color type ${colorType}, bit depth ${bitDepth}, interlace ${interlace}); expected gray/RGB/RGBA, 8 or 16 bit, not interlaced`, where);
  }
  const total = idat.reduce((a, b) => a + b.length, 0);
  const z = new Uint8Array(total);
  let o = 0;
  for (const c of idat) { z.set(c, o); o += c.length; }
  const raw = unzlibSync(z);
  const bpp = channels * (bitDepth / 8);
  const stride = W * bpp;
  if (raw.length < (stride + 1) * H) throw new PngFormatError(`expected ${(stride + 1) * H} bytes of image data, found ${raw.length}`, where);
  const cur = new Uint8Array(stride), prev = new Uint8Array(stride);
  const out = bitDepth === 8 ? new Uint8Array(W * H * channels) : new Uint16Array(W * H * channels);
  for (let y = 0; y < H; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp]! : 0, b = prev[x]!, c = x >= bpp ? prev[x - bpp]! : 0;
      let v = src[x]!;
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const pp = a + b - c, pa = Math.abs(pp - a), pb = Math.abs(pp - b), pc = Math.abs(pp - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new PngFormatError(`row ${y}: unknown filter ${f}`, where);
      cur[x] = v & 0xff;
    }
    if (bitDepth === 8) (out as Uint8Array).set(cur, y * stride);
    else for (let x = 0; x < W * channels; x++) (out as Uint16Array)[y * W * channels + x] = (cur[2 * x]! << 8) | cur[2 * x + 1]!;
    prev.set(cur);
  }
  return { width: W, height: H, channels: channels as 1 | 3 | 4, bitDepth: bitDepth as 8 | 16, data: out };
}
