import { describe, expect, it } from 'vitest';
import { NumpyRandomState } from './mt19937.js';
import { binarySearchWithGuess, cummean, interp, linspace, npMean, npNanMean, npSum, pyMod, pyRound, REC_INTERP } from './numpy.js';

// Expected values printed by numpy 2.4 (np.linspace, np.interp, np.sum, np.mean, np.nanmean).
describe('numpy primitives', () => {
  it('linspace(0, 1, 101) is i·0.01 with the last value 1', () => {
    expect(REC_INTERP.length).toBe(101);
    expect(REC_INTERP[57]).toBe(0.5700000000000001);
    expect(REC_INTERP[3]).toBe(0.03);
    expect(REC_INTERP[99]).toBe(0.99);
    expect(REC_INTERP[100]).toBe(1);
    expect(Array.from(linspace(2, 2, 3))).toEqual([2, 2, 2]);
    expect(Array.from(linspace(5, 7, 1))).toEqual([5]);
  });

  it('interp: left/right, exact hits on repeated xp take the last one, linear otherwise, NaN passes through', () => {
    expect(Array.from(interp([0, 0.5, 1, 2, -1, 0.25, NaN], [0, 0.5, 0.5, 1], [1, 2, 3, 4], undefined, 0))).toEqual([1, 3, 4, 0, 1, 1.5, NaN]);
    expect(Array.from(interp(linspace(0, 1, 11), [0.2, 0.2, 0.4, 0.4, 0.4, 0.9], [5, 6, 7, 8, 9, 10]))).toEqual([5, 5, 6, 6.5, 9, 9.2, 9.4, 9.6, 9.8, 10, 10]);
    expect(Array.from(interp([0.3, 0.5, 0.7], [0.5], [2], -1, 9))).toEqual([-1, 2, 9]);
    expect(Array.from(interp([0.1, 0.33, 0.7], [0, 0.3, 0.6, 0.9], [0.1, 0.7, 0.2, 0.9]))).toEqual([0.30000000000000004, 0.6499999999999999, 0.43333333333333324]);
    expect(() => interp([1], [], [])).toThrow(RangeError);
  });

  it('binary search with guess returns the last index with xp ≤ key, for any guess', () => {
    const xp = [0, 1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 6, 7, 8, 9, 9];
    for (const key of [-1, 0, 0.5, 1, 1.5, 3, 5, 5.5, 9, 10]) {
      let want = -1;
      for (let j = 0; j < xp.length; j++) if (xp[j]! <= key) want = j;
      if (key > 9) want = xp.length;
      for (let guess = 0; guess < xp.length; guess++) expect([key, guess, binarySearchWithGuess(key, xp, xp.length, guess)]).toEqual([key, guess, want]);
    }
  });

  it('sum and mean use numpy pairwise summation', () => {
    const rs = new NumpyRandomState(5);
    const expected: Record<number, [number, number]> = {
      5: [1206.466729339293, 241.2933458678586],
      10: [1679.329124267106, 167.9329124267106],
      90: [17308.625184389024, 192.3180576043225],
      137: [29887.836909377755, 218.1593934991077],
      300: [58199.53576758526, 193.99845255861752],
    };
    for (const n of [5, 10, 90, 137, 300]) {
      const a = rs.rand(n).map((v) => v * 1e3 - 3e2);
      expect([n, npSum(a), npMean(a)]).toEqual([n, ...expected[n]!]);
    }
    // A plain left-to-right sum differs for n = 90 (17308.625184389017): the order matters.
    expect(npNanMean([1, NaN, 0.3, 0.7, NaN, 0.1, 0.2, 0.3, 0.4, 0.5])).toBe(0.4375);
    expect(npNanMean([NaN, NaN])).toBeNaN();
  });

  it('cummean is NaN-aware, 0 before the first value, ones when all NaN', () => {
    expect(Array.from(cummean([NaN, 2, NaN, 4]))).toEqual([0, 2, 2, 3]);
    expect(Array.from(cummean([NaN, NaN]))).toEqual([1, 1]);
    expect(Array.from(cummean([1, 0, 0.5]))).toEqual([1, 0.5, 0.5]);
  });

  it('Python round (half to even) and floor-mod', () => {
    expect([pyRound(10), pyRound(0.5), pyRound(1.5), pyRound(2.5), pyRound(2.6), pyRound(-0.5), pyRound(-1.5)]).toEqual([10, 0, 2, 2, 3, 0, -2]);
    expect(pyMod(-1, 3)).toBe(2);
    expect(pyMod(1, -3)).toBe(-2);
    expect(pyMod(7.5, 2 * Math.PI)).toBe(7.5 - 2 * Math.PI);
    expect(Object.is(pyMod(-6, 3), 0)).toBe(true);
  });
});
