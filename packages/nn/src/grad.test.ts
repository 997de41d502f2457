import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { withKernelTrace } from '@bevzoo/core';
import { detach, frozen, noGrad } from './grad.js';
import { useCpu } from './testutil.js';

beforeAll(useCpu);

/** Tensors left by `fn` after it disposed its result: inside a tape, the copies tfjs keeps for the gradients. */
function leftBehind(fn: () => void): number {
  const before = tf.memory().numTensors;
  fn();
  return tf.memory().numTensors - before;
}

describe('noGrad', () => {
  it('records nothing on the tape: the gradient flows only through the path outside it', () => {
    const v = tf.variable(tf.tensor1d([1, -2, 3]));
    const { value, grads } = tf.variableGrads(() => {
      const target = noGrad(() => tf.mul(v, 2)); // a target: no gradient through it
      return tf.sum(tf.mul(v, target)) as tf.Scalar;
    }, [v]);
    // d/dv sum(v · 2v) = 4v with the gradient through both factors; 2v through the outside one only.
    expect(Array.from(grads[v.name]!.dataSync())).toEqual([2, -4, 6]);
    expect(value.dataSync()[0]).toBe(2 * (1 + 4 + 9));
    tf.dispose([value, grads[v.name]!]);
    v.dispose();
  });

  it('keeps no saved tensors for the ops inside it, and leaks none', () => {
    const v = tf.variable(tf.randomNormal([64]));
    const deep = () => {
      let x: tf.Tensor = v;
      for (let i = 0; i < 20; i++) x = tf.relu(tf.mul(x, 1.1));
      return x;
    };
    // Inside a tape, the 20 ops record their saved tensors; under noGrad they do not.
    let taped = 0, paused = 0;
    const { value, grads } = tf.variableGrads(() => {
      taped = leftBehind(() => tf.tidy(deep).dispose());
      paused = leftBehind(() => noGrad(deep).dispose());
      return tf.sum(v) as tf.Scalar;
    }, [v]);
    expect(taped).toBeGreaterThan(0);
    expect(paused).toBe(0);
    tf.dispose([value, grads[v.name]!]);
    const before = tf.memory().numTensors;
    noGrad(deep).dispose();
    expect(tf.memory().numTensors).toBe(before);
    v.dispose();
  });

  it('restores the tape when its function throws', () => {
    const v = tf.variable(tf.scalar(3));
    expect(() => noGrad(() => {
      throw new Error('boom');
    })).toThrow('boom');
    const { value, grads } = tf.variableGrads(() => tf.mul(v, v) as tf.Scalar, [v]);
    expect(grads[v.name]!.dataSync()[0]).toBe(6);
    tf.dispose([value, grads[v.name]!]);
    v.dispose();
  });
});

describe('frozen and detach', () => {
  it('frozen: the values of fn(), a host copy reported under a kernel trace', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const reported: [number[], number[]][] = [];
    const y = withKernelTrace({ detached: (i, c) => reported.push([Array.from(i.dataSync()), Array.from(c.dataSync())]) }, () => frozen(() => tf.mul(x, 2)));
    expect(Array.from(y.dataSync())).toEqual([2, 4, 6]);
    expect(reported).toEqual([[[2, 4, 6], [2, 4, 6]]]);
    const z = frozen(() => tf.mul(x, 3));
    expect(Array.from(z.dataSync())).toEqual([3, 6, 9]);
    tf.dispose([x, y, z]);
  });

  it('detach: the same values and a zero gradient', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const [g] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(detach(a), a)))([x]);
    expect(Array.from(g!.dataSync())).toEqual([1, 2, 3]);
    tf.dispose([x, g!]);
  });
});
