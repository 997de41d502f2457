import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createRng } from '@bevzoo/core';
import { NpyFormatError, decodeNpy, encodeNpy, readNpz, writeNpz } from '../npz.js';
import { decodePng, encodePng } from './png.js';
import { Path } from './path.js';
import { Prism, intersectPrism, hitFace } from './prism.js';
import { profileDistance, profileSpeed } from './objects.js';

describe('npz', () => {
  it('round-trips arrays of every dtype with NumPy headers', () => {
    const arrays = {
      u1: { data: new Uint8Array([0, 1, 255]), shape: [3] },
      b1: { data: new Uint8Array([1, 0]), shape: [2], dtype: 'b1' as const },
      i2: { data: new Int16Array([-3, 4, 5, 6]), shape: [2, 2] },
      f4: { data: new Float32Array([1.5, -2]), shape: [1, 2] },
      f8: { data: new Float64Array([Math.PI]), shape: [] as number[] },
      i8: { data: new BigInt64Array([-1n, 2n]), shape: [2] },
    };
    for (const compress of [true, false]) {
      const back = readNpz(writeNpz(arrays, { compress }));
      expect(Object.keys(back)).toEqual(Object.keys(arrays));
      for (const [k, a] of Object.entries(arrays)) {
        expect(back[k]!.shape).toEqual(a.shape);
        expect(Array.from(back[k]!.data as ArrayLike<number | bigint>)).toEqual(Array.from(a.data as ArrayLike<number | bigint>));
      }
      expect(back.b1!.dtype).toBe('b1');
    }
    const npy = encodeNpy(arrays.f4);
    const headerLen = npy[8]! | (npy[9]! << 8);
    expect((10 + headerLen) % 64).toBe(0);
    expect(new TextDecoder().decode(npy.subarray(10, 10 + headerLen))).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(1, 2\), \} *\n$/);
  });

  it('is deterministic and reads big-endian arrays', () => {
    const a = { x: { data: new Uint8Array(1000).fill(7), shape: [10, 100] } };
    expect(writeNpz(a)).toEqual(writeNpz(a));
    const bytes = encodeNpy({ data: new Int32Array([0x01020304]), shape: [1] });
    const at = new TextDecoder().decode(bytes).indexOf('<i4');
    bytes[at] = '>'.charCodeAt(0);
    bytes.set([1, 2, 3, 4], bytes.length - 4);
    expect(Array.from(decodeNpy(bytes).data as Int32Array)).toEqual([0x01020304]);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]))).toThrow(NpyFormatError);
    expect(() => readNpz(new Uint8Array([1, 2, 3, 4]))).toThrow(NpyFormatError);
  });
});

describe('png', () => {
  it('round-trips 8-bit RGB and 16-bit gray images', () => {
    const rng = createRng(1);
    const rgb = new Uint8Array(13 * 7 * 3).map(() => rng.int(256));
    const a = decodePng(encodePng({ width: 13, height: 7, channels: 3, bitDepth: 8, data: rgb }));
    expect([a.width, a.height, a.channels, a.bitDepth]).toEqual([13, 7, 3, 8]);
    expect(Array.from(a.data)).toEqual(Array.from(rgb));
    const g = new Uint16Array(9 * 5).map(() => rng.int(65536));
    const b = decodePng(encodePng({ width: 9, height: 5, channels: 1, bitDepth: 16, data: g }));
    expect(Array.from(b.data)).toEqual(Array.from(g));
  });

  it('decodes all five row filters', () => {
    // A 4×3 gray image written with filters None, Sub, Up / Average / Paeth by hand.
    const px = [[10, 20, 30, 40], [15, 25, 35, 45], [5, 200, 100, 0]];
    const rows: number[] = [];
    const filters = [1, 3, 4];
    px.forEach((row, y) => {
      const f = filters[y]!;
      rows.push(f);
      row.forEach((v, x) => {
        const a = x > 0 ? row[x - 1]! : 0, b = y > 0 ? px[y - 1]![x]! : 0, c = x > 0 && y > 0 ? px[y - 1]![x - 1]! : 0;
        let pred = 0;
        if (f === 1) pred = a;
        else if (f === 3) pred = (a + b) >> 1;
        else { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
        rows.push((v - pred) & 0xff);
      });
    });
    const idat = deflateSync(Uint8Array.from(rows));
    const enc = encodePng({ width: 4, height: 3, channels: 1, bitDepth: 8, data: new Uint8Array(12) });
    // Replace the IDAT of a valid 4×3 file with ours.
    const head = enc.subarray(0, 33);
    const chunk = (type: string, data: Uint8Array) => {
      const out = new Uint8Array(12 + data.length);
      const dv = new DataView(out.buffer);
      dv.setUint32(0, data.length);
      out.set(new TextEncoder().encode(type), 4);
      out.set(data, 8);
      return out;
    };
    const file = new Uint8Array([...head, ...chunk('IDAT', idat), ...chunk('IEND', new Uint8Array(0))]);
    expect(Array.from(decodePng(file).data)).toEqual(px.flat());
  });
});

describe('paths, prisms, profiles', () => {
  it('offsets and reverses line + arc paths exactly', () => {
    const p = Path.build(0, 0, 0, [{ line: 10 }, { arc: 20, angle: Math.PI / 2 }, { line: 5 }]);
    expect(p.length).toBeCloseTo(15 + 10 * Math.PI, 9);
    const end = p.at(p.length);
    expect(end.x).toBeCloseTo(30, 9);
    expect(end.y).toBeCloseTo(25, 9);
    expect(end.heading).toBeCloseTo(Math.PI / 2, 9);
    const left = p.offset(2);
    expect(left.length).toBeCloseTo(15 + 9 * Math.PI, 9);
    expect(left.at(left.length).x).toBeCloseTo(28, 9);
    const rev = p.reversed();
    const r0 = rev.at(0);
    expect([r0.x, r0.y]).toEqual([expect.closeTo(30, 9), expect.closeTo(25, 9)]);
    expect(rev.at(rev.length).x).toBeCloseTo(0, 9);
    expect(p.at(-5).x).toBeCloseTo(-5, 9);
  });

  it('intersects rays with boxes and octagons', () => {
    const box = new Prism(10, 0, 0, 2, 1, 0, 1.5, false, -1, 0, 0, 0, 0, 0, 0);
    expect(intersectPrism(box, 0, 0, 1, 1, 0, 0)).toBeCloseTo(8, 12);
    expect(hitFace).toBe(2);
    expect(intersectPrism(box, 0, 0, 2, 1, 0, 0)).toBe(Infinity);
    expect(intersectPrism(box, 10, 0, 5, 0, 0, -1)).toBeCloseTo(3.5, 12);
    expect(hitFace).toBe(1);
    const oct = new Prism(0, 5, 0, 1, 1, 0, 3, true, -1, 0, 0, 0, 0, 0, 0);
    expect(intersectPrism(oct, 0, 0, 1, 0, 1, 0)).toBeCloseTo(4, 12);
    expect(oct.contains(0, 5.99, 1)).toBe(true);
    expect(oct.contains(0.9, 5.9, 1)).toBe(false);
  });

  it('integrates speed profiles', () => {
    const p = { v0: 10, a: -2, vmax: 14 };
    expect(profileSpeed(p, 3)).toBe(4);
    expect(profileSpeed(p, 8)).toBe(0);
    expect(profileDistance(p, 5)).toBeCloseTo(25, 12);
    expect(profileDistance(p, 9)).toBeCloseTo(25, 12);
    expect(profileDistance({ v0: 0, a: 2, vmax: 4 }, 4)).toBeCloseTo(4 + 8, 12);
  });
});
