/**
 * PNG files of the generator (16-bit gray instance segments, 8-bit gray map masks), encoded and decoded by pngjs.
 * This wrapper gives them our `PngImage` shape (samples as Uint8Array / Uint16Array, the file's own channel count)
 * and errors that name the file.
 */
import { PNG, type ColorType, type PNGWithMetadata } from 'pngjs';
import { BevzooError } from '@bevzoo/core';

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

const COLOR_TYPE: Record<PngImage['channels'], ColorType> = { 1: 0, 3: 2, 4: 6 };

/**
 * Encode with row filter "Up" (good for label images) and a fixed deflate level: same input, same bytes.
 * 16-bit samples are written big-endian as PNG requires (pngjs does the byte order).
 */
export function encodePng(img: PngImage, level: 1 | 6 | 9 = 6): Uint8Array {
  const { width: W, height: H, channels: C, bitDepth } = img;
  if (img.data.length !== W * H * C) throw new PngFormatError(`expected ${W * H * C} samples, found ${img.data.length}`, 'encodePng');
  if ((bitDepth === 16) !== (img.data instanceof Uint16Array)) {
    throw new PngFormatError(`expected ${bitDepth === 16 ? 'a Uint16Array' : 'a Uint8Array'} for bit depth ${bitDepth}`, 'encodePng');
  }
  // pngjs views 16-bit input as `new Uint16Array(data.buffer)`, i.e. from byte 0 of the buffer: hand it its own buffer.
  const data = bitDepth === 16 && (img.data.byteOffset !== 0 || img.data.buffer.byteLength !== img.data.byteLength) ? img.data.slice() : img.data;
  const png = { width: W, height: H, data } as unknown as PNG;
  return PNG.sync.write(png, {
    colorType: COLOR_TYPE[C], inputColorType: COLOR_TYPE[C], inputHasAlpha: C === 4, bitDepth,
    filterType: 2, deflateLevel: level, deflateStrategy: 0,
  });
}

/**
 * Decode a PNG (any color type, bit depth and interlacing pngjs reads). Gray → 1 channel, RGB → 3, gray + alpha and
 * palette images → RGBA (4). 16-bit files keep their 16-bit samples; 1-, 2- and 4-bit ones are scaled to 8 bit.
 */
export function decodePng(bytes: Uint8Array, where = 'png'): PngImage {
  let png: PNGWithMetadata;
  // IHDR's bit depth is byte 24 (signature 8, chunk length 4, "IHDR" 4, width 4, height 4).
  const sixteen = bytes.length > 24 && bytes[24] === 16;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: sixteen });
  } catch (e) {
    throw new PngFormatError(`expected a readable PNG file: ${(e as Error).message}`, where);
  }
  const { width: W, height: H } = png;
  // pngjs gives RGBA (Buffer for 8 bit, Uint16Array for 16 bit with skipRescale).
  const rgba = png.data as Uint8Array | Uint16Array;
  const channels: PngImage['channels'] = png.colorType === 0 ? 1 : png.colorType === 2 ? 3 : 4;
  const bitDepth = sixteen ? 16 : 8;
  if (rgba.length !== W * H * 4) throw new PngFormatError(`expected ${W * H * 4} decoded samples, found ${rgba.length}`, where);
  let data: Uint8Array | Uint16Array;
  if (channels === 4) data = bitDepth === 16 ? Uint16Array.from(rgba) : new Uint8Array(rgba);
  else {
    data = bitDepth === 16 ? new Uint16Array(W * H * channels) : new Uint8Array(W * H * channels);
    for (let p = 0, o = 0; p < W * H; p++) for (let c = 0; c < channels; c++) data[o++] = rgba[p * 4 + c]!;
  }
  return { width: W, height: H, channels, bitDepth, data };
}
