/** Helpers shared by this package's tests (not exported from the package index). */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Rng } from '@bevzoo/core';

/**
 * The test backend: cpu (default) plus tfjs's gradient functions, or the engine's wasm backend with its
 * training kernels when BEVZOO_NN_TEST_BACKEND=wasm. tfjs-core's CJS build registers no gradients; its
 * ESM `register_all_gradients` loads under vitest (which transforms it); @bevzoo/engine registers them in Node.
 */
export async function useCpu(): Promise<void> {
  if (process.env.BEVZOO_NN_TEST_BACKEND === 'wasm') {
    const { initEngine } = await import('@bevzoo/engine');
    await initEngine({ backend: 'wasm', log: () => {} });
    return;
  }
  await import('@tensorflow/tfjs-backend-cpu');
  if (!tf.getGradient('Sum')) await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  await tf.setBackend('cpu');
}

export function randn(shape: number[], rng: Rng, std = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal(0, std);
  return tf.tensor(d, shape);
}

export interface GradCheckResult {
  checked: number;
  maxAbsErr: number;
  worst: { variable: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Finite differences (central, step `eps`) against tf.variableGrads for `loss` with respect to `vars`,
 * at up to `samples` random elements of each variable. Throws when an element is off by more than
 * atol + rtol·|numeric|.
 */
export function gradCheck(
  loss: () => tf.Scalar,
  vars: tf.Variable[],
  opts: { eps?: number; atol?: number; rtol?: number; samples?: number; seed?: number } = {},
): GradCheckResult {
  const eps = opts.eps ?? 1e-2, atol = opts.atol ?? 5e-3, rtol = opts.rtol ?? 2e-2, samples = opts.samples ?? 8;
  const rng = createRng(opts.seed ?? 7);
  const { grads, value } = tf.variableGrads(loss, vars);
  value.dispose();
  const analytic = vars.map((v) => {
    const g = grads[v.name];
    if (!g) throw new Error(`gradCheck: no gradient for variable ${v.name}`);
    return g.dataSync().slice();
  });
  tf.dispose(grads);
  const evalLoss = () => tf.tidy(() => loss().dataSync()[0]!);
  let maxAbsErr = 0, checked = 0;
  let worst: GradCheckResult['worst'] = null;
  vars.forEach((v, vi) => {
    const base = v.dataSync().slice() as Float32Array;
    const idx = base.length <= samples ? [...base.keys()] : Array.from({ length: samples }, () => rng.int(base.length));
    for (const i of idx) {
      const set = (delta: number) => {
        const d = base.slice();
        d[i] = base[i]! + delta;
        const t = tf.tensor(d, v.shape, 'float32');
        v.assign(t);
        t.dispose();
      };
      const numericAt = (h: number) => {
        set(h);
        const lp = evalLoss();
        set(-h);
        const lm = evalLoss();
        set(0);
        return (lp - lm) / (2 * h);
      };
      const a = analytic[vi]![i]!;
      const ok = (n: number) => Math.abs(a - n) <= atol + rtol * Math.abs(n);
      let numeric = numericAt(eps);
      // A ReLU/max kink inside [x − eps, x + eps] spoils the difference quotient: retry with a smaller step.
      if (!ok(numeric)) numeric = numericAt(eps / 10);
      const err = Math.abs(a - numeric);
      checked++;
      if (err > maxAbsErr) {
        maxAbsErr = err;
        worst = { variable: vi, index: i, analytic: a, numeric };
      }
      if (!ok(numeric)) throw new Error(`gradCheck: variable ${vi} element ${i}: analytic ${a}, numeric ${numeric}`);
    }
  });
  return { checked, maxAbsErr, worst };
}

/** loss = Σ out·R with a fixed random R, so every output element matters. */
export function weightedSum(out: tf.Tensor, seed = 11): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.mul(out, randn(out.shape, createRng(seed)))) as tf.Scalar);
}

export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

type Out = tf.Tensor | tf.Tensor[];

/** Scalar loss over one or several outputs. */
export function lossOf(out: Out): tf.Scalar {
  return tf.tidy(() => {
    const outs = Array.isArray(out) ? out : [out];
    return tf.addN(outs.map((o, i) => weightedSum(o, 11 + i))) as tf.Scalar;
  });
}

/**
 * Run one training step (moving BatchNorm statistics), copy the state dict into a module built
 * differently (`make(seed)` with another seed), and return the largest output difference in eval mode.
 */
export function roundTripDiff<M extends { forward: unknown }>(
  make: (seed: number) => M & import('./module.js').Module,
  run: (m: M) => Out,
): number {
  const a = make(1), b = make(2);
  a.train();
  tf.dispose(run(a));
  a.eval();
  b.eval();
  b.loadStateDict(a.stateDict());
  const ya = run(a), yb = run(b);
  const la = Array.isArray(ya) ? ya : [ya], lb = Array.isArray(yb) ? yb : [yb];
  const diff = Math.max(...la.map((t, i) => maxAbsDiff(t, lb[i]!)));
  tf.dispose([...la, ...lb]);
  a.dispose();
  b.dispose();
  return diff;
}

/** numTensors growth over two forward+backward passes (training mode) of `run`. */
export function leakDelta(params: tf.Variable[], run: () => Out): number {
  const step = () => {
    const { value, grads } = tf.variableGrads(() => lossOf(run()), params);
    value.dispose();
    tf.dispose(grads);
  };
  step(); // first step may create lazily cached tensors
  const before = tf.memory().numTensors;
  step();
  return tf.memory().numTensors - before;
}
