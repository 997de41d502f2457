import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { FPN } from './fpn.js';
import { SECOND, SECONDFPN } from './second.js';
import { Conv2d } from './conv2d.js';
import { ConvTranspose2d } from './conv-transpose2d.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { gradCheck, leakDelta, lossOf, maxAbsDiff, randn, roundTripDiff, useCpu } from '../testutil.js';

beforeAll(useCpu);
const rng = createRng(8);

describe('FPN', () => {
  it('lateral 1×1 + top-down nearest upsampling + 3×3 outputs, mmdet names', () => {
    const fpn = new FPN([4, 6, 8], 5, { numOuts: 4, rng });
    expect(fpn.namedParameters().map(([n]) => n)).toEqual([
      'lateral_convs.0.conv.weight', 'lateral_convs.0.conv.bias', 'lateral_convs.1.conv.weight', 'lateral_convs.1.conv.bias',
      'lateral_convs.2.conv.weight', 'lateral_convs.2.conv.bias', 'fpn_convs.0.conv.weight', 'fpn_convs.0.conv.bias',
      'fpn_convs.1.conv.weight', 'fpn_convs.1.conv.bias', 'fpn_convs.2.conv.weight', 'fpn_convs.2.conv.bias',
    ]);
    const xs = [randn([1, 8, 12, 4], rng), randn([1, 4, 6, 6], rng), randn([1, 2, 3, 8], rng)];
    const outs = fpn.forward(xs);
    expect(outs.map((o) => o.shape)).toEqual([[1, 8, 12, 5], [1, 4, 6, 5], [1, 2, 3, 5], [1, 1, 2, 5]]);
    // top-down: the finest level sees the coarsest input through the chain of additions
    const lat = tf.tidy(() => {
      const l2 = fpn.lateral_convs.get(2).forward(xs[2]!) as tf.Tensor4D;
      const l1 = tf.add(fpn.lateral_convs.get(1).forward(xs[1]!), tf.image.resizeNearestNeighbor(l2, [4, 6])) as tf.Tensor4D;
      const l0 = tf.add(fpn.lateral_convs.get(0).forward(xs[0]!), tf.image.resizeNearestNeighbor(l1, [8, 12]));
      return fpn.fpn_convs.get(0).forward(l0);
    });
    expect(maxAbsDiff(lat, outs[0]!)).toBeLessThan(1e-5);
    const vs = xs.map((x) => tf.variable(x));
    gradCheck(() => lossOf(fpn.forward(vs)), [...vs, fpn.lateral_convs.get(2).conv.weight], { samples: 5 });
    expect(leakDelta(fpn.parameters(), () => fpn.forward(xs))).toBe(0);
    expect(() => fpn.forward(xs.slice(1))).toThrow(ShapeError);
    tf.dispose([...xs, ...outs, lat, ...vs]);
    fpn.dispose();
  });
});

describe('SECOND + SECONDFPN', () => {
  it('the CenterPoint-pillar RPN at a small size: strides, widths, mmdet3d names', () => {
    const second = new SECOND({ inChannels: 4, outChannels: [4, 8, 8], layerNums: [1, 2, 1], layerStrides: [2, 2, 2], rng });
    const keys = Object.keys(second.stateDict());
    expect(keys.slice(0, 8)).toEqual([
      'blocks.0.0.weight', 'blocks.0.1.weight', 'blocks.0.1.bias', 'blocks.0.1.running_mean', 'blocks.0.1.running_var',
      'blocks.0.1.num_batches_tracked', 'blocks.0.3.weight', 'blocks.0.4.weight',
    ]);
    expect(keys).toContain('blocks.1.6.weight'); // 1 strided + 2 convs: conv indices 0, 3, 6
    expect(keys).not.toContain('blocks.2.6.weight');
    const bn = second.blocks.get(0).get(1) as unknown as { eps: number; momentum: number };
    expect([bn.eps, bn.momentum]).toEqual([1e-3, 0.01]);
    const neck = new SECONDFPN({ inChannels: [4, 8, 8], outChannels: [6, 6, 6], upsampleStrides: [0.5, 1, 2], rng });
    expect(neck.deblocks.get(0).get(0)).toBeInstanceOf(Conv2d);
    expect(neck.deblocks.get(1).get(0)).toBeInstanceOf(ConvTranspose2d);
    expect(Object.keys(neck.stateDict())).toContain('deblocks.2.1.running_var');
    const x = randn([2, 16, 16, 4], rng);
    const stages = second.forward(x);
    expect(stages.map((s) => s.shape)).toEqual([[2, 8, 8, 4], [2, 4, 4, 8], [2, 2, 2, 8]]);
    const y = neck.forward(stages);
    expect(y.shape).toEqual([2, 4, 4, 18]);
    expect(neck.channels).toBe(18);
    const params = [...second.parameters(), ...neck.parameters()];
    expect(leakDelta(params, () => neck.forward(second.forward(x)))).toBe(0);
    const xv = tf.variable(randn([2, 8, 8, 4], rng));
    gradCheck(() => lossOf(neck.forward(second.forward(xv))), [xv, second.blocks.get(1).get(0).parameters()[0]!, neck.deblocks.get(2).get(0).parameters()[0]!], { samples: 5 });
    const make = (s: number) => {
      const r = createRng(s);
      const m = new SECOND({ inChannels: 4, outChannels: [4, 8], layerNums: [1, 1], layerStrides: [2, 2], rng: r });
      return m;
    };
    expect(roundTripDiff(make, (m) => m.forward(x))).toBe(0);
    tf.dispose([x, xv, y, ...stages]);
    second.dispose();
    neck.dispose();
  });

  it('rejects inconsistent configurations and mismatched level sizes', () => {
    expect(() => new SECOND({ outChannels: [8, 8], layerNums: [1] })).toThrow(ConfigurationError);
    expect(() => new SECONDFPN({ inChannels: [4], outChannels: [4], upsampleStrides: [0.3] })).toThrow(ConfigurationError);
    const neck = new SECONDFPN({ inChannels: [2, 2], outChannels: [2, 2], upsampleStrides: [1, 1] });
    const a = tf.zeros([2, 4, 4, 2]), b = tf.zeros([2, 2, 2, 2]);
    expect(() => neck.forward([a, b])).toThrow(/deblock 1: expected output 4×4 like level 0, found 2×2/);
    tf.dispose([a, b]);
    neck.dispose();
  });
});
