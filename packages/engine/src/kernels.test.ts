import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adjointErr, evaluate, relErr, setup, use, wasmVsCpu } from './test_util.js';

const TOL = 1e-4;
const both = ['cpu', 'wasm'] as const;

beforeAll(setup);

describe('pooling gradients', () => {
  const cases: { k: number | [number, number]; s: number; p: 'same' | 'valid' }[] = [
    { k: 3, s: 2, p: 'same' },
    { k: 3, s: 1, p: 'same' },
    { k: 2, s: 2, p: 'valid' },
    { k: [3, 2], s: 2, p: 'valid' },
  ];
  for (const c of cases) {
    it(`maxPool ${c.k} stride ${c.s} ${c.p}: wasm equals cpu`, async () => {
      expect(await wasmVsCpu([[2, 9, 11, 5]], (x) => tf.maxPool(x as tf.Tensor4D, c.k, c.s, c.p))).toBeLessThan(TOL);
    });
    it(`avgPool ${c.k} stride ${c.s} ${c.p}: wasm equals cpu, and the gradient is the adjoint of the forward op`, async () => {
      const f = (x: tf.Tensor) => tf.avgPool(x as tf.Tensor4D, c.k, c.s, c.p);
      expect(await wasmVsCpu([[2, 9, 11, 5]], f)).toBeLessThan(TOL);
      for (const b of both) {
        await use(b);
        expect(adjointErr([[2, 9, 11, 5]], f)).toBeLessThan(1e-5);
      }
    });
  }
});

describe('resizeBilinear gradient (ResizeBilinearGrad)', () => {
  const sizes: { x: number[]; to: [number, number] }[] = [
    { x: [2, 5, 6, 3], to: [9, 13] },
    { x: [2, 9, 13, 3], to: [5, 6] },
    { x: [1, 4, 4, 2], to: [8, 8] },
  ];
  for (const { x, to } of sizes) {
    for (const [ac, hp] of [
      [false, false],
      [true, false],
      [false, true],
    ] as const) {
      it(`${x} → ${to} alignCorners ${ac} halfPixelCenters ${hp}: adjoint of the stock forward on both backends, equal across them`, async () => {
        const f = (t: tf.Tensor) => tf.image.resizeBilinear(t as tf.Tensor4D, to, ac, hp);
        for (const b of both) {
          await use(b);
          expect(adjointErr([x], f)).toBeLessThan(1e-5);
        }
        expect(await wasmVsCpu([x], f)).toBeLessThan(TOL);
      });
    }
  }
});

describe('gather / scatter and their gradients', () => {
  it('UnsortedSegmentSum equals cpu (negative ids dropped, empty segments zero)', async () => {
    const ids = [0, 3, 3, -1, 1, 0, 5, 3];
    const out: Float32Array[] = [];
    for (const b of both) {
      await use(b);
      out.push(
        tf.tidy(() => {
          const x = tf.tensor(Array.from({ length: 8 * 3 * 2 }, (_, i) => i * 0.5 - 3), [8, 3, 2]);
          return tf.unsortedSegmentSum(x, tf.tensor1d(ids, 'int32'), 6).dataSync() as Float32Array;
        }),
      );
    }
    expect(relErr(out[1], out[0])).toBeLessThan(1e-7);
  });

  it('gather (axis 0 and 1, repeated indices): values and gradient equal cpu', async () => {
    const f0 = (x: tf.Tensor) => tf.gather(x, tf.tensor1d([0, 2, 2, 5, 1, 2], 'int32'), 0);
    const f1 = (x: tf.Tensor) => tf.gather(x, tf.tensor2d([[1, 3], [3, 3]], [2, 2], 'int32'), 1);
    expect(await wasmVsCpu([[6, 4, 3]], f0)).toBeLessThan(TOL);
    expect(await wasmVsCpu([[6, 4, 3]], f1)).toBeLessThan(TOL);
  });

  it('gatherND and scatterND gradients (duplicates sum); adjoint of the forward ops', async () => {
    const idx = () => tf.tensor2d([[0, 1], [4, 2], [0, 1], [3, 0]], [4, 2], 'int32');
    const g = (x: tf.Tensor) => tf.gatherND(x, idx());
    const s = (u: tf.Tensor) => tf.scatterND(idx(), u, [5, 3, 2]);
    expect(await wasmVsCpu([[5, 3, 2]], g)).toBeLessThan(TOL);
    expect(await wasmVsCpu([[4, 2]], s)).toBeLessThan(TOL);
    for (const b of both) {
      await use(b);
      expect(adjointErr([[5, 3, 2]], g)).toBeLessThan(1e-6);
      expect(adjointErr([[4, 2]], s)).toBeLessThan(1e-6);
    }
  });
});

describe('matMul / einsum / transpose', () => {
  const mm: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
    { a: [37, 29], b: [29, 41], ta: false, tb: false },
    { a: [29, 37], b: [29, 41], ta: true, tb: false },
    { a: [37, 29], b: [41, 29], ta: false, tb: true },
    { a: [29, 37], b: [41, 29], ta: true, tb: true },
    { a: [3, 40, 50], b: [3, 50, 30], ta: false, tb: false },
    { a: [2, 3, 50, 40], b: [50, 30], ta: true, tb: false },
    { a: [4, 6, 5], b: [1, 7, 5], ta: false, tb: true },
  ];
  for (const c of mm) {
    it(`matMul ${c.a} × ${c.b} transposeA ${c.ta} transposeB ${c.tb}`, async () => {
      expect(await wasmVsCpu([c.a, c.b], (a, b) => tf.matMul(a, b, c.ta, c.tb))).toBeLessThan(TOL);
    });
  }

  // Reference: the same contraction in matMul / transpose / sum on cpu (the stock cpu Einsum mis-handles
  // an index summed within one operand, e.g. 'ij,j->').
  const einsums: [string, number[][], (...t: tf.Tensor[]) => tf.Tensor][] = [
    ['ij,jk->ik', [[5, 7], [7, 4]], (a, b) => tf.matMul(a, b)],
    ['bij,bjk->bik', [[3, 5, 7], [3, 7, 4]], (a, b) => tf.matMul(a, b)],
    ['bhqd,bhkd->bhqk', [[2, 3, 6, 8], [2, 3, 5, 8]], (a, b) => tf.matMul(a, b, false, true)],
    ['ij,kj->ki', [[5, 7], [4, 7]], (a, b) => tf.matMul(b, a, false, true)],
    ['ijk,k->ij', [[3, 4, 5], [5]], (a, b) => tf.sum(tf.mul(a, b), 2)],
    ['ij,j->', [[4, 6], [6]], (a, b) => tf.sum(tf.mul(a, b))],
    ['ijk,jl->ilk', [[3, 4, 5], [4, 2]], (a, b) => tf.transpose(tf.matMul(tf.transpose(a, [0, 2, 1]), b), [0, 2, 1])],
    ['i,j->ij', [[5], [3]], (a, b) => tf.mul(tf.reshape(a, [5, 1]), tf.reshape(b, [1, 3]))],
    ['ij->ji', [[4, 6]], (a) => tf.transpose(a)],
    ['ijk->ik', [[3, 4, 5]], (a) => tf.sum(a, 1)],
  ];
  for (const [eq, shapes, ref] of einsums) {
    it(`einsum '${eq}': values and gradients equal the same contraction in other ops on cpu`, async () => {
      expect(await wasmVsCpu(shapes, (...xs) => tf.einsum(eq, ...xs), 1, ref)).toBeLessThan(TOL);
    });
  }

  it('transpose of several permutations equals cpu', async () => {
    for (const perm of [
      [1, 0, 2],
      [0, 2, 1],
      [2, 1, 0],
      [3, 0, 2, 1],
      [0, 1, 3, 2],
    ]) {
      const shape = perm.length === 3 ? [7, 9, 5] : [3, 4, 5, 6];
      expect(await wasmVsCpu([shape], (x) => tf.transpose(x, perm))).toBeLessThan(1e-7);
    }
  });
});

describe('slicing, padding and the remaining ops of the models', () => {
  it('stridedSlice gradient (strides, negative strides, masks) is the adjoint of the forward op', async () => {
    const fs = [
      (x: tf.Tensor) => tf.stridedSlice(x, [1, 0, 0], [6, 7, 4], [2, 3, 1]),
      (x: tf.Tensor) => tf.stridedSlice(x, [5, 6, 3], [0, 0, 0], [-2, -1, -2]),
      (x: tf.Tensor) => tf.stridedSlice(x, [0, 2, 0], [0, 3, 0], [1, 1, 1], 5, 5, 0, 0, 2),
      (x: tf.Tensor) => tf.stridedSlice(x, [0, 1], [0, 5], [1, 2], 1, 1, 0, 1),
    ];
    for (const f of fs) {
      expect(await wasmVsCpu([[7, 8, 4]], f)).toBeLessThan(TOL);
      for (const b of both) {
        await use(b);
        expect(adjointErr([[7, 8, 4]], f)).toBeLessThan(1e-6);
      }
    }
  });

  it('mirrorPad gradient (reflect and symmetric) is the adjoint of the forward op', async () => {
    for (const mode of ['reflect', 'symmetric'] as const) {
      const f = (x: tf.Tensor) =>
        tf.mirrorPad(
          x,
          [
            [0, 0],
            [2, 1],
            [1, 3],
            [0, 0],
          ],
          mode,
        );
      expect(await wasmVsCpu([[2, 5, 6, 3]], f)).toBeLessThan(TOL);
      for (const b of both) {
        await use(b);
        expect(adjointErr([[2, 5, 6, 3]], f)).toBeLessThan(1e-6);
      }
    }
  });

  it('topk gradient sends dy to the selected elements', async () => {
    for (const b of both) {
      await use(b);
      const [g, expected] = tf.tidy(() => {
        const x = tf.tensor2d([
          [0.1, 0.9, 0.3, 0.7],
          [0.5, 0.2, 0.8, 0.4],
        ]);
        const w = tf.tensor2d([
          [1, 2],
          [3, 4],
        ]);
        const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.topk(t, 2).values, w)))(x);
        return [grad.arraySync(), [
          [0, 1, 0, 2],
          [4, 0, 3, 0],
        ]];
      });
      expect(g).toEqual(expected);
    }
  });

  it('pad, concat, slice, tile, cumsum, clipByValue, where: values and gradients equal cpu', async () => {
    const f = (a: tf.Tensor, b: tf.Tensor) => {
      const p = tf.pad(a, [
        [1, 0],
        [0, 2],
      ]);
      const c = tf.concat([p, tf.tile(b, [1, 2])], 0);
      const s = tf.slice(c, [1, 1], [5, 4]);
      const cs = tf.cumsum(s, 1, true, true);
      const cl = tf.clipByValue(s, -0.3, 0.4);
      return tf.add(tf.where(tf.greater(s, 0), cs, cl), tf.cumsum(s, 0));
    };
    expect(await wasmVsCpu([[4, 4], [3, 3]], f)).toBeLessThan(TOL);
  });

  it('cumsum gradient along every axis (exclusive / reverse) is the adjoint of the forward op', async () => {
    for (const axis of [0, 1, 2]) {
      for (const [ex, rev] of [
        [false, false],
        [true, true],
      ] as const) {
        const f = (x: tf.Tensor) => tf.cumsum(x, axis, ex, rev);
        expect(await wasmVsCpu([[4, 5, 3]], f)).toBeLessThan(TOL);
        for (const b of both) {
          await use(b);
          expect(adjointErr([[4, 5, 3]], f)).toBeLessThan(1e-6);
        }
      }
    }
  });

  it('batchNorm gradients (rank 2, 4, 5; per-channel and full-shape parameters) equal those of the same formula in elementwise ops', async () => {
    const cases: { x: number[]; p: number[] }[] = [
      { x: [6, 4], p: [4] },
      { x: [2, 3, 5, 4], p: [4] },
      { x: [2, 3, 2, 3, 4], p: [4] },
      { x: [3, 5], p: [3, 5] },
    ];
    for (const c of cases) {
      const shapes = [c.x, c.p, c.p, c.p, c.p];
      const fused = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
        tf.batchNorm(x, m, tf.add(tf.abs(v), 0.5), o, s, 1e-3);
      const composite = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
        tf.add(tf.mul(tf.mul(tf.sub(x, m), tf.rsqrt(tf.add(tf.add(tf.abs(v), 0.5), 1e-3))), s), o);
      for (const b of both) {
        const r1 = await evaluate(b, shapes, fused);
        const r2 = await evaluate(b, shapes, composite);
        expect(relErr(r1.value, r2.value)).toBeLessThan(1e-5);
        r1.grads.forEach((g, i) => expect(relErr(g, r2.grads[i])).toBeLessThan(1e-5));
      }
    }
  });

  it('activations and math ops: values and gradients equal cpu', async () => {
    const f = (x: tf.Tensor) => {
      const pos = tf.add(tf.abs(x), 0.5);
      return tf.addN([
        tf.sigmoid(x),
        tf.softmax(x),
        tf.logSoftmax(x),
        tf.softplus(x),
        tf.relu(x),
        tf.elu(x),
        tf.exp(x),
        tf.log(pos),
        tf.sqrt(pos),
        tf.pow(pos, 2.5),
        tf.tile(tf.reshape(tf.add(tf.max(x, 1), tf.min(x, 1)), [4, 1]), [1, 6]),
        tf.tile(tf.reshape(tf.add(tf.sum(x, 1), tf.mean(x, 1)), [4, 1]), [1, 6]),
      ]);
    };
    expect(await wasmVsCpu([[4, 6]], f)).toBeLessThan(TOL);
    await use('wasm');
    const am = tf.tidy(() => tf.argMax(tf.tensor2d([[1, 5, 2], [7, 0, 3]]), 1).arraySync());
    expect(am).toEqual([1, 0]);
  });
});

describe('elementwise ops past 6 dimensions', () => {
  // XNNPACK's n-d operators behind the stock wasm kernels take at most 6 axes; past that they left the output
  // unwritten (BEVFormer's 7-axis sampling offsets). Broadcast and same-shape, values and gradients.
  it('add, sub, mul, div, squaredDifference and prelu of rank 7 equal cpu', async () => {
    const a = [3, 5, 4, 2, 2, 4, 2], b = [1, 1, 1, 2, 1, 1, 2];
    const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => {
      const pos = tf.add(tf.abs(y), 0.5);
      // (tfjs-core's squaredDifference and prelu gradients do not reduce broadcast axes: those two take same-shape inputs.)
      return tf.addN([tf.add(x, y), tf.sub(y, x), tf.mul(x, y), tf.div(x, pos), tf.squaredDifference(x, z), tf.mul(x, z), tf.prelu(x, z)]);
    };
    expect(await wasmVsCpu([a, b, a], f)).toBeLessThan(TOL);
  });

  it('a broadcast that stays above 6 axes after merging is refused with the shapes, not computed wrong', async () => {
    await use('wasm');
    const x = tf.zeros([2, 1, 2, 1, 2, 1, 2, 1]), y = tf.zeros([1, 2, 1, 2, 1, 2, 1, 2]);
    expect(() => tf.add(x, y)).toThrow(/Add: \[2,1,2,1,2,1,2,1\] and \[1,2,1,2,1,2,1,2\] broadcast in 8 groups of axes; the wasm kernel takes at most 6/);
    tf.dispose([x, y]);
  });
});

describe('values on one backend, read, then the other', () => {
  it('a conv result computed on wasm feeds a cpu computation', async () => {
    const r = await evaluate('wasm', [[1, 6, 6, 2], [3, 3, 2, 3]], (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'));
    await use('cpu');
    const s = tf.tidy(() => tf.sum(tf.tensor(r.value, r.shape)).dataSync()[0]);
    const direct = r.value.reduce((a, v) => a + v, 0);
    expect(Math.abs(s - direct)).toBeLessThan(1e-4 * Math.max(1, Math.abs(direct)));
  });
});
