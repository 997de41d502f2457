import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADAMW, BATCH_NORM_TRAINING, BEV_POOL, MS_DEFORM_ATTN } from './fused.js';
import { initEngine } from './index.js';
import { loadNative, loadNativeFrom, useNativeKernels } from './native.js';
import { collapseBroadcast } from './wasm/binary.js';
import { evaluate, relErr, rnd, setup, use } from './test_util.js';

/**
 * The native kernels (libtorch through the addon) against the wasm kernels, outputs and gradients, on awkward
 * shapes. Skipped where the addon is not built; CI builds it and sets BEVZOO_REQUIRE_NATIVE=1 so that a failed build
 * fails here instead of skipping.
 */
const native = loadNative();
const TOL = 1e-4;

beforeAll(setup);

it('the native addon is built where CI requires it', () => {
  if (process.env.BEVZOO_REQUIRE_NATIVE === '1') expect(native.why).toMatch(/^libtorch/);
  else expect(typeof native.why).toBe('string');
});

it('a missing or broken addon is reported with what to do', () => {
  const missing = loadNativeFrom('/nonexistent/bevzoo_native.node');
  expect(missing.addon).toBeNull();
  expect(missing.why).toMatch(/^the native addon is not built \(\/nonexistent\/bevzoo_native\.node missing; apt-get install libtorch-dev, then node .*native\/build\.mjs\)$/);
  const broken = loadNativeFrom(fileURLToPath(new URL('../package.json', import.meta.url)).replace(/package\.json$/, 'README.md'));
  expect(broken.addon).toBeNull();
  expect(broken.why).toMatch(/^the native addon failed to load \(/);
});

it('the build script never fails an install where it cannot build, says why and how, and fails with --strict', () => {
  const script = fileURLToPath(new URL('../native/build.mjs', import.meta.url));
  const env = { ...process.env, BEVZOO_NATIVE_BUILD: '0' };
  const soft = spawnSync(process.execPath, [script], { env, encoding: 'utf8' });
  expect(soft.status).toBe(0);
  expect(soft.stderr).toMatch(/not built \(BEVZOO_NATIVE_BUILD=0\); the engine uses its wasm kernels\. To turn the native kernels on: `apt-get install libtorch-dev`/);
  const missing = spawnSync(process.execPath, [script, '--strict'], { env: { ...process.env, BEVZOO_LIBTORCH: '/nonexistent' }, encoding: 'utf8' });
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/libtorch headers not found \(\/nonexistent\/include\/ATen\/ATen\.h\)/);
});

/**
 * Runs `run` with the portable kernels and with the native ones, at 1 and 2 libtorch threads (setThreads directly, so
 * that no engine log line interferes): the same bits each time. Returns the native results per thread count.
 */
async function sameBitsOnBothPaths<T>(run: () => T): Promise<T[]> {
  await use('wasm');
  const before = native.addon!.info().threads;
  const results: T[] = [];
  try {
    for (const threads of [1, 2]) {
      expect(native.addon!.setThreads(threads)).toBe(threads);
      useNativeKernels(false);
      const portable = run();
      useNativeKernels(true);
      const nat = run();
      useNativeKernels(false);
      expect(nat, `${threads} thread(s)`).toEqual(portable);
      results.push(nat);
    }
  } finally {
    useNativeKernels(false);
    native.addon!.setThreads(before);
  }
  return results;
}

/** Largest relative error between the native and the wasm path over f's value and its input gradients. */
async function nativeVsWasm(shapes: number[][], f: (...xs: tf.Tensor[]) => tf.Tensor, seed = 1): Promise<number> {
  useNativeKernels(false);
  const wasm = await evaluate('wasm', shapes, f, seed);
  useNativeKernels(true);
  try {
    const nat = await evaluate('wasm', shapes, f, seed);
    if (nat.shape.join() !== wasm.shape.join()) return Infinity;
    let err = relErr(nat.value, wasm.value);
    wasm.grads.forEach((g, i) => (err = Math.max(err, relErr(nat.grads[i]!, g))));
    return err;
  } finally {
    useNativeKernels(false);
  }
}

describe.skipIf(native.addon == null)('native kernels equal the wasm kernels', () => {
  const pad4 = (t: number, b: number, l: number, r: number): tf.backend_util.ExplicitPadding => [[0, 0], [t, b], [l, r], [0, 0]];
  const convCases: { x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid' | tf.backend_util.ExplicitPadding; d?: number }[] = [
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, p: 'same' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 2, p: 'same' },
    { x: [2, 10, 12, 5], f: [3, 3, 5, 7], s: 2, p: 'same' }, // TensorFlow's asymmetric 'same'
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 2, p: 'valid' },
    { x: [1, 10, 7, 3], f: [5, 3, 3, 4], s: [2, 1], p: 'same' },
    { x: [3, 8, 8, 4], f: [1, 1, 4, 6], s: 1, p: 'valid' },
    { x: [3, 8, 8, 4], f: [1, 1, 4, 6], s: 2, p: 'valid' },
    { x: [1, 13, 13, 2], f: [3, 3, 2, 3], s: 3, p: 'same' },
    { x: [2, 16, 44, 16], f: [3, 3, 16, 32], s: 1, p: pad4(1, 1, 1, 1) },
    { x: [2, 7, 6, 3], f: [3, 3, 3, 4], s: [1, 2], p: pad4(2, 0, 1, 3) },
    { x: [2, 12, 12, 4], f: [3, 3, 4, 5], s: 1, p: 'same', d: 2 },
    { x: [1, 1, 1, 8], f: [1, 1, 8, 3], s: 1, p: 'valid' },
  ];
  for (const c of convCases) {
    it(`conv2d x ${c.x} filter ${c.f} stride ${c.s} pad ${JSON.stringify(c.p)}${c.d ? ` dilation ${c.d}` : ''}`, async () => {
      const err = await nativeVsWasm([c.x, c.f], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.p, 'NHWC', c.d ?? 1));
      expect(err).toBeLessThan(TOL);
    });
  }

  for (const activation of ['relu', 'linear'] as const) {
    it(`fused conv2d with bias and ${activation} activation`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor, bias: tf.Tensor) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias, activation });
      expect(await nativeVsWasm([[2, 10, 12, 5], [3, 3, 5, 7], [7]], f)).toBeLessThan(TOL);
      const noBias = (x: tf.Tensor, w: tf.Tensor) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: 1, activation });
      expect(await nativeVsWasm([[2, 9, 11, 5], [3, 3, 5, 7]], noBias)).toBeLessThan(TOL);
    });
  }

  const poolCases: { x: number[]; k: number; s: number; p: 'same' | 'valid' | number }[] = [
    { x: [2, 16, 22, 8], k: 3, s: 2, p: 'same' },
    { x: [2, 15, 21, 8], k: 3, s: 2, p: 'same' },
    { x: [2, 16, 22, 8], k: 2, s: 2, p: 'valid' },
    { x: [1, 9, 9, 3], k: 3, s: 1, p: 'same' },
    { x: [2, 16, 22, 8], k: 3, s: 2, p: 1 },
  ];
  for (const c of poolCases) {
    it(`maxPool gradient x ${c.x} window ${c.k} stride ${c.s} pad ${c.p}`, async () => {
      const err = await nativeVsWasm([c.x], (x) => tf.maxPool(x as tf.Tensor4D, c.k, c.s, c.p));
      expect(err).toBeLessThan(TOL);
    });
  }

  const reduceCases: { x: number[]; axes: number | number[]; keep: boolean }[] = [
    { x: [2, 5, 7, 6], axes: [0, 1, 2], keep: false },
    { x: [2, 5, 7, 6], axes: -1, keep: true },
    { x: [2, 5, 7, 6], axes: [1, 3], keep: false },
    { x: [9, 1, 4], axes: 1, keep: false },
    { x: [13], axes: 0, keep: false },
  ];
  for (const c of reduceCases) {
    it(`sum and mean of ${c.x} over ${c.axes}${c.keep ? ' (keepDims)' : ''}`, async () => {
      expect(await nativeVsWasm([c.x], (x) => tf.sum(x, c.axes, c.keep))).toBeLessThan(TOL);
      expect(await nativeVsWasm([c.x], (x) => tf.mean(x, c.axes, c.keep))).toBeLessThan(TOL);
    });
  }

  for (const shape of [[2, 5, 7, 6], [37, 3], [2, 3, 4, 5, 4]]) {
    it(`batch norm in training over ${shape}: y, mean, invstd and the gradients of x, scale and offset`, async () => {
      const c = shape[shape.length - 1]!;
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const [y, mean, invstd] = tf.engine().runKernel(BATCH_NORM_TRAINING, { x, scale: g, offset: b }, { epsilon: 1e-3 }) as tf.Tensor[];
        // mean and invstd are statistics: checked as values (the gradient flows from y only).
        return tf.concat([tf.reshape(y!, [-1]), mean!, invstd!]);
      };
      expect(await nativeVsWasm([shape, [c], [c]], f)).toBeLessThan(TOL);
    });
  }

  // Sizes above MIN_NATIVE_SIZE, so that these run natively; gradients go through the same kinds of kernels.
  it('transpose, slice, split, concat, pad, gather', async () => {
    const x = [4, 9, 10, 13];
    expect(await nativeVsWasm([x], (t) => tf.transpose(t, [0, 3, 1, 2]))).toBeLessThan(TOL);
    expect(await nativeVsWasm([x], (t) => tf.transpose(t, [2, 1, 0, 3]))).toBeLessThan(TOL);
    expect(await nativeVsWasm([x], (t) => tf.slice(t, [1, 2, 0, 3], [3, -1, 7, 9]))).toBeLessThan(TOL);
    expect(await nativeVsWasm([x], (t) => tf.concat(tf.split(t, [3, 6, 4], 3).reverse(), 3))).toBeLessThan(TOL);
    expect(await nativeVsWasm([x, [4, 9, 10, 5]], (a, b) => tf.concat([a, b, a], 3))).toBeLessThan(TOL);
    expect(await nativeVsWasm([x], (t) => tf.pad(t, [[0, 1], [2, 0], [1, 3], [0, 0]], 0.5))).toBeLessThan(TOL);
    const idx = tf.tensor1d([3, 0, 0, 8, 5, 1], 'int32');
    expect(await nativeVsWasm([x], (t) => tf.gather(t, idx, 1))).toBeLessThan(TOL);
    expect(await nativeVsWasm([[5000, 3]], (t) => tf.gather(t, tf.tensor1d([4999, 7, 7, 0], 'int32'), 0))).toBeLessThan(TOL);
    idx.dispose();
  });

  it('relu and its fused gradient', async () => {
    expect(await nativeVsWasm([[4, 9, 10, 13]], (t) => tf.relu(tf.sub(t, 0.2)))).toBeLessThan(TOL);
    // The fused gradient equals tfjs-core's step · dy (evaluated as ops).
    await use('wasm');
    const err = tf.tidy(() => {
      const x = tf.tensor(rnd([4, 9, 10, 13], 9), [4, 9, 10, 13]);
      const dy = tf.tensor(rnd([4, 9, 10, 13], 10), [4, 9, 10, 13]);
      const g = tf.grad((t: tf.Tensor) => tf.relu(t))(x, dy);
      return relErr(g.dataSync(), tf.mul(dy, tf.step(x)).dataSync());
    });
    expect(err).toBeLessThan(1e-7);
  });

  it('add, sub, mul, div with broadcasting', async () => {
    for (const [sa, sb] of [[[4, 9, 10, 13], [4, 9, 10, 13]], [[4, 9, 10, 13], [13]], [[4, 1, 10, 1], [9, 1, 13]], [[1], [4, 9, 10, 13]]]) {
      expect(await nativeVsWasm([sa!, sb!], (a, b) => tf.add(tf.mul(a, b), tf.sub(a, b)))).toBeLessThan(TOL);
      expect(await nativeVsWasm([sa!, sb!], (a, b) => tf.div(a, tf.add(tf.abs(b), 0.5)))).toBeLessThan(TOL);
    }
  });

  it('AdamW update, with and without weight decay', async () => {
    await use('wasm');
    const run = (decay: number) =>
      tf.tidy(() => {
        const [p, m, v, g] = [0, 1, 2, 3].map((i) => (i === 2 ? tf.abs(tf.tensor(rnd([1031], 20 + i))) : tf.tensor(rnd([1031], 20 + i))));
        const out = tf.engine().runKernel(ADAMW, { param: p, m, v, grad: g }, { beta1: 0.9, beta2: 0.999, eps: 1e-8, decay, stepSize: 1e-3 / 0.19, bc2Sqrt: Math.sqrt(1 - 0.999 ** 2) }) as tf.Tensor[];
        return out.map((t) => t.dataSync() as Float32Array);
      });
    for (const decay of [1, 1 - 1e-3 * 0.01]) {
      useNativeKernels(false);
      const a = run(decay);
      useNativeKernels(true);
      const b = run(decay);
      useNativeKernels(false);
      a.forEach((x, i) => expect(relErr(b[i]!, x)).toBeLessThan(1e-6));
    }
  });

  // LSS's BEV pooling: the same bits on both paths, forward and backward, for plans as @bevzoo/nn makes them (points
  // increasing, each pixel's points consecutive: the threads split the backward by pixels) and for indices in any
  // order (one thread), with zero depths skipped forward, at 1 and 2 threads.
  it('BevzooBevPool and its gradient: the same bits as the portable kernel, sorted and unsorted indices', async () => {
    const D = 5, pixels = 37, C = 7, segments = 23;
    const run = (sorted: boolean) => {
      const rng = rnd([4 * pixels * D], sorted ? 11 : 12);
      const point: number[] = [];
      for (let i = 0; i < pixels * D; i++) if (rng[i]! > -0.6) point.push(i);
      if (!sorted) point.reverse();
      const seg = point.map((_, k) => Math.floor(Math.abs(rng[pixels * D + k]!) * 1000) % segments);
      return tf.tidy(() => {
        const depth0 = Float32Array.from(rnd([pixels, D], 13), (v, i) => (rng[i]! > -0.9 ? v : 0)); // some zero depths
        const depthV = tf.variable(tf.tensor(depth0, [pixels, D]));
        const ctxV = tf.variable(tf.tensor(rnd([pixels, C], 14), [pixels, C]));
        const ix = { pointIndex: tf.tensor1d(point, 'int32'), pixelIndex: tf.tensor1d(point.map((p) => Math.floor(p / D)), 'int32'), segmentIds: tf.tensor1d(seg, 'int32') };
        const r = tf.tensor(rnd([segments, C], 15), [segments, C]);
        let pooled: tf.Tensor | undefined;
        // The loss Σ pooled · r: its gradient reaching the kernel is r itself, on either path.
        const { grads } = tf.variableGrads(() => {
          pooled = tf.keep(tf.engine().runKernel(BEV_POOL, { depth: depthV, context: ctxV, ...ix }, { numSegments: segments }) as tf.Tensor);
          return tf.sum(tf.mul(pooled, r)) as tf.Scalar;
        }, [depthV, ctxV]);
        const out = [pooled!, grads[depthV.name]!, grads[ctxV.name]!].map((t) => Array.from(t.dataSync()));
        tf.dispose([depthV, ctxV]);
        return out as unknown as tf.Tensor[];
      }) as unknown as number[][];
    };
    for (const nat of await sameBitsOnBothPaths(() => [run(true), run(false)])) expect(nat[0]![2]!.some((v) => v !== 0)).toBe(true);
  });

  // Multi-scale deformable attention: the same bits on both paths, forward and every gradient, with samples inside,
  // on the border (zero padding) and wholly outside, at 1 and 2 threads (the backward splits batch × head pairs).
  it('BevzooMSDeformAttn and its gradient: the same bits as the portable kernel', async () => {
    const [B, Q, heads, D, L, P] = [3, 41, 4, 5, 2, 3];
    const levels = [7, 9, 4, 5];
    const K = 7 * 9 + 4 * 5;
    const run = () =>
      tf.tidy(() => {
        const value = tf.variable(tf.tensor(rnd([B, K, heads, D], 21), [B, K, heads, D]));
        const loc = tf.variable(tf.mul(tf.add(tf.tensor(rnd([B, Q, heads, L, P, 2], 22), [B, Q, heads, L, P, 2]), 0.8), 0.7)); // −0.14 … 1.12
        const attn = tf.variable(tf.abs(tf.tensor(rnd([B, Q, heads, L, P], 23), [B, Q, heads, L, P])));
        const r = tf.tensor(rnd([B, Q, heads * D], 24), [B, Q, heads * D]);
        let out: tf.Tensor | undefined;
        const { grads } = tf.variableGrads(() => {
          out = tf.keep(tf.engine().runKernel(MS_DEFORM_ATTN, { value, samplingLocations: loc, attentionWeights: attn }, { levels } as unknown as tf.NamedAttrMap) as tf.Tensor);
          return tf.sum(tf.mul(out, r)) as tf.Scalar;
        }, [value, loc, attn]);
        const res = [out!, grads[value.name]!, grads[loc.name]!, grads[attn.name]!].map((t) => Array.from(t.dataSync()));
        tf.dispose([value, loc, attn]);
        return res as unknown as tf.Tensor[];
      }) as unknown as number[][];
    for (const nat of await sameBitsOnBothPaths(run)) for (const g of nat) expect(g.some((v) => v !== 0)).toBe(true);
  });

  // The kernels take the heap after allocating their outputs: an allocation may grow the heap, which detaches the
  // ArrayBuffer taken before it (BEVFormer's deformable attention crashed the process so). The addon refuses one.
  it('a detached heap is refused with an error, not written to', () => {
    const buffer = new ArrayBuffer(64);
    structuredClone(buffer, { transfer: [buffer] });
    expect(() => native.addon!.fill(buffer, 0, 4, 1)).toThrow('bevzoo native: the wasm heap\'s ArrayBuffer is detached (taken before an allocation grew the heap)');
  });

  it('elementwise ops merge axes before choosing a path: short broadcast runs run on wasm, all paths agree', async () => {
    expect(collapseBroadcast([12, 1031, 4, 2, 2, 4, 2], [1, 1, 1, 2, 1, 1, 2])).toEqual({ a: [49488, 2, 8, 2], b: [1, 2, 1, 2], out: [49488, 2, 8, 2] });
    expect(collapseBroadcast([8192, 32], [32])).toEqual({ a: [8192, 32], b: [1, 32], out: [8192, 32] });
    expect(collapseBroadcast([2, 4096, 32], [2, 4096, 32])).toEqual({ a: [262144], b: [262144], out: [262144] });
    expect(collapseBroadcast([1, 1], [1])).toEqual({ a: [1], b: [1], out: [1] });
    for (const [a, b] of [[[12, 31, 4, 2, 2, 4, 2], [1, 1, 1, 2, 1, 1, 2]], [[64, 1, 48], [1, 96, 48]], [[2, 3, 64, 1], [2, 3, 1, 1]], [[4096, 3], [4096, 1]]])
      expect(await nativeVsWasm([a!, b!], (x, y) => tf.addN([tf.add(x, y), tf.sub(x, y), tf.mul(x, y), tf.div(x, tf.add(tf.abs(y), 0.5))])), `[${a}] and [${b}]`).toBeLessThan(TOL);
  });

  it('a clone shares its data (one more reference): each of the two is freed on its own', async () => {
    await use('wasm');
    useNativeKernels(true);
    try {
      const b = tf.backend() as unknown as { getMemoryOffset(d: object): number; refCount(d: object): number };
      const x = tf.tensor(rnd([64, 80], 3), [64, 80]);
      const buffers = (tf.memory() as unknown as { numDataBuffers: number }).numDataBuffers;
      const y = tf.clone(x);
      expect(b.getMemoryOffset((y as unknown as { dataId: object }).dataId)).toBe(b.getMemoryOffset((x as unknown as { dataId: object }).dataId));
      expect((tf.memory() as unknown as { numDataBuffers: number }).numDataBuffers).toBe(buffers);
      const values = Array.from(x.dataSync());
      x.dispose();
      expect(Array.from(y.dataSync())).toEqual(values);
      y.dispose();
      expect(b.refCount((y as unknown as { dataId: object }).dataId)).toBe(0);
    } finally {
      useNativeKernels(false);
    }
  });

  // The stock matmul caches XNNPACK's packed weights by b's data, not its shape: with clones sharing data, the same
  // data reaches it as b under two shapes (a forward's b, its saved clone reshaped in the gradient).
  it('matMul and einsum, values and gradients, where one data is b under several shapes', async () => {
    for (const [sa, sb, ta, tb] of [[[37, 29], [29, 41], false, false], [[29, 37], [29, 41], true, false], [[37, 29], [41, 29], false, true], [[3, 40, 50], [3, 50, 30], false, false]] as [number[], number[], boolean, boolean][])
      expect(await nativeVsWasm([sa, sb], (a, b) => tf.matMul(a, b, ta, tb))).toBeLessThan(TOL);
    for (const [eq, shapes] of [['ij,jk->ik', [[5, 7], [7, 4]]], ['bhqd,bhkd->bhqk', [[2, 3, 6, 8], [2, 3, 5, 8]]], ['ijk,jl->ilk', [[3, 4, 5], [4, 2]]], ['ij,kj->ki', [[5, 7], [4, 7]]]] as [string, number[][]][])
      expect(await nativeVsWasm(shapes, (...xs) => tf.einsum(eq, ...xs))).toBeLessThan(TOL);
    // One tensor as b in [6, 4], then the same data as [4, 6], [3, 8] and [24, 1], through tf.matMul and
    // tf.fused.matMul: each product equals cpu's.
    const run = async (backend: 'wasm' | 'cpu') => {
      await use(backend);
      return tf.tidy(() => {
        const w = tf.tensor(rnd([6, 4], 5), [6, 4]);
        const a = (k: number) => tf.tensor(rnd([5, k], 6 + k), [5, k]);
        return [
          tf.matMul(a(6), w),
          tf.matMul(a(4), tf.reshape(tf.clone(w), [4, 6])),
          tf.matMul(a(3), tf.reshape(w, [3, 8])),
          tf.matMul(a(24), tf.reshape(tf.clone(w), [24, 1])),
          tf.matMul(a(6), tf.clone(w)),
          // tf.fused.matMul's stock kernel shares the cache: the same data as b in [6, 4], then [3, 8].
          tf.fused.matMul({ a: a(6), b: tf.clone(w), activation: 'relu' }),
          tf.fused.matMul({ a: a(3), b: tf.reshape(tf.clone(w), [3, 8]), activation: 'relu' }),
        ].map((t) => Array.from(t.dataSync()));
      });
    };
    useNativeKernels(true);
    try {
      const nat = await run('wasm');
      const ref = await run('cpu');
      nat.forEach((v, i) => expect(relErr(v, ref[i]!)).toBeLessThan(TOL));
    } finally {
      useNativeKernels(false);
    }
  });

  it('initEngine takes the native path by default and says so; BEVZOO_KERNELS=wasm and kernels: "wasm" turn it off', async () => {
    const lines: string[] = [];
    const e = await initEngine({ backend: 'wasm', kernels: 'auto', log: (l) => lines.push(l) });
    expect(e.kernels).toBe('native');
    expect(lines.join('\n')).toMatch(/native kernels \(auto: libtorch/);
    const w = await initEngine({ backend: 'wasm', kernels: 'wasm', log: () => {} });
    expect(w.kernels).toBe('wasm');
    process.env.BEVZOO_KERNELS = 'wasm';
    try {
      expect((await initEngine({ backend: 'wasm', log: () => {} })).kernels).toBe('wasm');
      process.env.BEVZOO_KERNELS = 'fast';
      await expect(initEngine({ backend: 'wasm', log: () => {} })).rejects.toThrow(/unknown kernels 'fast' in BEVZOO_KERNELS/);
    } finally {
      delete process.env.BEVZOO_KERNELS;
    }
  });
});
