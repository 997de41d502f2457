import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { resize2d, resizeAxis } from './interpolate.js';
import { gradCheck, lossOf, randn, useCpu } from '../testutil.js';

beforeAll(useCpu);

describe('interpolate', () => {
  it('follows PyTorch index rules (values from torch.nn.functional.interpolate)', () => {
    const x = tf.tensor1d([0, 1, 3]);
    // F.interpolate(x, size=6, mode='linear', align_corners=False) → [0, 0.25, 0.75, 1.5, 2.5, 3]
    expect(Array.from(resizeAxis(x, 0, 6).dataSync())).toEqual([0, 0.25, 0.75, 1.5, 2.5, 3]);
    // align_corners=True → [0, 0.4, 0.8, 1.4, 2.2, 3]
    Array.from(resizeAxis(x, 0, 6, 'linear', true).dataSync()).forEach((v, i) => expect(v).toBeCloseTo([0, 0.4, 0.8, 1.4, 2.2, 3][i]!, 5));
    // nearest → [0, 0, 1, 1, 3, 3]; downsampling linear 3 → 2 (align_corners=False) → [0.25, 2.5]
    expect(Array.from(resizeAxis(x, 0, 6, 'nearest').dataSync())).toEqual([0, 0, 1, 1, 3, 3]);
    expect(Array.from(resizeAxis(x, 0, 2).dataSync())).toEqual([0.25, 2.5]);
    tf.dispose(x);
  });

  it('resize2d on non-square maps has correct gradients', () => {
    const rng = createRng(2);
    const v = tf.variable(randn([1, 2, 3, 2], rng));
    const y = resize2d(v, [4, 7], 'linear', true);
    expect(y.shape).toEqual([1, 4, 7, 2]);
    gradCheck(() => lossOf(resize2d(v, [4, 7], 'linear', true)), [v]);
    gradCheck(() => lossOf(resize2d(v, [5, 5], 'linear', false)), [v]);
    tf.dispose([v, y]);
  });
});
