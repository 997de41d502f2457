import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adjointErr, setup, use, wasmVsCpu } from './test_util.js';
import { setIm2colChunk } from './wasm/conv2d.js';

const TOL = 1e-4;
type Pad = 'same' | 'valid';

beforeAll(setup);

describe('Conv2D gradients (Conv2DBackpropFilter, Conv2DBackpropInput) on wasm equal cpu', () => {
  const cases: { x: number[]; f: number[]; s: number | [number, number]; p: Pad }[] = [
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, p: 'same' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, p: 'valid' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 2, p: 'same' },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 2, p: 'valid' },
    { x: [1, 10, 7, 3], f: [5, 3, 3, 4], s: [2, 1], p: 'same' },
    { x: [3, 8, 8, 4], f: [1, 1, 4, 6], s: 1, p: 'valid' },
    { x: [3, 8, 8, 4], f: [2, 2, 4, 6], s: 2, p: 'valid' },
    { x: [1, 13, 13, 2], f: [3, 3, 2, 3], s: 3, p: 'same' },
    { x: [2, 5, 6, 8], f: [4, 4, 8, 2], s: 1, p: 'same' },
  ];
  for (const c of cases) {
    it(`x ${c.x} filter ${c.f} stride ${c.s} ${c.p}`, async () => {
      const err = await wasmVsCpu([c.x, c.f], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.p));
      expect(err).toBeLessThan(TOL);
    });
  }

  it('explicit asymmetric padding', async () => {
    const pad: tf.backend_util.ExplicitPadding = [
      [0, 0],
      [2, 0],
      [1, 3],
      [0, 0],
    ];
    const err = await wasmVsCpu([[2, 7, 6, 3], [3, 3, 3, 4]], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, [1, 2], pad));
    expect(err).toBeLessThan(TOL);
  });

  it('split into chunks of output rows (im2col for dW, col2im for a strided dx)', async () => {
    const prev = setIm2colChunk(4096);
    try {
      for (const s of [1, 2]) {
        const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, 'same');
        expect(await wasmVsCpu([[2, 17, 15, 12], [3, 3, 12, 5]], f)).toBeLessThan(TOL);
      }
    } finally {
      setIm2colChunk(prev);
    }
  });
});

describe('dilated Conv2D gradients (tfjs-core has none)', () => {
  const cases: { d: number | [number, number]; p: Pad; f: number[] }[] = [
    { d: 2, p: 'same', f: [3, 3, 4, 5] },
    { d: 2, p: 'valid', f: [3, 3, 4, 5] },
    { d: [2, 3], p: 'same', f: [3, 2, 4, 5] },
  ];
  for (const c of cases) {
    it(`dilation ${c.d} ${c.p}: wasm (dilation-aware kernels) equals cpu (composite)`, async () => {
      const err = await wasmVsCpu([[2, 11, 12, 4], c.f], (x, f) =>
        tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, c.p, 'NHWC', c.d),
      );
      expect(err).toBeLessThan(TOL);
    });
    it(`dilation ${c.d} ${c.p}: both gradients are adjoints of the forward conv on both backends`, async () => {
      for (const b of ['cpu', 'wasm'] as const) {
        await use(b);
        const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, c.p, 'NHWC', c.d);
        expect(adjointErr([[2, 11, 12, 4], c.f], f, 0)).toBeLessThan(1e-5);
        expect(adjointErr([[2, 11, 12, 4], c.f], f, 1)).toBeLessThan(1e-5);
      }
    });
  }
});

describe('conv2dTranspose (Conv2DBackpropInput forward) and its gradients', () => {
  const cases: { dy: number[]; f: number[]; out: number[]; s: number; p: Pad }[] = [
    { dy: [2, 5, 6, 4], f: [3, 3, 3, 4], out: [2, 10, 12, 3], s: 2, p: 'same' },
    { dy: [2, 4, 5, 4], f: [3, 3, 3, 4], out: [2, 9, 11, 3], s: 2, p: 'valid' },
    { dy: [1, 7, 7, 4], f: [3, 3, 2, 4], out: [1, 7, 7, 2], s: 1, p: 'same' },
    { dy: [1, 5, 5, 4], f: [3, 3, 2, 4], out: [1, 7, 7, 2], s: 1, p: 'valid' },
  ];
  for (const c of cases) {
    it(`dy ${c.dy} stride ${c.s} ${c.p}`, async () => {
      const err = await wasmVsCpu([c.dy, c.f], (dy, f) =>
        tf.conv2dTranspose(dy as tf.Tensor4D, f as tf.Tensor4D, c.out as [number, number, number, number], c.s, c.p),
      );
      expect(err).toBeLessThan(TOL);
    });
  }
});

describe('depthwise conv gradients (DepthwiseConv2dNativeBackpropFilter / Input)', () => {
  const cases: { x: number[]; f: number[]; s: number; p: Pad; d: number }[] = [
    { x: [2, 9, 11, 5], f: [3, 3, 5, 1], s: 1, p: 'same', d: 1 },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 1], s: 2, p: 'same', d: 1 },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 2], s: 1, p: 'valid', d: 1 },
    { x: [2, 9, 11, 5], f: [3, 3, 5, 2], s: 2, p: 'valid', d: 1 },
    { x: [1, 10, 9, 3], f: [5, 3, 3, 1], s: 1, p: 'same', d: 2 },
    { x: [1, 10, 9, 3], f: [3, 3, 3, 3], s: 1, p: 'valid', d: 2 },
  ];
  for (const c of cases) {
    it(`x ${c.x} filter ${c.f} stride ${c.s} ${c.p} dilation ${c.d}`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.s, c.p, 'NHWC', c.d);
      expect(await wasmVsCpu([c.x, c.f], f)).toBeLessThan(TOL);
      if (c.d > 1) {
        // The stock cpu kernels ignore dilations; our gradient routes around them. Check both against the forward op.
        for (const b of ['cpu', 'wasm'] as const) {
          await use(b);
          expect(adjointErr([c.x, c.f], f, 0)).toBeLessThan(1e-5);
          expect(adjointErr([c.x, c.f], f, 1)).toBeLessThan(1e-5);
        }
      }
    });
  }
});
