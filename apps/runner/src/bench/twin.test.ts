import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTorchPython, initEngine } from '@bevzoo/engine';
import { recordForward, type RecordedGraph, type TF, type Tensor, type Variable } from './record.js';
import { formatProfile, formatReport, kernelTimes, median, splitMedians } from './report.js';
import { fuseBatchNorms, runTwin, twinForward, UnmappedKernelError, writeTwin } from './twin.js';

const python = findTorchPython();
const settings = { model: 'tiny', lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01, clip: 35 };

let tf: TF;
let vars: [string, Variable][];
let x: Tensor;
const dirs: string[] = [];

/** conv 3×3 (+bias) → batch norm with batch statistics (as the nn layers do it) → relu → 1×1 conv at stride 2 (a row past its last window: the twin subsamples) → mean of squares. */
function tinyLoss(): Tensor {
  const [w1, b1, gamma, beta, w2] = vars.map(([, v]) => v);
  const h = tf.add(tf.conv2d(x as never, w1 as never, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]), b1!);
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  const y = tf.relu(tf.batchNorm(h as never, mean, variance, beta!, gamma!, 1e-5));
  const z = tf.conv2d(y as never, w2 as never, 2, 0);
  return tf.mean(tf.square(tf.sub(z, 0.25)));
}

beforeAll(async () => {
  const engine = await initEngine({ backend: 'wasm', threads: 1, log: () => {} });
  tf = engine.tf as TF;
  const r = (shape: number[], seed: number, scale = 0.5) => tf.mul(tf.randomUniform(shape, -1, 1, 'float32', seed), scale);
  x = r([2, 6, 5, 3], 1, 1);
  vars = [
    ['conv1.weight', tf.variable(r([3, 3, 3, 4], 2))],
    ['conv1.bias', tf.variable(r([4], 3, 0.1))],
    ['bn.weight', tf.variable(tf.add(r([4], 4, 0.1), 1))],
    ['bn.bias', tf.variable(r([4], 5, 0.1))],
    ['conv2.weight', tf.variable(r([1, 1, 4, 2], 6))],
  ];
});

afterAll(() => {
  tf?.dispose([x, ...vars.map(([, v]) => v)]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('recordForward', () => {
  it('records the kernels of a forward pass by data id, with the variables as named leaves, and restores the kernels', () => {
    const before = tf.getKernelsForBackend('wasm').map((k) => k.kernelFunc);
    const memory = tf.memory().numTensors;
    const g = recordForward(tf, tinyLoss, vars);
    expect(tf.getKernelsForBackend('wasm').map((k) => k.kernelFunc)).toEqual(before);
    expect(tf.memory().numTensors).toBe(memory);
    const expected = tf.tidy(() => tinyLoss().dataSync()[0]!);
    expect(g.loss).toBeCloseTo(expected, 6);
    const kernels = new Set(g.calls.map((c) => c.kernel));
    for (const k of ['Conv2D', 'Mean', 'FusedBatchNorm', 'Relu']) expect(kernels).toContain(k);
    expect(g.leaves.filter((l) => l.kind === 'param').map((l) => l.name).sort()).toEqual(vars.map(([n]) => n).sort());
    const input = g.leaves.find((l) => l.kind === 'const' && l.shape.join() === '2,6,5,3');
    expect(input?.values).toEqual(x.dataSync());
    // Every input is a leaf or an output of an earlier call.
    const known = new Set(g.leaves.map((l) => l.key));
    for (const c of g.calls) {
      for (const [, r] of c.inputs) expect(known.has(r.key)).toBe(true);
      for (const o of c.outputs) known.add(o.key);
    }
    expect(known.has(g.output.key)).toBe(true);
  });

  it('fuses the moments and FusedBatchNorm into one training batch norm', () => {
    const g = recordForward(tf, tinyLoss, vars);
    const fused = fuseBatchNorms(g.calls);
    expect(fused.filter((c) => c.kernel === 'BevzooBatchNormTraining')).toHaveLength(1);
    expect(fused.some((c) => c.kernel === 'FusedBatchNorm')).toBe(false);
    expect(fused.length).toBeLessThan(g.calls.length);
  });

  it.skipIf(!('python' in python))('writes a PyTorch twin that reproduces the loss', async () => {
    const g = recordForward(tf, tinyLoss, vars);
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-twin-test-'));
    dirs.push(dir);
    const w = writeTwin(g, dir, settings);
    expect(w.unmapped).toBeUndefined();
    expect(readFileSync(join(dir, 'twin.py'), 'utf8')).toContain('torch.native_batch_norm');
    const r = await runTwin((python as { python: string }).python, dir, { threads: 1, steps: 1, warmup: 0 });
    if ('error' in r) throw new Error(r.error);
    expect(Math.abs(r.firstLoss - g.loss) / Math.abs(g.loss)).toBeLessThan(1e-4);
    expect(r.fwd).toHaveLength(1);
  });
});

describe('the kernel mapper', () => {
  const graph = (kernel: string, attrs: Record<string, unknown> = {}): RecordedGraph => ({
    calls: [{ kernel, inputs: [['x', { key: '0', shape: [2, 3], dtype: 'float32' }]], attrs, outputs: [{ key: '1', shape: [], dtype: 'float32' }] }],
    leaves: [{ key: '0', shape: [2, 3], dtype: 'float32', kind: 'const', values: new Float32Array(6) }],
    output: { key: '1', shape: [], dtype: 'float32' },
    loss: 0,
    recordedCalls: 1,
    backend: 'wasm',
  });

  it('rejects an unknown kernel, naming it', () => {
    expect(() => twinForward(graph('NoSuchKernel'))).toThrow(UnmappedKernelError);
    expect(() => twinForward(graph('NoSuchKernel'))).toThrow(/kernel NoSuchKernel has no PyTorch mapping/);
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-twin-test-'));
    dirs.push(dir);
    expect(writeTwin(graph('NoSuchKernel'), dir, settings).unmapped).toMatch(/NoSuchKernel/);
  });

  it('rejects a form of a known kernel it does not handle', () => {
    const g = graph('StridedSlice', { begin: [0], end: [1], strides: [1], ellipsisMask: 1 });
    expect(() => twinForward(g)).toThrow(/kernel StridedSlice: ellipsisMask/);
  });

  it('maps a reduction over every axis', () => {
    expect(twinForward(graph('Sum', { axis: null, keepDims: false })).lines[0]).toBe('v1 = torch.sum(v0, dim=(0, 1), keepdim=False)');
  });
});

describe('the report', () => {
  it('splits the step: backward = (b) − (a) per step, total = (b) + (c) per step, medians', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(splitMedians({ fwd: [10, 12, 11], fwdBwd: [30, 36, 32], opt: [2, 2, 3] })).toEqual({ fwd: 11, bwd: 21, opt: 2, total: 35 });
  });

  it('prints a row per path, the PyTorch row and the ratios', () => {
    const row = { model: 'm', path: 'wasm', kernels: 'wasm', kernelsReason: '', backend: 'wasm', threads: 2, unavailable: false, preset: 'small', batchSize: 2, params: 1e6, clip: 35, fwd: [100], fwdBwd: [300], opt: [10] };
    const text = formatReport({ model: 'm', rows: [row], torch: { torch: '1.13', threads: 2, firstLoss: 1, fwd: [20], fwdBwd: [60], opt: [2] }, twinOk: true, notes: ['a note'] });
    expect(text).toMatch(/wasm\s+2\s+100\s+200\s+10\.0\s+310\s+5\.00×/);
    expect(text).toMatch(/PyTorch 1\.13 CPU\s+2\s+20\.0\s+40\.0\s+2\.0\s+62\.0\s+1\.00×/);
    expect(text).toContain('a note');
    // With the tuned-malloc twin beside it: a ratio column for each PyTorch row.
    const both = formatReport({ model: 'm', rows: [row], torch: { torch: '1.13', threads: 2, firstLoss: 1, fwd: [20], fwdBwd: [60], opt: [2] }, torchTuned: { torch: '1.13', threads: 2, firstLoss: 1, fwd: [10], fwdBwd: [60], opt: [2] }, twinOk: true, notes: [] });
    expect(both).toMatch(/× PyTorch\s+× PyTorch, malloc tuned/);
    expect(both).toMatch(/wasm\s+2\s+100\s+200\s+10\.0\s+310\s+5\.00×\s+5\.00×/);
    expect(both).toMatch(/PyTorch 1\.13 CPU, malloc tuned\s+2\s+10\.0\s+50\.0\s+2\.0\s+62\.0\s+1\.00×\s+1\.00×/);
    // No twin: one column of '–'.
    expect(formatReport({ model: 'm', rows: [row], notes: [] })).toMatch(/310\s+–/);
  });

  it('sums the profiled kernels by name, largest first, and prints their shares', () => {
    const k = kernelTimes([{ name: 'Conv2D', kernelTimeMs: 3 }, { name: 'Add', kernelTimeMs: 0.5 }, { name: 'Conv2D', kernelTimeMs: 4 }, { name: 'Add', kernelTimeMs: { error: 'no timer' } }]);
    expect(k).toEqual([['Conv2D', 2, 7], ['Add', 2, 0.5]]);
    const lines = formatProfile('native', { wallMs: 9, kernels: k });
    expect(lines[0]).toMatch(/profile \(native\): one step 9\.0 ms under the profiler, kernels 7\.5 ms in 4 calls/);
    expect(lines[1]).toMatch(/Conv2D\s+7\.0 ms\s+93\.3 %\s+×2/);
  });
});
