import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { angleDiff, makeEvalBox, pointsInBoxTest, quaternionYaw, rotationMatrix, scaleIou, yawDiff } from './box.js';
import { fma } from './fma.js';
import { NumpyRandomState } from './mt19937.js';

/** Exact a·b + c rounded to nearest even, with BigInt arithmetic (reference for fma). */
function exactFma(a: number, b: number, c: number): number {
  const dec = (x: number): [bigint, number] => {
    const buf = new DataView(new ArrayBuffer(8));
    buf.setFloat64(0, x);
    const hi = buf.getUint32(0), lo = buf.getUint32(4);
    const exp = (hi >>> 20) & 0x7ff;
    let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
    if (exp !== 0) mant |= 1n << 52n;
    const sign = hi >>> 31 ? -1n : 1n;
    return [sign * mant, (exp === 0 ? 1 : exp) - 1075];
  };
  const [ma, ea] = dec(a), [mb, eb] = dec(b), [mc, ec] = dec(c);
  let mp = ma * mb, ep = ea + eb;
  let m2 = mc, e2 = ec;
  const e = Math.min(ep, e2);
  mp <<= BigInt(ep - e);
  m2 <<= BigInt(e2 - e);
  let m = mp + m2;
  if (m === 0n) return a * b + c;
  // Keep ≥ 64 significant bits, folding the rest into a sticky bit, then let Number() round to nearest even.
  const neg = m < 0n;
  if (neg) m = -m;
  let shift = m.toString(2).length - 64;
  let ee = e;
  if (shift > 0) {
    const sticky = (m & ((1n << BigInt(shift)) - 1n)) !== 0n ? 1n : 0n;
    m = (m >> BigInt(shift)) | sticky;
    ee += shift;
  }
  void ep;
  return (neg ? -1 : 1) * Number(m) * 2 ** ee;
}

describe('fma', () => {
  it('equals the exactly rounded a·b + c, including cancellations and ties', () => {
    const rs = new NumpyRandomState(3);
    let differsFromUnfused = 0;
    for (let i = 0; i < 20000; i++) {
      const a = (rs.random() * 2 - 1) * 2 ** (Math.floor(rs.random() * 40) - 20);
      const b = (rs.random() * 2 - 1) * 2 ** (Math.floor(rs.random() * 40) - 20);
      // c near −a·b half of the time: heavy cancellation.
      const c = i % 2 ? -(a * b) * (1 + (rs.random() - 0.5) * 2 ** -40) : (rs.random() * 2 - 1) * 2 ** (Math.floor(rs.random() * 60) - 30);
      const want = exactFma(a, b, c);
      expect(fma(a, b, c)).toBe(want);
      if (a * b + c !== want) differsFromUnfused++;
    }
    expect(differsFromUnfused).toBeGreaterThan(1000);
    // Round-half-even tie cases: 1 + 2^-53 is a tie between 1 and 1 + 2^-52.
    expect(fma(1 + 2 ** -52, 1 + 2 ** -52, -(2 ** -104))).toBe(exactFma(1 + 2 ** -52, 1 + 2 ** -52, -(2 ** -104)));
    expect(fma(2 ** -27 + 1, 2 ** -27 + 1, 0)).toBe(exactFma(2 ** -27 + 1, 2 ** -27 + 1, 0));
    expect(fma(0.1, 10, -1)).toBe(5.551115123125783e-17);
  });
});

describe('devkit box measures', () => {
  it('rotation matrices equal pyquaternion on numpy + OpenBLAS bit for bit', () => {
    const fx = JSON.parse(readFileSync(new URL('./fixtures/pyquaternion-rotation.json', import.meta.url), 'utf8')) as { seed: number; n: number; R: number[][] };
    const rs = new NumpyRandomState(fx.seed);
    for (let i = 0; i < fx.n; i++) {
      let q = i % 3 ? rs.rand(4).map((v) => v * 2 - 1) : rs.rand(4);
      if (i === 0) q = [1, 0, 0, 0];
      if (i === 1) q = [0.7071067811865476, 0, 0, 0.7071067811865476];
      expect([i, rotationMatrix(q)]).toEqual([i, fx.R[i]]);
      expect(quaternionYaw(q)).toBe(Math.atan2(fx.R[i]![3]!, fx.R[i]![0]!));
    }
  });

  it('yaw difference wraps with period 2π (π for barriers)', () => {
    const q = (yaw: number) => [Math.cos(yaw / 2), 0, 0, Math.sin(yaw / 2)] as [number, number, number, number];
    const a = makeEvalBox({ sample_token: 's', rotation: q(3) }), b = makeEvalBox({ sample_token: 's', rotation: q(-3) });
    expect(yawDiff(a, b)).toBeCloseTo(2 * Math.PI - 6, 12);
    expect(yawDiff(a, b, Math.PI)).toBeCloseTo(2 * Math.PI - 6, 12);
    const c = makeEvalBox({ sample_token: 's', rotation: q(0.1) }), d = makeEvalBox({ sample_token: 's', rotation: q(0.1 + Math.PI) });
    expect(yawDiff(c, d)).toBeCloseTo(Math.PI, 12);
    expect(yawDiff(c, d, Math.PI)).toBeLessThan(1e-12);
    expect(angleDiff(1, 0, 2 * Math.PI)).toBe(1);
  });

  it('scale IoU of aligned sizes', () => {
    const a = makeEvalBox({ sample_token: 's', size: [2, 4, 2] }), b = makeEvalBox({ sample_token: 's', size: [1, 4, 2] });
    expect(scaleIou(a, b)).toBe(0.5);
    expect(scaleIou(a, a)).toBe(1);
  });

  it('points_in_box is inclusive on all faces', () => {
    const yaw = 0.3;
    const box = { translation: [10, 5, 1], size: [2, 4, 2], rotation: [Math.cos(yaw / 2), 0, 0, Math.sin(yaw / 2)] };
    const t = pointsInBoxTest(box);
    expect(t.contains([10, 5, 1])).toBe(true);
    const along = (d: number) => [10 + Math.cos(yaw) * d, 5 + Math.sin(yaw) * d, 1];
    expect(t.contains(along(1.99))).toBe(true);
    expect(t.contains(along(2.01))).toBe(false);
    expect(t.contains([10, 5, 2.01])).toBe(false);
    // Axis-aligned box: a point exactly on a face is inside.
    const aligned = pointsInBoxTest({ translation: [0, 0, 0], size: [2, 4, 2], rotation: [1, 0, 0, 0] });
    expect(aligned.contains([2, 1, 1])).toBe(true);
    expect(aligned.contains([2, 1.0000001, 1])).toBe(false);
  });
});
