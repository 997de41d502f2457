import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adjointErr, setup, use, wasmVsCpu } from './test_util.js';

const TOL = 1e-4;
type Pad = 'same' | 'valid';

beforeAll(setup);

describe('conv3d forward and backprops (Conv3D, Conv3DBackpropInputV2, Conv3DBackpropFilterV2) on wasm equal cpu', () => {
  const cases: { x: number[]; f: number[]; s: number | [number, number, number]; p: Pad }[] = [
    { x: [2, 5, 6, 7, 3], f: [3, 3, 3, 3, 4], s: 1, p: 'same' },
    { x: [2, 5, 6, 7, 3], f: [3, 3, 3, 3, 4], s: 1, p: 'valid' },
    { x: [2, 5, 6, 7, 3], f: [3, 3, 3, 3, 4], s: 2, p: 'same' },
    { x: [2, 5, 6, 7, 3], f: [3, 3, 3, 3, 4], s: 2, p: 'valid' },
    { x: [1, 6, 8, 8, 2], f: [3, 3, 3, 2, 5], s: [1, 2, 2], p: 'same' },
    { x: [1, 4, 9, 5, 2], f: [2, 1, 3, 2, 3], s: [2, 1, 2], p: 'same' },
    // Depth-1 volumes: a 2-D conv in disguise (the stock wasm filter gradient is wrong at stride 2 here).
    { x: [2, 1, 9, 11, 3], f: [1, 3, 3, 3, 4], s: [1, 2, 2], p: 'same' },
    { x: [2, 1, 9, 11, 3], f: [3, 3, 3, 3, 4], s: 2, p: 'same' },
    { x: [2, 1, 9, 11, 3], f: [1, 3, 3, 3, 4], s: 1, p: 'valid' },
  ];
  for (const c of cases) {
    it(`x ${c.x} filter ${c.f} stride ${c.s} ${c.p}`, async () => {
      const err = await wasmVsCpu([c.x, c.f], (x, f) => tf.conv3d(x as tf.Tensor5D, f as tf.Tensor5D, c.s, c.p));
      expect(err).toBeLessThan(TOL);
    });
  }

  it('gradients are adjoints of the forward conv3d at strides 1 and 2 on both backends', async () => {
    for (const b of ['cpu', 'wasm'] as const) {
      await use(b);
      for (const s of [1, 2]) {
        const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, s, 'same');
        expect(adjointErr([[2, 5, 6, 7, 3], [3, 3, 3, 3, 4]], f, 0)).toBeLessThan(1e-5);
        expect(adjointErr([[2, 5, 6, 7, 3], [3, 3, 3, 3, 4]], f, 1)).toBeLessThan(1e-5);
      }
    }
  });
});

describe('conv3dTranspose and its gradients (tfjs-core has no gradient for Conv3DBackpropInputV2)', () => {
  const cases: { dy: number[]; f: number[]; out: number[]; s: number; p: Pad }[] = [
    { dy: [1, 3, 3, 4, 4], f: [3, 3, 3, 2, 4], out: [1, 6, 6, 8, 2], s: 2, p: 'same' },
    { dy: [2, 3, 4, 4, 3], f: [3, 3, 3, 2, 3], out: [2, 3, 4, 4, 2], s: 1, p: 'same' },
    { dy: [1, 2, 3, 3, 3], f: [2, 2, 2, 2, 3], out: [1, 4, 6, 6, 2], s: 2, p: 'valid' },
  ];
  for (const c of cases) {
    it(`dy ${c.dy} stride ${c.s} ${c.p}`, async () => {
      const f = (dy: tf.Tensor, w: tf.Tensor) =>
        tf.conv3dTranspose(dy as tf.Tensor5D, w as tf.Tensor5D, c.out as [number, number, number, number, number], c.s, c.p);
      expect(await wasmVsCpu([c.dy, c.f], f)).toBeLessThan(TOL);
      await use('wasm');
      expect(adjointErr([c.dy, c.f], f, 0)).toBeLessThan(1e-5);
      expect(adjointErr([c.dy, c.f], f, 1)).toBeLessThan(1e-5);
    });
  }
});
