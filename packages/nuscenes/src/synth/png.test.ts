import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { createRng } from '@bevzoo/core';
import { PngFormatError, decodePng, encodePng } from './png.js';
import { readSegmentIds } from './index.js';

/** The filtered scanlines of a PNG (IDAT inflated by node:zlib), read without pngjs. */
function scanlines(png: Uint8Array): { bitDepth: number; colorType: number; raw: Uint8Array } {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const idat: Uint8Array[] = [];
  for (let p = 8; p < png.length; ) {
    const len = dv.getUint32(p), type = String.fromCharCode(...png.subarray(p + 4, p + 8));
    if (type === 'IDAT') idat.push(png.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  return { bitDepth: png[24]!, colorType: png[25]!, raw: new Uint8Array(inflateSync(Buffer.concat(idat))) };
}

describe('png (pngjs wrapper)', () => {
  it('round-trips gray, RGB and RGBA at 8 and 16 bit exactly', () => {
    const rng = createRng(1);
    const g16 = new Uint16Array(9 * 5).map(() => rng.int(65536));
    g16.set([0, 1, 255, 256, 0xff00, 0xffff]);
    const cases = [
      { width: 9, height: 5, channels: 1 as const, bitDepth: 16 as const, data: g16 },
      { width: 11, height: 6, channels: 1 as const, bitDepth: 8 as const, data: new Uint8Array(66).map(() => rng.int(256)) },
      { width: 13, height: 7, channels: 3 as const, bitDepth: 8 as const, data: new Uint8Array(13 * 7 * 3).map(() => rng.int(256)) },
      { width: 3, height: 4, channels: 4 as const, bitDepth: 8 as const, data: new Uint8Array(3 * 4 * 4).map(() => rng.int(256)) },
      { width: 5, height: 3, channels: 3 as const, bitDepth: 16 as const, data: new Uint16Array(5 * 3 * 3).map(() => rng.int(65536)) },
      { width: 4, height: 2, channels: 4 as const, bitDepth: 16 as const, data: new Uint16Array(4 * 2 * 4).map(() => rng.int(65536)) },
    ];
    for (const img of cases) {
      const back = decodePng(encodePng(img));
      expect([back.width, back.height, back.channels, back.bitDepth]).toEqual([img.width, img.height, img.channels, img.bitDepth]);
      expect(back.data.constructor).toBe(img.data.constructor);
      expect(Array.from(back.data)).toEqual(Array.from(img.data));
    }
  });

  it('writes 16-bit samples big-endian with filter Up, deterministically', () => {
    const img = { width: 2, height: 2, channels: 1 as const, bitDepth: 16 as const, data: new Uint16Array([0x0102, 0xa0b0, 0x0103, 0xa0b0]) };
    const png = encodePng(img);
    expect(png).toEqual(encodePng(img));
    const { bitDepth, colorType, raw } = scanlines(png);
    expect([bitDepth, colorType]).toEqual([16, 0]);
    // Row 0: filter Up over a zero row (the samples as they are); row 1: the difference to row 0.
    expect(Array.from(raw)).toEqual([2, 0x01, 0x02, 0xa0, 0xb0, 2, 0, 1, 0, 0]);
  });

  it('encodes a 16-bit view into a larger buffer (pngjs reads 16-bit input from byte 0 of the buffer)', () => {
    const backing = new Uint16Array(20).map((_, i) => 1000 + i);
    const view = backing.subarray(4, 10);
    expect(Array.from(decodePng(encodePng({ width: 3, height: 2, channels: 1, bitDepth: 16, data: view })).data)).toEqual(Array.from(view));
  });

  it('decodes gray + alpha as RGBA and other tools\' 16-bit files', () => {
    const ga = PNG.sync.write({ width: 1, height: 1, data: Buffer.from([10, 20, 30, 40]) } as unknown as PNG, { colorType: 4 });
    const a = decodePng(ga);
    expect([a.channels, a.bitDepth]).toEqual([4, 8]);
    expect(Array.from(a.data)).toEqual([20, 20, 20, 40]);
    const rgb16 = PNG.sync.write({ width: 1, height: 1, data: Buffer.from(new Uint16Array([1, 300, 65535, 65535]).buffer) } as unknown as PNG, { colorType: 2, bitDepth: 16 });
    const b = decodePng(rgb16);
    expect([b.channels, b.bitDepth]).toEqual([3, 16]);
    expect(Array.from(b.data)).toEqual([1, 300, 65535]);
  });

  it('names the file in its errors', () => {
    expect(() => decodePng(new Uint8Array([1, 2, 3]), 'maps/m.png')).toThrow(PngFormatError);
    expect(() => decodePng(new Uint8Array([1, 2, 3]), 'maps/m.png')).toThrow(/^maps\/m\.png: expected a readable PNG file: /);
    const png = encodePng({ width: 4, height: 4, channels: 1, bitDepth: 8, data: new Uint8Array(16) });
    const corrupt = png.slice();
    corrupt[29] ^= 1; // the CRC of IHDR
    expect(() => decodePng(corrupt, 'segments/CAM_FRONT/x.png')).toThrow(/^segments\/CAM_FRONT\/x\.png: expected a readable PNG file: /);
    expect(() => decodePng(png.subarray(0, 40), 'cut.png')).toThrow(/^cut\.png: /);
    expect(() => encodePng({ width: 4, height: 4, channels: 1, bitDepth: 8, data: new Uint8Array(15) })).toThrow(/encodePng: expected 16 samples, found 15/);
    expect(() => encodePng({ width: 2, height: 2, channels: 1, bitDepth: 16, data: new Uint8Array(4) })).toThrow(/Uint16Array for bit depth 16/);
  });

  it('readSegmentIds wants a 16-bit gray PNG', () => {
    const ids = new Uint16Array([0, 1, 2, 400, 0, 3]);
    expect(readSegmentIds(encodePng({ width: 3, height: 2, channels: 1, bitDepth: 16, data: ids }))).toEqual({ width: 3, height: 2, ids });
    const gray8 = encodePng({ width: 3, height: 2, channels: 1, bitDepth: 8, data: new Uint8Array(6) });
    expect(() => readSegmentIds(gray8, 'segments/CAM_BACK/y.png')).toThrow(/^segments\/CAM_BACK\/y\.png: expected a 16-bit grayscale segment PNG, found 1 channel\(s\) at 8 bit/);
    expect(() => readSegmentIds(new Uint8Array(8), 'segments/CAM_BACK/z.png')).toThrow(/^segments\/CAM_BACK\/z\.png: /);
  });
});
