import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { BasicBlock3D, FPN3D, ResNet3D, upsample3d } from './blocks3d.js';
import { ShapeError } from '../errors.js';
import { gradCheck, leakDelta, lossOf, randn, roundTripDiff, useCpu } from '../testutil.js';

beforeAll(useCpu);
const rng = createRng(13);

describe('upsample3d', () => {
  it('trilinear with align_corners=True interpolates each axis; nearest repeats', () => {
    // value = 1·d + 10·h + 100·w on a 2×2×2 volume (linear, so trilinear reproduces it exactly)
    const vals: number[] = [];
    for (let d = 0; d < 2; d++) for (let h = 0; h < 2; h++) for (let w = 0; w < 2; w++) vals.push(d + 10 * h + 100 * w);
    const x = tf.tensor5d(vals, [1, 2, 2, 2, 1]);
    const y = upsample3d(x, [3, 2, 2]); // D 2 → 6, H, W 2 → 4
    expect(y.shape).toEqual([1, 6, 4, 4, 1]);
    const ya = y.arraySync();
    for (const [d, h, w] of [[0, 0, 0], [1, 2, 3], [5, 3, 1], [3, 1, 2]] as const) {
      expect(ya[0]![d]![h]![w]![0]).toBeCloseTo(d / 5 + (10 * h) / 3 + (100 * w) / 3, 4);
    }
    const n = upsample3d(x, 2, 'nearest');
    expect(n.arraySync()[0]![3]![2]![1]![0]).toBe(1 + 10 + 0);
    const xv = tf.variable(randn([1, 2, 2, 3, 2], rng));
    gradCheck(() => lossOf(upsample3d(xv, 2)), [xv]);
    tf.dispose([x, y, n, xv]);
  });
});

describe('3-D blocks', () => {
  it('BasicBlock3D: Conv3d-BN-ReLU modules with mmcv names, shapes, gradients, round trip', () => {
    const b = new BasicBlock3D(2, 3, { stride: 2, rng });
    expect(b.namedParameters().map(([n]) => n)).toEqual([
      'conv1.conv.weight', 'conv1.bn.weight', 'conv1.bn.bias', 'conv2.conv.weight', 'conv2.bn.weight', 'conv2.bn.bias',
      'downsample.conv.weight', 'downsample.bn.weight', 'downsample.bn.bias',
    ]);
    const x = tf.variable(randn([2, 2, 4, 4, 2], rng));
    const y = b.forward(x);
    expect(y.shape).toEqual([2, 1, 2, 2, 3]);
    gradCheck(() => lossOf(b.forward(x)), [x, b.conv1.conv.weight, b.downsample!.conv.weight], { samples: 5 });
    expect(roundTripDiff((s) => new BasicBlock3D(2, 3, { stride: 2, rng: createRng(s) }), (m) => m.forward(x))).toBe(0);
    expect(new BasicBlock3D(3, 3).downsample).toBeNull();
    tf.dispose([x, y]);
    b.dispose();
  });

  it('ResNet3D + FPN3D: a small occupancy encoder; no leak', () => {
    const enc = new ResNet3D({ inChannels: 2, numLayers: [1, 1, 1], numChannels: [4, 6, 8], rng });
    expect(Object.keys(enc.stateDict())).toContain('layers.2.0.downsample.bn.running_mean');
    const fpn = new FPN3D([4, 6, 8], 5, { rng });
    const x = randn([1, 4, 8, 8, 2], rng);
    const feats = enc.forward(x);
    expect(feats.map((f) => f.shape)).toEqual([[1, 4, 8, 8, 4], [1, 2, 4, 4, 6], [1, 1, 2, 2, 8]]);
    const y = fpn.forward(feats);
    expect(y.shape).toEqual([1, 4, 8, 8, 5]);
    expect(Object.keys(fpn.stateDict())[0]).toBe('conv.conv.weight');
    expect(leakDelta([...enc.parameters(), ...fpn.parameters()], () => fpn.forward(enc.forward(x)))).toBe(0);
    const bad = tf.zeros([1, 3, 3, 3, 6]);
    expect(() => fpn.forward([feats[0]!, bad, feats[2]!])).toThrow(ShapeError);
    tf.dispose([x, y, bad, ...feats]);
    enc.dispose();
    fpn.dispose();
  });
});
