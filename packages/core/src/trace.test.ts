import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { activeKernelTrace, kernelCounts, recordKernels, traceInput, type LeafOrigin } from './trace.js';

let w: tf.Variable;
let stat: tf.Variable;
let x: tf.Tensor;

beforeAll(async () => {
  await tf.setBackend('cpu');
  w = tf.variable(tf.tensor2d([1, -2, 0.5, 3, 0.25, -1], [3, 2]), true, 'w');
  stat = tf.variable(tf.tensor1d([0.5, 2]), false, 'stat');
  x = tf.tensor2d([1, 2, 3, -1, 0, 4], [2, 3]);
});

afterAll(() => tf.dispose([w, stat, x]));

/** x·w (a batch tensor), plus a host-made input reported by name, plus a host copy (detached), scaled by a buffer. */
function pass(): Record<string, tf.Tensor> {
  const y = tf.matMul(x, w);
  const bias = traceInput('host.bias', () => tf.tensor1d([10, 20]), { dynamicAxes: [0] });
  const copy = tf.tensor(y.dataSync(), y.shape);
  activeKernelTrace()?.detached(y, copy);
  const z = tf.mul(tf.add(tf.reshape(copy, [4]), tf.tile(bias, [2])), tf.tile(stat, [2]));
  tf.sum(z); // feeds no result: pruned
  return { z, y };
}

const classify = ({ variable, input }: LeafOrigin) => ({ kind: variable ? (variable.trainable ? 'param' : 'buffer') : input ? `input:${input.name}:${input.dynamicAxes ?? ''}` : 'const' });

describe('recordKernels', () => {
  it('records the kernels the results depend on, classifies the leaves, and restores the kernels without leaking', () => {
    const kernels = tf.getKernelsForBackend('cpu').map((k) => k.kernelFunc);
    const before = tf.memory().numTensors;
    const rec = recordKernels(pass, { variables: [['w', w], ['stat', stat]], batchTensors: [['batch.x', x]], key: (n) => String(n), leaf: classify, detachKernel: 'Detach' });
    expect(tf.getKernelsForBackend('cpu').map((k) => k.kernelFunc)).toEqual(kernels);
    expect(tf.memory().numTensors).toBe(before);
    expect(activeKernelTrace()).toBeNull();
    expect(rec.backend).toBe('cpu');
    // Sum feeds no result: recorded, then pruned.
    expect(rec.calls.some((c) => c.kernel === 'Sum')).toBe(false);
    expect(rec.recordedCalls).toBeGreaterThan(rec.calls.length);
    const counts = Object.fromEntries(kernelCounts(rec));
    expect(counts).toMatchObject({ BatchMatMul: 1, Detach: 1, Add: 1, Multiply: 1 });
    const byKind = Object.fromEntries([...rec.leaves.values()].map((l) => [l.kind, l]));
    expect(Object.keys(byKind).sort()).toEqual(['buffer', 'input:batch.x:', 'input:host.bias:0', 'param']);
    expect(Array.from(byKind.param!.values)).toEqual(Array.from(w.dataSync()));
    expect(byKind.buffer!.values).toBeInstanceOf(Float32Array);
    // Every call reads leaves or earlier calls' outputs; the results are named with their values.
    const known = new Set(rec.leaves.keys());
    for (const c of rec.calls) {
      for (const [, r] of c.inputs) expect(known.has(r.key), `${c.kernel} reads ${r.key}`).toBe(true);
      for (const o of c.outputs) known.add(o.key);
    }
    expect(rec.outputs.map(([n]) => n)).toEqual(['z', 'y']);
    const y = tf.tidy(() => tf.matMul(x, w).dataSync());
    expect(Array.from(rec.values.get('y')!)).toEqual(Array.from(y));
    expect(Array.from(rec.values.get('z')!)).toEqual(Array.from(y).map((v, i) => (v + [10, 20][i % 2]!) * [0.5, 2][i % 2]!));
  });

  it('keys tensors as told: by data alone a reshape is its input, by data and shape it is another value', () => {
    const opts = { variables: [] as [string, tf.Variable][], leaf: () => ({}), detachKernel: 'Detach' };
    const fn = () => ({ r: tf.reshape(tf.relu(x), [3, 2]) });
    const byData = recordKernels(fn, { ...opts, key: (n) => String(n) });
    const reshape = byData.calls.find((c) => c.kernel === 'Reshape')!;
    expect(reshape.outputs[0]!.key).toBe(reshape.inputs[0]![1].key);
    const byShape = recordKernels(fn, { ...opts, key: (n, t) => `${n}:${t.shape.join('x')}` });
    const r2 = byShape.calls.find((c) => c.kernel === 'Reshape')!;
    expect(r2.outputs[0]!.key).not.toBe(r2.inputs[0]![1].key);
    expect(r2.outputs[0]!.key.split(':')[0]).toBe(r2.inputs[0]![1].key.split(':')[0]);
  });

  it('restores the kernels and the trace when the pass throws, and refuses string tensors', () => {
    const kernels = tf.getKernelsForBackend('cpu').map((k) => k.kernelFunc);
    const opts = { variables: [] as [string, tf.Variable][], key: (n: number) => String(n), leaf: () => ({}), detachKernel: 'Detach' };
    expect(() => recordKernels(() => { throw new Error('boom'); }, opts)).toThrow('boom');
    expect(tf.getKernelsForBackend('cpu').map((k) => k.kernelFunc)).toEqual(kernels);
    expect(activeKernelTrace()).toBeNull();
    expect(() => recordKernels(() => ({ s: tf.tensor(['a', 'b']) }), opts)).toThrow(/kernel trace: expected float32, int32 or bool tensors, found a string input of shape \[2\]/);
  });
});
