import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { Conv3d } from './conv3d.js';
import { ConvTranspose2d } from './conv-transpose2d.js';
import { MaxPool2d } from './pool.js';
import { ConvModule, ConvModule3d } from './conv-module.js';
import { toTorchLayout } from '../module.js';
import { gradCheck, leakDelta, randn, roundTripDiff, useCpu, weightedSum } from '../testutil.js';

beforeAll(useCpu);
const rng = createRng(3);

describe('Conv3d', () => {
  it('shapes, padding and a hand computation', () => {
    const x = randn([1, 4, 5, 6, 2], rng);
    const c1 = new Conv3d(2, 3, 3, { padding: 1 }), c2 = new Conv3d(2, 3, 3, { stride: 2, padding: 1 }), c3 = new Conv3d(2, 3, [1, 3, 3]);
    const ys = [c1.forward(x), c2.forward(x), c3.forward(x)];
    expect(ys.map((y) => y.shape)).toEqual([[1, 4, 5, 6, 3], [1, 2, 3, 3, 3], [1, 4, 3, 4, 3]]);
    const unit = new Conv3d(1, 1, 2, { bias: false });
    unit.weight.assign(tf.ones([2, 2, 2, 1, 1]));
    const ones = tf.tensor5d([0, 1, 2, 3, 4, 5, 6, 7], [1, 2, 2, 2, 1]);
    const y = unit.forward(ones);
    expect(Array.from(y.dataSync())).toEqual([28]);
    expect(toTorchLayout('weight', c3.weight).shape).toEqual([3, 2, 1, 3, 3]);
    tf.dispose([x, ones, y, ...ys]);
    [c1, c2, c3, unit].forEach((m) => m.dispose());
  });

  it('gradients match finite differences', () => {
    const conv = new Conv3d(2, 2, 3, { stride: 2, padding: 1, rng });
    const x = tf.variable(randn([1, 3, 4, 4, 2], rng));
    gradCheck(() => weightedSum(conv.forward(x)), [x, ...conv.parameters()]);
    x.dispose();
    conv.dispose();
  });
});

describe('ConvTranspose2d', () => {
  it('follows PyTorch: out[s·i + a, s·j + b, o] = Σ_c x[i, j, c]·W_torch[c, o, a, b]', () => {
    const up = new ConvTranspose2d(2, 3, 2, { stride: 2, bias: false, rng });
    const x = randn([1, 2, 3, 2], rng);
    const y = up.forward(x);
    expect(y.shape).toEqual([1, 4, 6, 3]);
    const wt = toTorchLayout('weight', up.weight, 'conv-transpose2d').arraySync() as number[][][][]; // [in, out, kh, kw]
    const xa = x.arraySync() as number[][][][], ya = y.arraySync() as number[][][][];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++)
        for (let a = 0; a < 2; a++)
          for (let b = 0; b < 2; b++)
            for (let o = 0; o < 3; o++) {
              let s = 0;
              for (let c = 0; c < 2; c++) s += xa[0]![i]![j]![c]! * wt[c]![o]![a]![b]!;
              expect(ya[0]![2 * i + a]![2 * j + b]![o]).toBeCloseTo(s, 5);
            }
    tf.dispose([x, y]);
    up.dispose();
  });

  it('output size (in − 1)·s − 2p + k + output_padding, and gradients', () => {
    const t = new ConvTranspose2d(2, 2, 3, { stride: 2, padding: 1, outputPadding: 1, rng });
    const x = tf.variable(randn([1, 3, 2, 2], rng));
    const y = t.forward(x);
    expect(y.shape).toEqual([1, 6, 4, 2]);
    expect(t.outputSize(3, 2)).toEqual([6, 4]);
    gradCheck(() => weightedSum(t.forward(x)), [x, ...t.parameters()]);
    tf.dispose([x, y]);
    t.dispose();
  });
});

describe('MaxPool2d', () => {
  it('pads with −∞ (PyTorch) and backpropagates to the max', () => {
    const pool = new MaxPool2d(3, { stride: 2, padding: 1 });
    const x = tf.tensor4d([-1, -2, -3, -4, -5, -6, -7, -8, -9], [1, 3, 3, 1]);
    const y = pool.forward(x);
    expect(Array.from(y.dataSync())).toEqual([-1, -2, -4, -5]);
    const xv = tf.variable(randn([1, 5, 5, 2], rng));
    gradCheck(() => weightedSum(pool.forward(xv)), [xv], { samples: 20 });
    tf.dispose([x, y, xv]);
  });
});

describe('ConvModule', () => {
  it('conv → bn → relu with mmcv names; bias only without norm', () => {
    const m = new ConvModule(3, 4, 3, { padding: 1 });
    expect(Object.keys(m.stateDict())).toEqual(['conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']);
    const plain = new ConvModule(3, 4, 1, { norm: false, act: null });
    expect(Object.keys(plain.stateDict())).toEqual(['conv.weight', 'conv.bias']);
    const x = randn([2, 4, 4, 3], rng);
    const y = m.forward(x);
    expect(y.shape).toEqual([2, 4, 4, 4]);
    expect(Math.min(...Array.from(y.dataSync()))).toBeGreaterThanOrEqual(0);
    expect(roundTripDiff((s) => new ConvModule3d(2, 3, 3, { padding: 1, rng: createRng(s) }), (mm) => mm.forward(tf.ones([2, 2, 3, 3, 2])))).toBe(0);
    expect(leakDelta(m.parameters(), () => m.forward(x))).toBe(0);
    tf.dispose([x, y]);
    m.dispose();
    plain.dispose();
  });
});
