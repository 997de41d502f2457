import { describe, expect, it } from 'vitest';
import { unzipSync } from 'fflate';
import { NpyFormatError, decodeNpy, encodeNpy, readNpz, writeNpz } from './npz.js';

/** Fields of the first local file header of a zip (compression method, DOS time, DOS date). */
function firstEntry(zip: Uint8Array): { method: number; time: number; date: number } {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  expect(dv.getUint32(0, true)).toBe(0x04034b50);
  return { method: dv.getUint16(8, true), time: dv.getUint16(10, true), date: dv.getUint16(12, true) };
}

describe('npy format', () => {
  it('round-trips arrays of every dtype with NumPy headers, deflated or stored', () => {
    const arrays = {
      u1: { data: new Uint8Array([0, 1, 255]), shape: [3] },
      b1: { data: new Uint8Array([1, 0]), shape: [2], dtype: 'b1' as const },
      i2: { data: new Int16Array([-3, 4, 5, 6]), shape: [2, 2] },
      f4: { data: new Float32Array([1.5, -2]), shape: [1, 2] },
      f8: { data: new Float64Array([Math.PI]), shape: [] as number[] },
      i8: { data: new BigInt64Array([-1n, 2n]), shape: [2] },
    };
    for (const compress of [true, false]) {
      const zip = writeNpz(arrays, { compress });
      expect(firstEntry(zip).method).toBe(compress ? 8 : 0);
      const back = readNpz(zip);
      expect(Object.keys(back)).toEqual(Object.keys(arrays));
      for (const [k, a] of Object.entries(arrays)) {
        expect(back[k]!.shape).toEqual(a.shape);
        expect(Array.from(back[k]!.data as ArrayLike<number | bigint>)).toEqual(Array.from(a.data as ArrayLike<number | bigint>));
      }
      expect(back.b1!.dtype).toBe('b1');
      // Entries are exactly the .npy files encodeNpy writes, in key order.
      const entries = unzipSync(zip);
      expect(Object.keys(entries)).toEqual(Object.keys(arrays).map((k) => `${k}.npy`));
      expect(entries['f4.npy']).toEqual(encodeNpy(arrays.f4));
    }
    const npy = encodeNpy(arrays.f4);
    const headerLen = npy[8]! | (npy[9]! << 8);
    expect((10 + headerLen) % 64).toBe(0);
    expect(new TextDecoder().decode(npy.subarray(10, 10 + headerLen))).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(1, 2\), \} *\n$/);
    expect(new TextDecoder().decode(encodeNpy(arrays.b1).subarray(10, 40))).toContain("'descr': '|b1'");
    expect(new TextDecoder().decode(encodeNpy(arrays.u1).subarray(10, 80))).toContain("'shape': (3,)");
  });

  it('reads big-endian arrays and version 2 headers', () => {
    const bytes = encodeNpy({ data: new Int32Array([0x01020304]), shape: [1] });
    const at = new TextDecoder().decode(bytes).indexOf('<i4');
    bytes[at] = '>'.charCodeAt(0);
    bytes.set([1, 2, 3, 4], bytes.length - 4);
    expect(Array.from(decodeNpy(bytes).data as Int32Array)).toEqual([0x01020304]);
    // Version 2.0: a 4-byte header length.
    const v1 = encodeNpy({ data: new Uint16Array([7, 8]), shape: [2] });
    const len = v1[8]! | (v1[9]! << 8);
    const v2 = new Uint8Array(v1.length + 2);
    v2.set(v1.subarray(0, 6));
    v2.set([2, 0, len & 0xff, len >> 8, 0, 0], 6);
    v2.set(v1.subarray(10), 12);
    expect(Array.from(decodeNpy(v2).data as Uint16Array)).toEqual([7, 8]);
  });

  it('rejects bad input with errors that say where', () => {
    expect(() => encodeNpy({ data: new Uint8Array(5), shape: [2, 2] })).toThrow(/holds 4 elements, data has 5/);
    expect(() => encodeNpy({ data: new Uint8Array(4), shape: [4], dtype: 'f4' })).toThrow(/dtype f4 needs 4-byte elements/);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]), 'x.npy')).toThrow(NpyFormatError);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]), 'x.npy')).toThrow(/^x\.npy: expected the \\x93NUMPY magic string/);
    const truncated = encodeNpy({ data: new Float64Array(4), shape: [4] }).subarray(0, 100);
    expect(() => decodeNpy(truncated, 'y.npy')).toThrow(/y\.npy: expected 32 data bytes, found/);
    expect(() => readNpz(new Uint8Array([1, 2, 3, 4]), 'gts/s/t/labels.npz')).toThrow(NpyFormatError);
    expect(() => readNpz(new Uint8Array([1, 2, 3, 4]), 'gts/s/t/labels.npz')).toThrow(/^gts\/s\/t\/labels\.npz: expected a zip archive/);
    // A bad entry inside a good zip names the archive and the entry.
    const zip = writeNpz({ a: { data: new Uint8Array(64), shape: [64] } }, { compress: false });
    zip[30 + 'a.npy'.length] = 0; // first byte of the .npy magic
    expect(() => readNpz(zip, 'p.npz')).toThrow(/p\.npz:a\.npy: expected the \\x93NUMPY magic string/);
  });
});

describe('writeNpz', () => {
  it('gives the same bytes for the same arrays, dated 1980-01-01 00:00 in any time zone', () => {
    const a = { x: { data: new Uint8Array(1000).fill(7), shape: [10, 100] }, y: { data: new Float32Array([1, 2]), shape: [2] } };
    const tz = process.env.TZ;
    try {
      const out: Uint8Array[] = [];
      const localMidnight = new Set<number>();
      for (const zone of ['UTC', 'America/Los_Angeles', 'Asia/Kolkata']) {
        process.env.TZ = zone;
        localMidnight.add(new Date(1980, 0, 1).getTime());
        for (const compress of [true, false]) out.push(writeNpz(a, { compress }));
      }
      expect(localMidnight.size).toBe(3); // the zone changes took effect
      for (let i = 2; i < out.length; i++) expect(out[i]).toEqual(out[i % 2]);
      expect(firstEntry(out[0]!)).toEqual({ method: 8, time: 0, date: (0 << 9) | (1 << 5) | 1 });
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('deflates with the level asked for', () => {
    let s = 1;
    const words = ['car', 'truck', 'bus', 'pedestrian', 'barrier', 'traffic_cone'];
    const text = Array.from({ length: 5000 }, () => words[((s = (s * 1103515245 + 12345) >>> 0) >>> 16) % 6]).join(' ');
    const data = new TextEncoder().encode(text);
    const a = { x: { data, shape: [data.length] } };
    const fast = writeNpz(a, { level: 1 }), best = writeNpz(a, { level: 9 }), stored = writeNpz(a, { compress: false });
    expect(best.length).toBeLessThan(fast.length);
    expect(fast.length).toBeLessThan(stored.length);
    expect(readNpz(best).x!.data).toEqual(a.x.data);
  });
});
