/**
 * Baseline JPEG encoder (JFIF, 4:2:0 chroma subsampling like camera JPEGs, standard Huffman tables of the
 * JPEG spec, Annex K, float AAN DCT). Deterministic and several times faster than a general-purpose JS
 * encoder because the tables are built once per quality. Decodable by any JPEG reader (jpeg-js in tests).
 */

/** Zig-zag position of each natural-order coefficient. */
const ZIGZAG = [
  0, 1, 5, 6, 14, 15, 27, 28, 2, 4, 7, 13, 16, 26, 29, 42, 3, 8, 12, 17, 25, 30, 41, 43, 9, 11, 18, 24, 31, 40, 44, 53,
  10, 19, 23, 32, 39, 45, 52, 54, 20, 22, 33, 38, 46, 51, 55, 60, 21, 34, 37, 47, 50, 56, 59, 61, 35, 36, 48, 49, 57, 58, 62, 63,
];
const Y_QT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
  18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const C_QT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
  ...new Array<number>(32).fill(99),
];
const DC_Y_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_C_BITS = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_Y_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_Y_VALS = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
  0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
  0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
  0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
  0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
  0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
  0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];
const AC_C_BITS = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_C_VALS = [
  0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
  0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
  0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
  0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
  0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
  0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
  0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];
const AASF = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

interface Huffman { code: Uint16Array; len: Uint8Array }

function huffman(bits: number[], vals: number[]): Huffman {
  const code = new Uint16Array(256), len = new Uint8Array(256);
  let c = 0, p = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < bits[l - 1]!; i++) {
      code[vals[p]!] = c;
      len[vals[p]!] = l;
      p++;
      c++;
    }
    c <<= 1;
  }
  return { code, len };
}

const HUFF = {
  dcY: huffman(DC_Y_BITS, DC_VALS), acY: huffman(AC_Y_BITS, AC_Y_VALS),
  dcC: huffman(DC_C_BITS, DC_VALS), acC: huffman(AC_C_BITS, AC_C_VALS),
};

interface QuantTables { zY: Uint8Array; zC: Uint8Array; fY: Float64Array; fC: Float64Array }
const quantCache = new Map<number, QuantTables>();

function quantTables(quality: number): QuantTables {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const cached = quantCache.get(q);
  if (cached) return cached;
  const sf = q < 50 ? Math.floor(5000 / q) : Math.floor(200 - q * 2);
  const t: QuantTables = { zY: new Uint8Array(64), zC: new Uint8Array(64), fY: new Float64Array(64), fC: new Float64Array(64) };
  for (let i = 0; i < 64; i++) {
    const y = Math.min(255, Math.max(1, Math.floor((Y_QT[i]! * sf + 50) / 100)));
    const c = Math.min(255, Math.max(1, Math.floor((C_QT[i]! * sf + 50) / 100)));
    t.zY[ZIGZAG[i]!] = y;
    t.zC[ZIGZAG[i]!] = c;
    const s = AASF[i >> 3]! * AASF[i & 7]! * 8;
    t.fY[i] = 1 / (y * s);
    t.fC[i] = 1 / (c * s);
  }
  quantCache.set(q, t);
  return t;
}

class Writer {
  buf: Uint8Array;
  pos = 0;
  private bits = 0;
  private nbits = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    b.set(this.buf);
    this.buf = b;
  }
  bytes(arr: ArrayLike<number>): void {
    this.ensure(arr.length);
    for (let i = 0; i < arr.length; i++) this.buf[this.pos++] = arr[i]!;
  }
  word(v: number): void {
    this.bytes([(v >> 8) & 0xff, v & 0xff]);
  }
  put(code: number, len: number): void {
    this.bits = (this.bits << len) | code;
    this.nbits += len;
    while (this.nbits >= 8) {
      const b = (this.bits >>> (this.nbits - 8)) & 0xff;
      if (this.pos + 2 > this.buf.length) this.ensure(2);
      this.buf[this.pos++] = b;
      if (b === 0xff) this.buf[this.pos++] = 0;
      this.nbits -= 8;
    }
    this.bits &= (1 << this.nbits) - 1;
  }
  flush(): void {
    if (this.nbits > 0) this.put((1 << (8 - this.nbits)) - 1, 8 - this.nbits);
  }
}

const block = new Float64Array(64);
const zz = new Int32Array(64);

/** Forward DCT (AAN), quantisation, Huffman coding of one 8×8 block (level-shifted samples in `block`). */
function encodeBlock(w: Writer, f: Float64Array, dcPrev: number, dc: Huffman, ac: Huffman): number {
  const d = block;
  for (let o = 0; o < 64; o += 8) {
    const t0 = d[o]! + d[o + 7]!, t7 = d[o]! - d[o + 7]!, t1 = d[o + 1]! + d[o + 6]!, t6 = d[o + 1]! - d[o + 6]!;
    const t2 = d[o + 2]! + d[o + 5]!, t5 = d[o + 2]! - d[o + 5]!, t3 = d[o + 3]! + d[o + 4]!, t4 = d[o + 3]! - d[o + 4]!;
    let a = t0 + t3, b = t1 + t2;
    const c13 = t0 - t3, c12 = t1 - t2;
    d[o] = a + b;
    d[o + 4] = a - b;
    const z1 = (c12 + c13) * 0.707106781;
    d[o + 2] = c13 + z1;
    d[o + 6] = c13 - z1;
    a = t4 + t5; b = t5 + t6;
    const c = t6 + t7;
    const z5 = (a - c) * 0.382683433, z2 = 0.5411961 * a + z5, z4 = 1.306562965 * c + z5, z3 = b * 0.707106781;
    const z11 = t7 + z3, z13 = t7 - z3;
    d[o + 5] = z13 + z2; d[o + 3] = z13 - z2; d[o + 1] = z11 + z4; d[o + 7] = z11 - z4;
  }
  for (let o = 0; o < 8; o++) {
    const t0 = d[o]! + d[o + 56]!, t7 = d[o]! - d[o + 56]!, t1 = d[o + 8]! + d[o + 48]!, t6 = d[o + 8]! - d[o + 48]!;
    const t2 = d[o + 16]! + d[o + 40]!, t5 = d[o + 16]! - d[o + 40]!, t3 = d[o + 24]! + d[o + 32]!, t4 = d[o + 24]! - d[o + 32]!;
    let a = t0 + t3, b = t1 + t2;
    const c13 = t0 - t3, c12 = t1 - t2;
    d[o] = a + b;
    d[o + 32] = a - b;
    const z1 = (c12 + c13) * 0.707106781;
    d[o + 16] = c13 + z1;
    d[o + 48] = c13 - z1;
    a = t4 + t5; b = t5 + t6;
    const c = t6 + t7;
    const z5 = (a - c) * 0.382683433, z2 = 0.5411961 * a + z5, z4 = 1.306562965 * c + z5, z3 = b * 0.707106781;
    const z11 = t7 + z3, z13 = t7 - z3;
    d[o + 40] = z13 + z2; d[o + 24] = z13 - z2; d[o + 8] = z11 + z4; d[o + 56] = z11 - z4;
  }
  for (let i = 0; i < 64; i++) {
    const v = d[i]! * f[i]!;
    zz[ZIGZAG[i]!] = v > 0 ? (v + 0.5) | 0 : (v - 0.5) | 0;
  }
  const diff = zz[0]! - dcPrev;
  const av = diff < 0 ? -diff : diff;
  const cat = av === 0 ? 0 : 32 - Math.clz32(av);
  w.put(dc.code[cat]!, dc.len[cat]!);
  if (cat) w.put(diff < 0 ? diff + (1 << cat) - 1 : diff, cat);
  let end = 63;
  while (end > 0 && zz[end] === 0) end--;
  let run = 0;
  for (let k = 1; k <= end; k++) {
    const v = zz[k]!;
    if (v === 0) { run++; continue; }
    while (run >= 16) { w.put(ac.code[0xf0]!, ac.len[0xf0]!); run -= 16; }
    const a = v < 0 ? -v : v;
    const n = 32 - Math.clz32(a);
    const sym = (run << 4) | n;
    w.put(ac.code[sym]!, ac.len[sym]!);
    w.put(v < 0 ? v + (1 << n) - 1 : v, n);
    run = 0;
  }
  if (end < 63) w.put(ac.code[0]!, ac.len[0]!);
  return zz[0]!;
}

/** Encode an RGBA (or RGB with `channels` 3) image as a baseline 4:2:0 JPEG. */
export function encodeJpeg(data: Uint8Array, width: number, height: number, quality = 90, channels: 3 | 4 = 4): Uint8Array {
  const W = width, H = height;
  const qt = quantTables(quality);
  // Level-shifted planes.
  const Y = new Float32Array(W * H), Cb = new Float32Array(W * H), Cr = new Float32Array(W * H);
  for (let i = 0, p = 0; i < W * H; i++, p += channels) {
    const r = data[p]!, g = data[p + 1]!, b = data[p + 2]!;
    Y[i] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
    Cb[i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
    Cr[i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
  }
  const w = new Writer(Math.max(4096, W * H));
  w.bytes([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  w.bytes([0xff, 0xdb, 0, 132, 0]);
  w.bytes(qt.zY);
  w.bytes([1]);
  w.bytes(qt.zC);
  w.bytes([0xff, 0xc0, 0, 17, 8]);
  w.word(H);
  w.word(W);
  w.bytes([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  const tables: [number, number[], number[]][] = [[0x00, DC_Y_BITS, DC_VALS], [0x10, AC_Y_BITS, AC_Y_VALS], [0x01, DC_C_BITS, DC_VALS], [0x11, AC_C_BITS, AC_C_VALS]];
  w.bytes([0xff, 0xc4]);
  w.word(2 + tables.reduce((n, [, , v]) => n + 17 + v.length, 0));
  for (const [id, bits, vals] of tables) { w.bytes([id]); w.bytes(bits); w.bytes(vals); }
  w.bytes([0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);

  let dcY = 0, dcCb = 0, dcCr = 0;
  const d = block;
  for (let my = 0; my < H; my += 16) {
    for (let mx = 0; mx < W; mx += 16) {
      for (let by = 0; by < 16; by += 8) {
        for (let bx = 0; bx < 16; bx += 8) {
          for (let y = 0; y < 8; y++) {
            const row = Math.min(H - 1, my + by + y) * W;
            for (let x = 0; x < 8; x++) d[y * 8 + x] = Y[row + Math.min(W - 1, mx + bx + x)]!;
          }
          dcY = encodeBlock(w, qt.fY, dcY, HUFF.dcY, HUFF.acY);
        }
      }
      for (let comp = 0; comp < 2; comp++) {
        const P = comp === 0 ? Cb : Cr;
        for (let y = 0; y < 8; y++) {
          const r0 = Math.min(H - 1, my + 2 * y) * W, r1 = Math.min(H - 1, my + 2 * y + 1) * W;
          for (let x = 0; x < 8; x++) {
            const c0 = Math.min(W - 1, mx + 2 * x), c1 = Math.min(W - 1, mx + 2 * x + 1);
            d[y * 8 + x] = 0.25 * (P[r0 + c0]! + P[r0 + c1]! + P[r1 + c0]! + P[r1 + c1]!);
          }
        }
        if (comp === 0) dcCb = encodeBlock(w, qt.fC, dcCb, HUFF.dcC, HUFF.acC);
        else dcCr = encodeBlock(w, qt.fC, dcCr, HUFF.dcC, HUFF.acC);
      }
    }
  }
  w.flush();
  w.bytes([0xff, 0xd9]);
  return w.buf.slice(0, w.pos);
}
