import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from './index.js';

/** Shared helpers of this package's tests: run the same computation on cpu and wasm, compare. */

export type Backend = 'cpu' | 'wasm';

let ready: Promise<void> | null = null;

/** Registers everything once and makes sure both backends are initialised. */
export function setup(): Promise<void> {
  ready ??= (async () => {
    await initEngine({ backend: 'cpu', log: () => {} });
    // The wasm kernels (native.test.ts compares the native ones with them).
    await initEngine({ backend: 'wasm', kernels: 'wasm', log: () => {} });
  })();
  return ready;
}

export async function use(backend: Backend): Promise<void> {
  await tf.setBackend(backend);
  await tf.ready();
}

/** Deterministic values in [-1, 1). */
export function rnd(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/** max |a − b| / max |b| (0 when both are all zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  if (Number.isNaN(num)) return Infinity;
  return den === 0 ? num : num / den;
}

export interface Result {
  value: Float32Array;
  shape: number[];
  grads: Float32Array[];
}

/**
 * Runs f on `backend` with float inputs of the given shapes (deterministic values) and returns f's
 * value and the gradients of Σ f(x)·r (r fixed random weights) with respect to every input.
 */
export async function evaluate(
  backend: Backend,
  shapes: number[][],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  seed = 1,
): Promise<Result> {
  await use(backend);
  return tf.tidy(() => {
    const xs = shapes.map((s, i) => tf.tensor(rnd(s, seed + i), s));
    const y = f(...xs);
    const r = tf.tensor(rnd(y.shape, seed + 100), y.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), r)))(xs);
    return {
      value: y.dataSync() as Float32Array,
      shape: y.shape,
      grads: grads.map((g) => g.dataSync() as Float32Array),
    };
  });
}

/**
 * Largest relative error between wasm and cpu over f's value and all its input gradients; `ref`, when
 * given, is what cpu evaluates instead of f (an equivalent formula in other ops).
 */
export async function wasmVsCpu(
  shapes: number[][],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  seed = 1,
  ref: (...xs: tf.Tensor[]) => tf.Tensor = f,
): Promise<number> {
  const cpu = await evaluate('cpu', shapes, ref, seed);
  const wasm = await evaluate('wasm', shapes, f, seed);
  if (cpu.shape.join() !== wasm.shape.join()) return Infinity;
  let err = relErr(wasm.value, cpu.value);
  cpu.grads.forEach((g, i) => (err = Math.max(err, relErr(wasm.grads[i], g))));
  return err;
}

/**
 * Adjoint check of an op linear in its input k: ⟨f(x), y⟩ = ⟨x_k, ∂/∂x_k ⟨f(x), y⟩⟩. Checks the
 * registered gradient against the forward op on the active backend. Returns the relative mismatch.
 */
export function adjointErr(shapes: number[][], f: (...xs: tf.Tensor[]) => tf.Tensor, k = 0, seed = 3): number {
  return tf.tidy(() => {
    const xs = shapes.map((s, i) => tf.tensor(rnd(s, seed + i), s));
    const y0 = f(...xs);
    const y = tf.tensor(rnd(y0.shape, seed + 50), y0.shape);
    const lhs = tf.sum(tf.mul(y0, y)).dataSync()[0];
    const g = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), y)))(xs)[k];
    const rhs = tf.sum(tf.mul(g, xs[k])).dataSync()[0];
    const scale = Math.max(tf.sum(tf.abs(tf.mul(y0, y))).dataSync()[0], 1e-12);
    return Math.abs(lhs - rhs) / scale;
  });
}
