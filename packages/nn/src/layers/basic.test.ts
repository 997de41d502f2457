import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { Conv2d } from './conv2d.js';
import { BatchNorm1d, BatchNorm2d } from './batchnorm.js';
import { Linear } from './linear.js';
import { ReLU, Sigmoid, Softplus, clampedSigmoid } from './activation.js';
import { ShapeError, ConfigurationError } from '../errors.js';
import { gradCheck, maxAbsDiff, randn, useCpu, weightedSum } from '../testutil.js';

beforeAll(useCpu);
const rng = createRng(42);

describe('Conv2d', () => {
  it('output shapes follow PyTorch (stride, padding, same, dilation, depthwise)', () => {
    const x = randn([2, 9, 7, 3], rng);
    const cases: [Conv2d, number[]][] = [
      [new Conv2d(3, 4, 3), [2, 7, 5, 4]],
      [new Conv2d(3, 4, 3, { padding: 1 }), [2, 9, 7, 4]],
      [new Conv2d(3, 4, 3, { stride: 2, padding: 1 }), [2, 5, 4, 4]],
      [new Conv2d(3, 4, 7, { stride: 2, padding: 3 }), [2, 5, 4, 4]],
      [new Conv2d(3, 4, 3, { padding: 'same', dilation: 2 }), [2, 9, 7, 4]],
      [new Conv2d(3, 4, 3, { padding: 2, dilation: 2, stride: 2 }), [2, 5, 4, 4]],
      [new Conv2d(3, 4, [1, 3], { padding: [0, 1] }), [2, 9, 7, 4]],
      [new Conv2d(3, 6, 3, { groups: 3, padding: 1 }), [2, 9, 7, 6]],
      [new Conv2d(3, 3, 2, { padding: 'same' }), [2, 9, 7, 3]],
    ];
    for (const [conv, shape] of cases) {
      const y = conv.forward(x);
      expect(y.shape).toEqual(shape);
      y.dispose();
      conv.dispose();
    }
    x.dispose();
  });

  it('dilated convolution (space-to-batch path) equals tfjs native dilation', () => {
    const x = randn([1, 11, 10, 2], rng);
    const conv = new Conv2d(2, 3, 3, { padding: 2, dilation: 2 });
    const y = conv.forward(x);
    const ref = tf.tidy(() => tf.add(tf.conv2d(x as tf.Tensor4D, conv.weight as tf.Tensor4D, 1, 2, 'NHWC', 2), conv.bias!));
    expect(maxAbsDiff(y, ref)).toBeLessThan(1e-5);
    const dw = new Conv2d(2, 2, 3, { padding: 3, dilation: 3, groups: 2, bias: false });
    const ydw = dw.forward(x);
    const refdw = tf.depthwiseConv2d(x as tf.Tensor4D, dw.weight as tf.Tensor4D, 1, 3, 'NHWC', 3);
    expect(maxAbsDiff(ydw, refdw)).toBeLessThan(1e-5);
    tf.dispose([x, y, ref, ydw, refdw]);
    conv.dispose();
    dw.dispose();
  });

  it('matches a hand computation (weight layout [kh, kw, in, out])', () => {
    const conv = new Conv2d(1, 1, 2, { bias: false });
    conv.weight.assign(tf.tensor4d([1, 2, 3, 4], [2, 2, 1, 1]));
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const y = conv.forward(x);
    expect(Array.from(y.dataSync())).toEqual([1 + 4 + 12 + 20, 2 + 6 + 15 + 24, 4 + 10 + 21 + 32, 5 + 12 + 24 + 36]);
    tf.dispose([x, y]);
    conv.dispose();
  });

  it('gradients match finite differences', () => {
    const configs = [
      { k: 3, opts: { padding: 1, stride: 2 } },
      { k: 3, opts: { padding: 'same' as const, dilation: 2 } },
      { k: 2, opts: { padding: 'same' as const } },
      { k: 3, opts: { padding: 1, groups: 2 } },
    ];
    for (const { k, opts } of configs) {
      const out = opts.groups ? 4 : 3;
      const conv = new Conv2d(2, out, k, { ...opts, rng });
      const x = tf.variable(randn([1, 5, 5, 2], rng));
      const res = gradCheck(() => weightedSum(conv.forward(x)), [x, ...conv.parameters()]);
      expect(res.checked).toBeGreaterThan(10);
      x.dispose();
      conv.dispose();
    }
  });

  it('rejects wrong inputs and unsupported groups with typed errors', () => {
    const conv = new Conv2d(3, 4, 3);
    const x = tf.zeros([1, 5, 5, 2]);
    expect(() => conv.forward(x)).toThrow(ShapeError);
    expect(() => conv.forward(x)).toThrow(/Conv2d\(3→4\): expected rank 4 \(NHWC\) with 3 channels, found shape \[1,5,5,2\]/);
    expect(() => new Conv2d(4, 4, 3, { groups: 2 })).toThrow(ConfigurationError);
    x.dispose();
    conv.dispose();
  });
});

describe('Linear', () => {
  it('applies x·W + b over the last axis of any rank, with gradients', () => {
    const lin = new Linear(3, 2, { rng });
    lin.weight.assign(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]));
    lin.bias!.assign(tf.tensor1d([0.5, -1]));
    const x = tf.tensor3d([1, 0, 2, 0, 1, 0], [2, 1, 3]);
    const y = lin.forward(x);
    expect(y.shape).toEqual([2, 1, 2]);
    expect(Array.from(y.dataSync())).toEqual([1 + 10 + 0.5, 2 + 12 - 1, 3 + 0.5, 4 - 1]);
    const xv = tf.variable(randn([2, 3, 3], rng));
    gradCheck(() => weightedSum(lin.forward(xv)), [xv, ...lin.parameters()]);
    tf.dispose([x, y, xv]);
    lin.dispose();
  });

  it('default init is U(±1/sqrt(fan_in)) like PyTorch', () => {
    const lin = new Linear(16, 64, { rng });
    const w = lin.weight.dataSync();
    const bound = 1 / Math.sqrt(16);
    expect(Math.max(...Array.from(w).map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...Array.from(w).map(Math.abs))).toBeGreaterThan(0.9 * bound);
    lin.dispose();
  });
});

describe('BatchNorm', () => {
  it('training uses batch statistics and updates running stats like PyTorch (momentum 0.1, unbiased var)', () => {
    const bn = new BatchNorm1d(2);
    // channel 0: 1, 2, 3, 6 → mean 3, biased var 3.5, unbiased 14/3; channel 1: 0, 0, 4, 4 → mean 2, var 4, unbiased 16/3
    const x = tf.tensor2d([1, 0, 2, 0, 3, 4, 6, 4], [4, 2]);
    const y = bn.forward(x);
    const expected = [1, 0, 2, 0, 3, 4, 6, 4].map((v, i) => (i % 2 === 0 ? (v - 3) / Math.sqrt(3.5 + 1e-5) : (v - 2) / Math.sqrt(4 + 1e-5)));
    const yd = y.dataSync();
    expected.forEach((e, i) => expect(yd[i]).toBeCloseTo(e, 5));
    const rm = bn.running_mean.dataSync(), rv = bn.running_var.dataSync();
    expect(rm[0]).toBeCloseTo(0.3, 6);
    expect(rm[1]).toBeCloseTo(0.2, 6);
    expect(rv[0]).toBeCloseTo(0.9 + 0.1 * (14 / 3), 6);
    expect(rv[1]).toBeCloseTo(0.9 + 0.1 * (16 / 3), 6);
    expect(bn.num_batches_tracked.dataSync()[0]).toBe(1);
    // a second step compounds: running = 0.9·running + 0.1·batch
    tf.dispose(bn.forward(x));
    expect(bn.running_mean.dataSync()[0]).toBeCloseTo(0.9 * 0.3 + 0.3, 6);
    expect(bn.num_batches_tracked.dataSync()[0]).toBe(2);
    // eval: running statistics, no update
    bn.eval();
    const ye = bn.forward(x);
    const m0 = bn.running_mean.dataSync()[0]!, v0 = bn.running_var.dataSync()[0]!;
    expect(ye.dataSync()[0]).toBeCloseTo((1 - m0) / Math.sqrt(v0 + 1e-5), 5);
    expect(bn.num_batches_tracked.dataSync()[0]).toBe(2);
    tf.dispose([x, y, ye]);
    bn.dispose();
  });

  it('BatchNorm2d normalises over N, H, W; eps and momentum options; gradients', () => {
    const bn = new BatchNorm2d(3, { eps: 1e-3, momentum: 0.01 });
    const x = tf.variable(randn([2, 3, 3, 3], rng, 2));
    const y = bn.forward(x);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    mean.dataSync().forEach((m) => expect(Math.abs(m)).toBeLessThan(1e-5));
    variance.dataSync().forEach((v) => expect(v).toBeGreaterThan(0.99));
    const bm = tf.moments(x, [0, 1, 2]).mean;
    expect(maxAbsDiff(bn.running_mean, tf.mul(bm, 0.01))).toBeLessThan(1e-6);
    bn.weight!.assign(tf.tensor1d([0.5, 1.5, -1]));
    bn.bias!.assign(tf.tensor1d([0.1, 0.2, 0.3]));
    gradCheck(() => weightedSum(bn.forward(x)), [x, ...bn.parameters()], { samples: 12 });
    bn.eval();
    gradCheck(() => weightedSum(bn.forward(x)), [x, ...bn.parameters()]);
    expect(() => bn.forward(tf.zeros([2, 3]))).toThrow(ShapeError);
    tf.dispose([x, y, mean, variance, bm]);
    bn.dispose();
  });

  it('refuses one value per channel in training', () => {
    const bn = new BatchNorm1d(2);
    const x = tf.zeros([1, 2]);
    expect(() => bn.forward(x)).toThrow(/more than 1 value per channel/);
    x.dispose();
    bn.dispose();
  });
});

describe('activations', () => {
  it('ReLU, Sigmoid, Softplus, clampedSigmoid', () => {
    const x = tf.tensor1d([-20, -1, 0, 2, 20]);
    const r = new ReLU().forward(x), s = new Sigmoid().forward(x), sp = new Softplus().forward(x), cs = clampedSigmoid(x);
    expect(Array.from(r.dataSync())).toEqual([0, 0, 0, 2, 20]);
    expect(s.dataSync()[2]).toBeCloseTo(0.5, 6);
    expect(sp.dataSync()[1]).toBeCloseTo(Math.log(1 + Math.exp(-1)), 5);
    expect(cs.dataSync()[0]).toBeCloseTo(1e-4, 8);
    expect(cs.dataSync()[4]).toBeCloseTo(1 - 1e-4, 6);
    tf.dispose([x, r, s, sp, cs]);
  });
});
