import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { relErr, rnd, setup, use, type Backend } from './test_util.js';

beforeAll(setup);

const SHAPES: Record<string, number[]> = {
  conv1: [3, 3, 3, 8],
  gamma: [8],
  beta: [8],
  conv2: [3, 3, 8, 8],
  dil: [3, 3, 8, 8],
  dw: [3, 3, 8, 1],
  head: [8, 5],
  up: [1, 1, 8, 4],
};

/**
 * A small BEV-style network: conv → batch norm (composite ops) → relu → strided conv → dilated conv →
 * depthwise conv → max / avg pooling → bilinear resize back up → 1×1 conv; a gather of cells pooled
 * into segments (BEV pooling) → matMul head with softmax cross-entropy; plus a dense regression loss.
 */
function loss(
  p: Record<string, tf.Tensor>,
  x: tf.Tensor4D,
  idx: tf.Tensor1D,
  seg: tf.Tensor1D,
  target: tf.Tensor,
  smooth = false,
): tf.Scalar {
  let h = tf.conv2d(x, p.conv1 as tf.Tensor4D, 1, 'same');
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  h = tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5))), p.gamma), p.beta);
  h = smooth ? tf.elu(h) : tf.relu(h);
  let g: tf.Tensor4D = tf.conv2d(h as tf.Tensor4D, p.conv2 as tf.Tensor4D, 2, 'same');
  g = tf.elu(tf.conv2d(g, p.dil as tf.Tensor4D, 1, 'same', 'NHWC', 2));
  g = tf.depthwiseConv2d(g, p.dw as tf.Tensor4D, 1, 'valid');
  const pooled: tf.Tensor4D = tf.add(smooth ? tf.avgPool(g, 2, 1, 'same') : tf.maxPool(g, 3, 1, 'same'), tf.avgPool(g, 3, 1, 'same'));
  const up = tf.image.resizeBilinear(pooled, [x.shape[1], x.shape[2]], false, true);
  const dense = tf.conv2d(tf.add(up, h) as tf.Tensor4D, p.up as tf.Tensor4D, 1, 'valid');
  const regression = tf.mean(tf.square(tf.sub(dense, target)));
  // BEV pooling: gather feature cells, sum them into segments, classify each segment.
  const cells = tf.reshape(tf.add(up, h), [-1, 8]);
  const picked = tf.gather(cells, idx);
  const pooledCells = tf.unsortedSegmentSum(picked, seg, 6);
  const logits = tf.matMul(pooledCells, p.head);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0], 'int32'), 5);
  const ce = tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1)));
  return tf.add(regression, ce) as tf.Scalar;
}

function inputs() {
  const x = tf.tensor4d(rnd([2, 13, 11, 3], 7), [2, 13, 11, 3]);
  const n = 2 * 13 * 11;
  const idx = tf.tensor1d(Array.from({ length: 40 }, (_, i) => (i * 37) % n), 'int32');
  const seg = tf.tensor1d(Array.from({ length: 40 }, (_, i) => (i * 5) % 7 - 1), 'int32');
  const target = tf.tensor4d(rnd([2, 13, 11, 4], 9), [2, 13, 11, 4]);
  return { x, idx, seg, target };
}

function params(): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  Object.entries(SHAPES).forEach(([k, s], i) => {
    const v = rnd(s, 20 + i).map((a) => a * 0.5 + (k === 'gamma' ? 1 : 0));
    out[k] = tf.tensor(v, s);
  });
  return out;
}

async function lossAndGrads(backend: Backend): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
  await use(backend);
  return tf.tidy(() => {
    const p = params();
    const { x, idx, seg, target } = inputs();
    const names = Object.keys(p);
    const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) =>
      loss(Object.fromEntries(names.map((k, i) => [k, ts[i]])), x, idx, seg, target),
    )(names.map((k) => p[k]));
    return {
      loss: value.dataSync()[0],
      grads: Object.fromEntries(names.map((k, i) => [k, grads[i].dataSync() as Float32Array])),
    };
  });
}

describe('a small network trains the same on wasm and cpu', () => {
  it('same loss and gradients (relative error ≤ 1e-4)', async () => {
    const cpu = await lossAndGrads('cpu');
    const wasm = await lossAndGrads('wasm');
    expect(Math.abs(wasm.loss - cpu.loss) / Math.abs(cpu.loss)).toBeLessThan(1e-4);
    for (const k of Object.keys(SHAPES)) {
      expect({ param: k, err: relErr(wasm.grads[k], cpu.grads[k]) < 1e-4 }).toEqual({ param: k, err: true });
    }
  });

  // relu and max pooling make the loss non-smooth; the check uses their smooth stand-ins (elu, avg pooling).
  it('the wasm gradient matches a finite-difference directional derivative of the (smooth) loss', async () => {
    await use('wasm');
    const { analytic, numeric } = tf.tidy(() => {
      const p = params();
      const { x, idx, seg, target } = inputs();
      const names = Object.keys(p);
      const dirs = names.map((k, i) => tf.tensor(rnd(SHAPES[k], 60 + i), SHAPES[k]));
      const f = (...ts: tf.Tensor[]) => loss(Object.fromEntries(names.map((k, i) => [k, ts[i]])), x, idx, seg, target, true);
      const grads = tf.grads(f)(names.map((k) => p[k]));
      const dot = grads.reduce((acc, g, i) => acc + tf.sum(tf.mul(g, dirs[i])).dataSync()[0], 0);
      const eps = 1e-3;
      const at = (s: number) => f(...names.map((k, i) => tf.add(p[k], tf.mul(dirs[i], s)))).dataSync()[0];
      return { analytic: dot, numeric: (at(eps) - at(-eps)) / (2 * eps) };
    });
    expect(Math.abs(analytic - numeric) / Math.abs(analytic)).toBeLessThan(1e-3);
  });

  it('a training step on wasm does not grow tf.memory().numTensors nor the wasm heap tensors of our kernels', async () => {
    await use('wasm');
    const vars = Object.fromEntries(Object.entries(params()).map(([k, t]) => [k, tf.variable(t, true, `net.${k}`)]));
    const { x, idx, seg, target } = inputs();
    const opt = tf.train.adam(1e-3);
    const step = () => {
      const l = opt.minimize(() => loss(vars, x, idx, seg, target), true);
      l?.dispose();
    };
    step(); // creates Adam's moment variables
    const before = tf.memory().numTensors;
    const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    const heapBefore = dataIds();
    step();
    step();
    expect(tf.memory().numTensors).toBe(before);
    expect(dataIds()).toBe(heapBefore);
    opt.dispose();
    tf.dispose([x, idx, seg, target, ...Object.values(vars)]);
  });
});
