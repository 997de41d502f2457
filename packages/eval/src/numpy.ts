/**
 * The few numpy / Python numeric primitives the devkit relies on, reproduced bit for bit in float64.
 * Each function names the numpy (or CPython) routine it copies.
 */

/**
 * numpy.linspace(start, stop, num) with endpoint=True: y[i] = i·step + start with step = (stop − start)/(num − 1),
 * and the last element set to stop. So linspace(0, 1, 101)[57] = 57·0.01 = 0.5700000000000001.
 */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const div = num - 1;
  if (div <= 0) {
    if (num === 1) out[0] = start;
    return out;
  }
  const delta = stop - start;
  const step = delta / div;
  if (step === 0) {
    for (let i = 0; i < num; i++) out[i] = (i / div) * delta + start;
  } else {
    for (let i = 0; i < num; i++) out[i] = i * step + start;
  }
  out[num - 1] = stop;
  return out;
}

/** 101 recall thresholds: numpy.linspace(0, 1, 101). */
export const REC_INTERP: Float64Array = linspace(0, 1, 101);

const LIKELY_IN_CACHE_SIZE = 8;

/**
 * numpy's binary_search_with_guess (numpy/_core/src/multiarray/compiled_base.c): index j with
 * arr[j] ≤ key < arr[j+1]; −1 below arr[0]; len above arr[len−1]. For sorted arr with repeated values this is
 * the LAST index whose value is ≤ key. Ported with its guess logic so unsorted input behaves like numpy too.
 */
export function binarySearchWithGuess(key: number, arr: ArrayLike<number>, len: number, guess: number): number {
  let imin = 0;
  let imax = len;
  if (key > arr[len - 1]!) return len;
  if (key < arr[0]!) return -1;
  if (len <= 4) {
    let i = 1;
    while (i < len && key >= arr[i]!) i++;
    return i - 1;
  }
  if (guess > len - 3) guess = len - 3;
  if (guess < 1) guess = 1;
  if (key < arr[guess]!) {
    if (key < arr[guess - 1]!) {
      imax = guess - 1;
      if (guess > LIKELY_IN_CACHE_SIZE && key >= arr[guess - LIKELY_IN_CACHE_SIZE]!) imin = guess - LIKELY_IN_CACHE_SIZE;
    } else {
      return guess - 1;
    }
  } else {
    if (key < arr[guess + 1]!) return guess;
    if (key < arr[guess + 2]!) return guess + 1;
    imin = guess + 2;
    if (guess < len - LIKELY_IN_CACHE_SIZE - 1 && key < arr[guess + LIKELY_IN_CACHE_SIZE]!) imax = guess + LIKELY_IN_CACHE_SIZE;
  }
  while (imin < imax) {
    const imid = imin + ((imax - imin) >> 1);
    if (key >= arr[imid]!) imin = imid + 1;
    else imax = imid;
  }
  return imin - 1;
}

/**
 * numpy.interp(x, xp, fp, left, right) for float64, copying numpy's C loop (arr_interp):
 * below xp[0] → left (default fp[0]); above xp[last] → right (default fp[last]); x equal to xp[j] for the
 * found j (the last of repeated values) → fp[j]; otherwise slope·(x − xp[j]) + fp[j], retrying from the right
 * end point if that is NaN. A NaN x gives NaN.
 */
export function interp(
  x: ArrayLike<number>,
  xp: ArrayLike<number>,
  fp: ArrayLike<number>,
  left?: number,
  right?: number,
): Float64Array {
  const lenxp = xp.length;
  if (lenxp === 0) throw new RangeError('interp: array of sample points is empty');
  if (fp.length !== lenxp) throw new RangeError(`interp: fp and xp are not of the same length (${fp.length} vs ${lenxp})`);
  const lenx = x.length;
  const out = new Float64Array(lenx);
  const lval = left ?? fp[0]!;
  const rval = right ?? fp[lenxp - 1]!;
  if (lenxp === 1) {
    const xv = xp[0]!, fv = fp[0]!;
    for (let i = 0; i < lenx; i++) {
      const v = x[i]!;
      out[i] = v < xv ? lval : v > xv ? rval : fv;
    }
    return out;
  }
  let j = 0;
  for (let i = 0; i < lenx; i++) {
    const v = x[i]!;
    if (Number.isNaN(v)) {
      out[i] = v;
      continue;
    }
    j = binarySearchWithGuess(v, xp, lenxp, j);
    if (j === -1) out[i] = lval;
    else if (j === lenxp) out[i] = rval;
    else if (j === lenxp - 1) out[i] = fp[j]!;
    else if (xp[j] === v) out[i] = fp[j]!;
    else {
      const slope = (fp[j + 1]! - fp[j]!) / (xp[j + 1]! - xp[j]!);
      let r = slope * (v - xp[j]!) + fp[j]!;
      if (Number.isNaN(r)) {
        r = slope * (v - xp[j + 1]!) + fp[j + 1]!;
        if (Number.isNaN(r) && fp[j] === fp[j + 1]) r = fp[j]!;
      }
      out[i] = r;
    }
  }
  return out;
}

function pairwiseSum(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = a[start]!, r1 = a[start + 1]!, r2 = a[start + 2]!, r3 = a[start + 3]!;
    let r4 = a[start + 4]!, r5 = a[start + 5]!, r6 = a[start + 6]!, r7 = a[start + 7]!;
    let i = 8;
    const end = n - (n % 8);
    for (; i < end; i += 8) {
      const b = start + i;
      r0 += a[b]!; r1 += a[b + 1]!; r2 += a[b + 2]!; r3 += a[b + 3]!;
      r4 += a[b + 4]!; r5 += a[b + 5]!; r6 += a[b + 6]!; r7 += a[b + 7]!;
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/**
 * numpy.sum of a contiguous float64 array: numpy's pairwise summation (blocks of ≤ 128 summed with 8
 * accumulators, larger arrays split in halves), added to the reduction's initial 0.
 */
export function npSum(a: ArrayLike<number>, start = 0, end = a.length): number {
  return 0 + pairwiseSum(a, start, Math.max(0, end - start));
}

/** numpy.mean of a contiguous float64 slice [start, end): npSum / count (NaN for an empty slice). */
export function npMean(a: ArrayLike<number>, start = 0, end = a.length): number {
  return npSum(a, start, end) / (end - start);
}

/** numpy.nanmean: NaNs replaced by 0, pairwise sum, divided by the count of non-NaN values (NaN if none). */
export function npNanMean(a: ArrayLike<number>): number {
  const tmp = new Float64Array(a.length);
  let cnt = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (Number.isNaN(v)) continue;
    tmp[i] = v;
    cnt++;
  }
  return npSum(tmp) / cnt;
}

/**
 * The devkit's cummean (eval/common/utils.py): all NaN → ones; else nancumsum / cumulative count of non-NaN,
 * with 0 where nothing was counted yet.
 */
export function cummean(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  let nanCount = 0;
  for (let i = 0; i < n; i++) if (Number.isNaN(x[i]!)) nanCount++;
  if (nanCount === n) {
    out.fill(1);
    return out;
  }
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (!Number.isNaN(v)) {
      sum += v;
      count++;
    }
    out[i] = count !== 0 ? sum / count : 0;
  }
  return out;
}

/** Python's round() for floats to an integer: round half to even. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Python / numpy float modulo (floor-mod): the result takes the sign of the divisor. */
export function pyMod(a: number, b: number): number {
  let m = a % b;
  if (m !== 0) {
    if (b < 0 !== m < 0) m += b;
  } else {
    m = b < 0 ? -0 : 0;
  }
  return m;
}
