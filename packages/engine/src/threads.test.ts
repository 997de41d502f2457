import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError, initEngine } from './index.js';
import { rnd, setup, wasmVsCpu } from './test_util.js';
import { resolveThreads, runSplit, setMinChunkFlops, stopThreads, threadStats, useInProcessThreads, workerFile } from './threads.js';
import { run, type Chunk } from './wasm/parts.js';
import type { WasmBackend } from './wasm/util.js';
import { setIm2colChunk } from './wasm/conv2d.js';

const TOL = 1e-4;

describe('resolveThreads', () => {
  it("'auto' is 2 on a machine with ≥ 2 cores, 1 on one core", () => {
    expect(resolveThreads('auto', {}, 2).threads).toBe(2);
    expect(resolveThreads('auto', {}, 16).threads).toBe(2);
    expect(resolveThreads('auto', {}, 1).threads).toBe(1);
  });

  it("BEVZOO_THREADS overrides 'auto' (not an explicit count)", () => {
    expect(resolveThreads('auto', { BEVZOO_THREADS: '1' }, 2)).toEqual({ threads: 1, why: 'BEVZOO_THREADS=1' });
    expect(resolveThreads('auto', { BEVZOO_THREADS: '3' }, 2).threads).toBe(3);
    expect(resolveThreads(2, { BEVZOO_THREADS: '1' }, 2).threads).toBe(2);
  });

  it('rejects what is not a positive integer, saying where', () => {
    for (const bad of ['0', 'two', '1.5']) {
      const err = (() => {
        try {
          resolveThreads('auto', { BEVZOO_THREADS: bad }, 2);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).details.where).toBe('environment variable BEVZOO_THREADS');
    }
    expect(() => resolveThreads(0)).toThrow(EngineError);
    expect(() => resolveThreads(1.5)).toThrow(/positive integer, found 1.5/);
  });
});

describe('initEngine({ threads }) from the TypeScript sources', () => {
  it('falls back to one thread (the worker needs the built package) and says so', async () => {
    expect(workerFile()).toEqual({ why: expect.stringContaining('TypeScript source') });
    const lines: string[] = [];
    const engine = await initEngine({ backend: 'wasm', threads: 2, kernels: 'wasm', log: (l) => lines.push(l) });
    expect(engine.threads).toBe(1);
    expect(lines.join('\n')).toMatch(/1 thread \(requested; 1 because the intra-op worker runs from the built package only/);
    const cpu = await initEngine({ backend: 'cpu', threads: 2, log: () => {} });
    expect(cpu.threads).toBe(1);
  });
});

/**
 * The split kernels with in-process stand-ins for the workers: their chunks go through the job
 * messages, shared buffer and claiming a worker gets, computed on this thread; the calling thread's
 * side takes the other chunks. The results must equal cpu's.
 */
describe.each([2, 3])('split kernels (%i threads, in-process stand-ins) equal cpu', (threads) => {
  let prevMin = 0;
  beforeAll(async () => {
    await setup();
    await useInProcessThreads(threads);
    prevMin = setMinChunkFlops(0);
  });
  afterAll(async () => {
    setMinChunkFlops(prevMin);
    await stopThreads();
  });

  /** f's error, checking that it split ops and that the stand-in workers ran chunks of them. */
  const splits = async (f: () => Promise<number>): Promise<number> => {
    const before = threadStats();
    const err = await f();
    const after = threadStats();
    expect(after.splitOps).toBeGreaterThan(before.splitOps);
    expect(after.workerChunks).toBeGreaterThan(before.workerChunks);
    expect(after.chunks - before.chunks).toBeGreaterThan(after.workerChunks - before.workerChunks);
    return err;
  };

  const convCases: { x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid'; d?: number | [number, number] }[] = [
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, p: 'same' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, p: 'valid' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 2, p: 'same' },
    { x: [3, 10, 7, 3], f: [5, 3, 3, 4], s: [2, 1], p: 'same' },
    { x: [1, 13, 13, 2], f: [3, 3, 2, 3], s: 3, p: 'valid' },
    { x: [3, 8, 8, 4], f: [1, 1, 4, 6], s: 1, p: 'valid' },
    { x: [1, 11, 12, 4], f: [3, 2, 4, 5], s: 1, p: 'same', d: [2, 3] },
    { x: [2, 11, 12, 4], f: [3, 3, 4, 5], s: 1, p: 'valid', d: 2 },
    // More images than chunks: the filter gradient splits whole images.
    { x: [13, 5, 6, 3], f: [3, 3, 3, 4], s: 2, p: 'same' },
  ];
  for (const c of convCases) {
    it(`conv2d and its gradients: x ${c.x} filter ${c.f} stride ${c.s} ${c.p} dilation ${c.d ?? 1}`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.s, c.p, 'NHWC', c.d ?? 1);
      expect(await splits(() => wasmVsCpu([c.x, c.f], f))).toBeLessThan(TOL);
    });
  }

  it('explicit asymmetric padding', async () => {
    const pad: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [2, 0],
      [1, 3],
      [0, 0],
    ];
    const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, [1, 2], pad);
    expect(await splits(() => wasmVsCpu([[2, 7, 6, 3], [3, 3, 3, 4]], f))).toBeLessThan(TOL);
  });

  it('filter gradient in im2col chunks within each part', async () => {
    const prev = setIm2colChunk(4096);
    try {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
      expect(await splits(() => wasmVsCpu([[2, 17, 15, 12], [3, 3, 12, 5]], f))).toBeLessThan(TOL);
    } finally {
      setIm2colChunk(prev);
    }
  });

  it('strided conv2dTranspose (matmul split inside col2im)', async () => {
    const f = (dy: tf.Tensor, w: tf.Tensor) => tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, [2, 10, 12, 3], 2, 'same');
    expect(await splits(() => wasmVsCpu([[2, 5, 6, 4], [3, 3, 3, 4]], f))).toBeLessThan(TOL);
  });

  it('matMul split along the rows of a (K ≤ M), with a transposed', async () => {
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, true, false);
    expect(await splits(() => wasmVsCpu([[40, 70], [40, 9]], f))).toBeLessThan(TOL);
  });

  it('matMul split along the inner dimension (K > M), with b transposed', async () => {
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true);
    expect(await splits(() => wasmVsCpu([[13, 90], [7, 90]], f))).toBeLessThan(TOL);
  });

  it('a split training step leaks no tensor on the heap', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(rnd([2, 12, 10, 3], 1), [2, 12, 10, 3]);
    const w1 = tf.variable(tf.tensor4d(rnd([3, 3, 3, 8], 2), [3, 3, 3, 8]));
    const w2 = tf.variable(tf.tensor4d(rnd([3, 3, 8, 4], 3), [3, 3, 8, 4]));
    const opt = tf.train.adam(1e-3);
    const step = () => {
      const h = () => tf.conv2d(tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 1, 'same')), w2 as tf.Tensor4D, 2, 'same');
      opt.minimize(() => tf.mean(tf.square(h())) as tf.Scalar, true)?.dispose();
    };
    step();
    const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    const [tensors, ids, split] = [tf.memory().numTensors, dataIds(), threadStats().splitOps];
    step();
    step();
    expect(threadStats().splitOps - split).toBeGreaterThanOrEqual(2 * 5);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(dataIds()).toBe(ids);
    opt.dispose();
    tf.dispose([x, w1, w2]);
  });

  it('a chunk that fails on a worker makes the op throw an EngineError, and leaks nothing', async () => {
    await tf.setBackend('wasm');
    const b = tf.backend() as unknown as WasmBackend;
    const a = tf.tensor2d(rnd([8, 4], 1), [8, 4]);
    const w = tf.tensor2d(rnd([4, 3], 2), [4, 3]);
    const ids = (b as unknown as { numDataIds(): number }).numDataIds();
    const good: Chunk = { part: { kind: 'matmul' }, inputs: [{ shape: [8, 4], from: run(0, 0, 32) }, { shape: [4, 3], from: run(1, 0, 12) }], out: null };
    const bad: Chunk = { ...good, inputs: [{ shape: [8, 4], from: run(7, 0, 32) }, good.inputs[1]] }; // no input 7
    // The stand-in worker takes the first chunk(s), this thread the last.
    const chunks = [...new Array<Chunk>(threads - 1).fill(bad), good];
    expect(() => runSplit(b, { inputs: [a, w], outShape: [8, 3], chunks })).toThrow(/an intra-op worker failed/);
    expect((b as unknown as { numDataIds(): number }).numDataIds()).toBe(ids);
    tf.dispose([a, w]);
  });

  it('conv3d (2-D taps) and its gradients', async () => {
    const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, 1, 'same');
    expect(await splits(() => wasmVsCpu([[1, 4, 7, 6, 3], [3, 3, 3, 3, 4]], f))).toBeLessThan(TOL);
  });
});
