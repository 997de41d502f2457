import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type TrainableModel } from '@bevzoo/core';
import { Module, ModuleList, Sequential, fromTorchLayout, toTorchLayout } from './module.js';
import { Conv2d } from './layers/conv2d.js';
import { BatchNorm2d } from './layers/batchnorm.js';
import { Linear } from './layers/linear.js';
import { ReLU } from './layers/activation.js';
import { StateDictError } from './errors.js';
import { setInitSeed } from './init.js';
import { maxAbsDiff, randn, useCpu } from './testutil.js';

beforeAll(useCpu);

class Block extends Module {
  conv1 = this.registerModule('conv1', new Conv2d(2, 3, 3, { padding: 1, bias: false }));
  bn1 = this.registerModule('bn1', new BatchNorm2d(3));
  downsample = this.registerModule('downsample', new Sequential(new Conv2d(2, 3, 1, { bias: false }), new BatchNorm2d(3)));
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.relu(tf.add(this.bn1.forward(this.conv1.forward(x)), this.downsample.forward(x))));
  }
}

class Backbone extends Module {
  layer1 = this.registerModule('layer1', new ModuleList([new Block()]));
}

class Net extends Module {
  backbone = this.registerModule('backbone', new Backbone());
  neck = this.registerModule('neck', new Neck());
  head = this.registerModule('head', new Linear(3, 2));
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.head.forward(this.neck.deblocks.get(0).forward(this.backbone.layer1.get(0).forward(x))));
  }
}

class Neck extends Module {
  deblocks = this.registerModule('deblocks', new ModuleList([new Sequential(new Conv2d(3, 3, 1, { bias: false }), new BatchNorm2d(3), new ReLU())]));
}

describe('Module', () => {
  it('names parameters and buffers like a PyTorch state dict', () => {
    const net = new Net();
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      'backbone.layer1.0.conv1.weight',
      'backbone.layer1.0.bn1.weight',
      'backbone.layer1.0.bn1.bias',
      'backbone.layer1.0.downsample.0.weight',
      'backbone.layer1.0.downsample.1.weight',
      'backbone.layer1.0.downsample.1.bias',
      'neck.deblocks.0.0.weight',
      'neck.deblocks.0.1.weight',
      'neck.deblocks.0.1.bias',
      'head.weight',
      'head.bias',
    ]);
    expect(net.namedBuffers().map(([n]) => n)).toEqual([
      'backbone.layer1.0.bn1.running_mean',
      'backbone.layer1.0.bn1.running_var',
      'backbone.layer1.0.bn1.num_batches_tracked',
      'backbone.layer1.0.downsample.1.running_mean',
      'backbone.layer1.0.downsample.1.running_var',
      'backbone.layer1.0.downsample.1.num_batches_tracked',
      'neck.deblocks.0.1.running_mean',
      'neck.deblocks.0.1.running_var',
      'neck.deblocks.0.1.num_batches_tracked',
    ]);
    expect(Object.keys(net.stateDict()).slice(0, 6)).toEqual([
      'backbone.layer1.0.conv1.weight',
      'backbone.layer1.0.bn1.weight',
      'backbone.layer1.0.bn1.bias',
      'backbone.layer1.0.bn1.running_mean',
      'backbone.layer1.0.bn1.running_var',
      'backbone.layer1.0.bn1.num_batches_tracked',
    ]);
    expect(net.numParameters()).toBe(2 * 3 * 9 + 6 + 6 + 6 + 9 + 6 + 6 + 2);
    expect(net.parameters().every((v) => v.trainable)).toBe(true);
    expect(net.namedBuffers().every(([, v]) => !v.trainable)).toBe(true);
    net.dispose();
  });

  it('train()/eval() recurse; requiresGrad(false) freezes', () => {
    const net = new Net();
    const model: TrainableModel = net; // the trainer's contract, checked by tsc
    model.train(false);
    expect(net.head.training).toBe(false);
    net.eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.train();
    expect(net.backbone.layer1.get(0).bn1.training).toBe(true);
    net.backbone.requiresGrad(false);
    expect(net.trainableParameters().map(([n]) => n)).toEqual([
      'neck.deblocks.0.0.weight',
      'neck.deblocks.0.1.weight',
      'neck.deblocks.0.1.bias',
      'head.weight',
      'head.bias',
    ]);
    net.dispose();
  });

  it('the same init seed gives the same weights', () => {
    setInitSeed(5);
    const a = new Net();
    setInitSeed(5);
    const b = new Net();
    const c = new Net();
    const sa = a.stateDict(), sb = b.stateDict(), sc = c.stateDict();
    for (const k of Object.keys(sa)) expect(sb[k]!.dataSync()).toEqual(sa[k]!.dataSync());
    expect(maxAbsDiff(sa['head.weight']!, sc['head.weight']!)).toBeGreaterThan(0);
    const explicit1 = new Conv2d(2, 2, 3, { rng: createRng(9) }), explicit2 = new Conv2d(2, 2, 3, { rng: createRng(9) });
    expect(explicit1.weight.dataSync()).toEqual(explicit2.weight.dataSync());
    [a, b, c, explicit1, explicit2].forEach((m) => m.dispose());
  });

  it('state dict round trip gives identical outputs (train-mode stats included)', () => {
    const rng = createRng(1);
    const a = new Net();
    const x = randn([2, 4, 4, 2], rng);
    a.train();
    tf.dispose(a.forward(x)); // moves running statistics away from their initial values
    a.eval();
    const b = new Net();
    b.eval();
    b.loadStateDict(a.stateDict());
    const ya = a.forward(x), yb = b.forward(x);
    expect(maxAbsDiff(ya, yb)).toBe(0);
    expect(b.stateDict()['neck.deblocks.0.1.num_batches_tracked']!.dataSync()[0]).toBe(1);
    // the loaded module does not alias the source: changing a leaves b alone
    a.head.weight.assign(tf.zerosLike(a.head.weight));
    const yb2 = b.forward(x);
    expect(maxAbsDiff(yb, yb2)).toBe(0);
    tf.dispose([x, ya, yb, yb2]);
    a.dispose();
    b.dispose();
  });

  it('loadStateDict checks shapes and (strict) keys', () => {
    const net = new Net();
    const bad = { ...net.stateDict(), 'head.weight': tf.zeros([2, 3]) };
    expect(() => net.loadStateDict(bad)).toThrow(StateDictError);
    expect(() => net.loadStateDict(bad)).toThrow(/'head.weight': expected shape \[3,2\], found \[2,3\]/);
    const missing: Record<string, tf.Tensor> = { ...net.stateDict(), extra: tf.zeros([1]) };
    delete missing['head.bias'];
    let err: StateDictError | undefined;
    try {
      net.loadStateDict(missing);
    } catch (e) {
      err = e as StateDictError;
    }
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.missingKeys).toEqual(['head.bias']);
    expect(err!.unexpectedKeys).toEqual(['extra']);
    expect(net.loadStateDict(missing, { strict: false })).toEqual({ missingKeys: ['head.bias'], unexpectedKeys: ['extra'] });
    tf.dispose([bad['head.weight']!, missing.extra!]);
    net.dispose();
  });

  it('converts to and from PyTorch layouts', () => {
    const conv = new Conv2d(2, 3, [1, 2], { bias: false });
    const w = conv.weight.arraySync() as number[][][][]; // [kh, kw, in, out]
    const t = toTorchLayout('weight', conv.weight);
    expect(t.shape).toEqual([3, 2, 1, 2]);
    const ta = t.arraySync() as number[][][][];
    expect(ta[2]![1]![0]![1]).toBe(w[0]![1]![1]![2]);
    const back = fromTorchLayout('weight', t);
    expect(maxAbsDiff(back, conv.weight)).toBe(0);
    const dw = new Conv2d(2, 4, 3, { groups: 2, bias: false }); // [3, 3, 2, 2]
    const tdw = toTorchLayout('weight', dw.weight, 'conv2d-depthwise');
    expect(tdw.shape).toEqual([4, 1, 3, 3]);
    // torch output channel c·mult + m holds tfjs [.., c, m]
    expect((tdw.arraySync() as number[][][][])[3]![0]![2]![1]).toBe((dw.weight.arraySync() as number[][][][])[2]![1]![1]![1]);
    const lin = new Linear(3, 2);
    const sd = lin.torchStateDict();
    expect(sd.weight!.shape).toEqual([2, 3]);
    const lin2 = new Linear(3, 2);
    lin2.loadTorchStateDict(sd);
    expect(maxAbsDiff(lin2.weight, lin.weight)).toBe(0);
    const dw2 = new Conv2d(2, 4, 3, { groups: 2, bias: false });
    dw2.loadTorchStateDict({ weight: tdw });
    expect(maxAbsDiff(dw2.weight, dw.weight)).toBe(0);
    tf.dispose([t, back, tdw, ...Object.values(sd)]);
    [conv, dw, lin, lin2, dw2].forEach((m) => m.dispose());
  });

  it('dispose frees every variable; a training step leaks no tensor', () => {
    const before = tf.memory().numTensors;
    const net = new Net();
    const x = randn([2, 4, 4, 2], createRng(3));
    const during = tf.memory().numTensors;
    const opt = net.parameters();
    for (let i = 0; i < 2; i++) {
      const { value, grads } = tf.variableGrads(() => tf.sum(net.forward(x)) as tf.Scalar, opt);
      tf.tidy(() => {
        for (const v of opt) v.assign(tf.sub(v, tf.mul(grads[v.name]!, 0.01)));
      });
      value.dispose();
      tf.dispose(grads);
    }
    expect(tf.memory().numTensors).toBe(during);
    x.dispose();
    net.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
