/**
 * MT19937 (Matsumoto & Nishimura) as used by numpy's legacy `np.random` (RandomState) and by CPython's
 * `random` module, so that experiments seeded in Python can be replayed draw for draw. Used to reproduce the
 * devkit's own test_nd_score fixture.
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** The raw generator: init_genrand / init_by_array and genrand_uint32 (tempered output). */
export class MT19937 {
  private readonly mt = new Uint32Array(N);
  private mti = N + 1;

  /** init_genrand(s): numpy's `np.random.seed(s)` for an integer 0 ≤ s < 2^32. */
  initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 · prev + i (mod 2^32), with the multiplication split to stay exact.
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = N;
  }

  /** init_by_array(key): CPython's `random.seed(int)` passes the absolute value's 32-bit words, least significant first. */
  initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    const keyLength = key.length;
    for (let k = N > keyLength ? N : keyLength; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + (key[j]! >>> 0) + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= keyLength) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.mti = N;
  }

  /** genrand_uint32: the next tempered 32-bit output. */
  nextUint32(): number {
    const mt = this.mt;
    if (this.mti >= N) {
      if (this.mti === N + 1) this.initGenrand(5489);
      let kk = 0;
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      this.mti = 0;
    }
    let y = mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** genrand_res53: ((a >> 5)·2^26 + (b >> 6)) / 2^53, a double in [0, 1). */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

/** numpy's legacy `np.random` (RandomState on MT19937) for the calls the devkit's tests use. */
export class NumpyRandomState {
  private readonly mt = new MT19937();

  constructor(seed: number) {
    this.seed(seed);
  }

  /** np.random.seed(seed) for an integer seed in [0, 2^32). */
  seed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`NumpyRandomState.seed: expected an integer in [0, 2^32 - 1], got ${seed}`);
    }
    this.mt.initGenrand(seed);
  }

  /** np.random.random_sample() / np.random.random(): one double in [0, 1). */
  random(): number {
    return this.mt.nextDouble();
  }

  /** np.random.rand(n): n doubles in [0, 1). */
  rand(n: number): number[] {
    const out: number[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.mt.nextDouble();
    return out;
  }

  /**
   * np.random.randint(low, high) (high exclusive, default int64 dtype): numpy's masked rejection sampling —
   * with rng = high − 1 − low ≤ 2^32 − 1, draw 32-bit words masked to the smallest all-ones mask ≥ rng until the
   * value is ≤ rng.
   */
  randint(low: number, high: number): number {
    if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
      throw new RangeError(`NumpyRandomState.randint: expected integers low < high, got ${low}, ${high}`);
    }
    const rng = high - 1 - low;
    if (rng === 0) return low;
    if (rng > 0xffffffff) throw new RangeError('NumpyRandomState.randint: ranges above 2^32 are not supported');
    if (rng === 0xffffffff) return low + this.mt.nextUint32();
    let mask = rng;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do v = (this.mt.nextUint32() & mask) >>> 0;
    while (v > rng);
    return low + v;
  }
}

/** CPython's `random.Random` for the calls the devkit's tests use (seeded with a non-negative integer). */
export class PythonRandom {
  private readonly mt = new MT19937();

  constructor(seed: number) {
    this.seed(seed);
  }

  /** random.seed(n) for an integer: init_by_array over the 32-bit words of |n| (at least one word). */
  seed(seed: number): void {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`PythonRandom.seed: expected a safe integer, got ${seed}`);
    let n = Math.abs(seed);
    const key: number[] = [];
    do {
      key.push(n % 0x100000000);
      n = Math.floor(n / 0x100000000);
    } while (n > 0);
    this.mt.initByArray(key);
  }

  /** random.random(): one double in [0, 1). */
  random(): number {
    return this.mt.nextDouble();
  }

  /** random.getrandbits(k) for 0 ≤ k ≤ 32: genrand_uint32 >> (32 − k). */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 32) throw new RangeError(`PythonRandom.getrandbits: k must be in [0, 32], got ${k}`);
    if (k === 0) return 0;
    return this.mt.nextUint32() >>> (32 - k);
  }

  /** Random._randbelow_with_getrandbits(n): k = n.bit_length(); draw k bits until the value is < n. */
  randbelow(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) throw new RangeError(`PythonRandom.randbelow: n must be in [1, 2^32 - 1], got ${n}`);
    const k = 32 - Math.clz32(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /** random.randint(a, b), both ends inclusive: a + randbelow(b − a + 1). */
  randint(a: number, b: number): number {
    if (!Number.isInteger(a) || !Number.isInteger(b) || b < a) throw new RangeError(`PythonRandom.randint: expected integers a ≤ b, got ${a}, ${b}`);
    return a + this.randbelow(b - a + 1);
  }
}
