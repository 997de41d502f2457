/**
 * Fused multiply-add, correctly rounded: fma(a, b, c) = RN(a·b + c). JavaScript has no Math.fma; this emulates it
 * with error-free transformations and rounding to odd (Boldo & Melquiond, "Emulation of FMA and correctly
 * rounded sums: proved algorithms using rounding to odd", IEEE TC 2008, algorithm 5.4):
 *   (uh, ul) = a·b exactly; (th, tl) = c + uh exactly; v = RO(tl + ul); result = RN(th + v).
 * Exact while |a·b| and |c| stay within [2^-900, 2^900] (no underflow in the error terms, no overflow in the
 * splitting); outside that range (or for non-finite inputs) it returns a·b + c, which is only then not fused.
 *
 * Needed because OpenBLAS's dgemm (what pyquaternion's rotation_matrix runs on) accumulates with FMA.
 */
const SPLITTER = 134217729; // 2^27 + 1
const LO = 2 ** -900;
const HI = 2 ** 900;
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LOW = LITTLE ? 0 : 1;
const HIGH = LITTLE ? 1 : 0;

function roundToOddSum(x: number, y: number): number {
  const s = x + y;
  const bb = s - x;
  const e = x - (s - bb) + (y - bb);
  if (e === 0) return s;
  f64[0] = s;
  if ((u32[LOW]! & 1) === 1) return s;
  // s is even: the exact sum lies strictly between s and its neighbour towards e, which is odd.
  const away = s > 0 === e > 0; // moving away from zero increases the magnitude
  if (away) {
    u32[LOW] = (u32[LOW]! + 1) >>> 0;
    if (u32[LOW] === 0) u32[HIGH] = (u32[HIGH]! + 1) >>> 0;
  } else {
    if (u32[LOW] === 0) u32[HIGH] = (u32[HIGH]! - 1) >>> 0;
    u32[LOW] = (u32[LOW]! - 1) >>> 0;
  }
  return f64[0]!;
}

export function fma(a: number, b: number, c: number): number {
  const uh = a * b;
  const au = Math.abs(uh);
  const ac = Math.abs(c);
  if (!(au >= LO && au <= HI) || !(ac <= HI) || (ac !== 0 && ac < LO)) return uh + c;
  // ul = a·b − uh exactly (Dekker's product with Veltkamp splitting).
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  const ul = ah * bh - uh + ah * bl + al * bh + al * bl;
  // th + tl = c + uh exactly (Knuth's TwoSum).
  const th = c + uh;
  const bv = th - c;
  const tl = c - (th - bv) + (uh - bv);
  return th + roundToOddSum(tl, ul);
}
