import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { BasicBlock, Bottleneck, ResNet, createResNet } from './resnet.js';
import { ConfigurationError } from '../errors.js';
import { gradCheck, leakDelta, lossOf, randn, roundTripDiff, useCpu } from '../testutil.js';

beforeAll(useCpu);
const rng = createRng(5);

describe('ResNet blocks', () => {
  it('BasicBlock with and without downsample: shapes, names, gradients', () => {
    const same = new BasicBlock(4, 4, { rng });
    expect(same.downsample).toBeNull();
    const down = new BasicBlock(3, 4, { stride: 2, rng });
    expect(down.namedParameters().map(([n]) => n)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight', 'bn2.weight', 'bn2.bias', 'downsample.0.weight', 'downsample.1.weight', 'downsample.1.bias',
    ]);
    const x = tf.variable(randn([2, 5, 5, 3], rng));
    const y = down.forward(x);
    expect(y.shape).toEqual([2, 3, 3, 4]);
    gradCheck(() => lossOf(down.forward(x)), [x, ...down.parameters()], { samples: 6 });
    const bev = new BasicBlock(3, 4, { stride: 2, downsample: 'conv3x3', rng });
    expect(Object.keys(bev.stateDict()).filter((k) => k.startsWith('downsample'))).toEqual(['downsample.weight', 'downsample.bias']);
    tf.dispose([x, y]);
    [same, down, bev].forEach((m) => m.dispose());
  });

  it('Bottleneck expands ×4 with the stride on the 3×3 conv', () => {
    const b = new Bottleneck(8, 4, { stride: 2, rng });
    expect(b.conv2.stride).toEqual([2, 2]);
    expect(b.conv1.stride).toEqual([1, 1]);
    const x = tf.variable(randn([1, 6, 6, 8], rng));
    const y = b.forward(x);
    expect(y.shape).toEqual([1, 3, 3, 16]);
    gradCheck(() => lossOf(b.forward(x)), [x, b.conv2.weight, b.downsample!.parameters()[0]!], { samples: 6 });
    expect(roundTripDiff((s) => new Bottleneck(8, 4, { stride: 2, rng: createRng(s) }), (m) => m.forward(x))).toBe(0);
    tf.dispose([x, y]);
    b.dispose();
  });
});

describe('ResNet', () => {
  it('resnet18 and resnet50 have torchvision key names and parameter counts (without fc)', () => {
    const r18 = createResNet('resnet18');
    expect(r18.numParameters()).toBe(11_689_512 - 513_000);
    const keys = Object.keys(r18.stateDict());
    expect(keys.slice(0, 8)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked', 'layer1.0.conv1.weight', 'layer1.0.bn1.weight',
    ]);
    expect(keys).toContain('layer2.0.downsample.0.weight');
    expect(keys).toContain('layer4.1.bn2.running_var');
    expect(keys).not.toContain('layer1.0.downsample.0.weight');
    r18.dispose();
    const r50 = createResNet('resnet50');
    expect(r50.numParameters()).toBe(25_557_032 - 2_049_000);
    expect(r50.stageChannels).toEqual([256, 512, 1024, 2048]);
    expect(Object.keys(r50.stateDict())).toContain('layer1.0.downsample.1.running_mean');
    r50.dispose();
  });

  it('tiny variants return the selected stages at strides 4, 8, 16, 32', () => {
    const r = createResNet('resnet18-tiny', { outIndices: [2, 3], rng });
    expect(r.outChannels).toEqual([64, 128]);
    const x = randn([1, 32, 64, 3], rng);
    const [c4, c5] = r.forward(x);
    expect(c4!.shape).toEqual([1, 2, 4, 64]);
    expect(c5!.shape).toEqual([1, 1, 2, 128]);
    expect(leakDelta(r.parameters(), () => r.forward(x))).toBe(0);
    tf.dispose([x, c4!, c5!]);
    r.dispose();
    const b = createResNet('resnet50-tiny', { rng });
    const y = b.forward(tf.zeros([2, 32, 32, 3]));
    expect(y.map((t) => t.shape[3])).toEqual([32, 64, 128, 256]);
    tf.dispose(y);
    b.dispose();
  });

  it('stem-less stages for a BEV encoder; round trip; configuration errors', () => {
    const make = (s: number) => new ResNet({ block: 'basic', layers: [1, 1], widths: [8, 16], strides: [2, 2], inChannels: 4, stem: false, downsample: 'conv3x3', rng: createRng(s) });
    const m = make(0);
    const outs = m.forward(tf.ones([1, 8, 8, 4]));
    expect(outs.map((o) => o.shape)).toEqual([[1, 4, 4, 8], [1, 2, 2, 16]]);
    expect(Object.keys(m.stateDict())[0]).toBe('layer1.0.conv1.weight');
    const x = randn([2, 8, 8, 4], rng);
    expect(roundTripDiff(make, (r) => r.forward(x))).toBe(0);
    expect(() => new ResNet({ block: 'basic', layers: [1, 1], widths: [8] })).toThrow(ConfigurationError);
    expect(() => new ResNet({ block: 'basic', layers: [1], outIndices: [1] })).toThrow(/outIndices/);
    tf.dispose([...outs, x]);
    m.dispose();
  });
});
