import { describe, expect, it } from 'vitest';
import { NumpyRandomState, PythonRandom } from './mt19937.js';

// Expected values printed by numpy 2.4 (legacy np.random) and CPython 3.11 (random).
describe('MT19937 ports', () => {
  it('numpy: seed(42) → rand, randint (masked rejection)', () => {
    expect(new NumpyRandomState(42).rand(5)).toEqual([0.3745401188473625, 0.9507143064099162, 0.7319939418114051, 0.5986584841970366, 0.15601864044243652]);
    expect(new NumpyRandomState(0).random()).toBe(0.5488135039273248);
    const rs = new NumpyRandomState(42);
    expect(Array.from({ length: 10 }, () => rs.randint(0, 3))).toEqual([2, 0, 2, 2, 0, 0, 2, 1, 2, 2]);
    expect(Array.from({ length: 5 }, () => rs.randint(0, 2))).toEqual([0, 0, 1, 0, 1]);
    expect(rs.randint(5, 1000)).toBe(876);
    expect(() => new NumpyRandomState(-1)).toThrow(RangeError);
  });

  it('python: seed(42) → random, randint, getrandbits', () => {
    const py = new PythonRandom(42);
    expect([py.random(), py.random(), py.random()]).toEqual([0.6394267984578837, 0.025010755222666936, 0.27502931836911926]);
    const p2 = new PythonRandom(42);
    expect(Array.from({ length: 10 }, () => p2.randint(0, 2))).toEqual([2, 0, 0, 2, 1, 0, 0, 0, 2, 0]);
    expect(p2.getrandbits(7)).toBe(86);
    expect(p2.randint(10, 1000)).toBe(768);
    expect(p2.getrandbits(32)).toBe(3831882064);
    expect(new PythonRandom(123456789012).random()).toBe(0.37701448538609916);
  });
});
