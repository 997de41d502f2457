import * as tf from '@tensorflow/tfjs-core';
import { createRng, withKernelTrace, type Rng } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randn } from '../testutil.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { msDeformAttn, type LevelShapes } from './ms-deform-attn.js';
import { gatherRows, gatherRowsKernels, scatterAddRows, scatterAddRowsKernels } from '../layers/rows.js';

// 'host' is @bevzoo/engine's BevzooMSDeformAttn kernel: the engine registers its portable version for cpu (and the
// native one for wasm, compared with it in the engine's native.test.ts).
beforeAll(async () => {
  const { initEngine } = await import('@bevzoo/engine');
  await initEngine({ backend: 'cpu', log: () => {} });
});

const LEVELS: LevelShapes = [[5, 7], [3, 4]];
const [B, Q, HEADS, DIMS, POINTS] = [2, 6, 2, 4, 3];
const KEYS = LEVELS.reduce((s, [h, w]) => s + h * w, 0);

/**
 * Sampling locations whose pixel coordinates (x·W − 0.5, y·H − 0.5) lie in a random cell from one outside the map
 * to its last, at a fraction in [0.2, 0.8] of the cell (away from the bilinear kinks: finite differences of a
 * piecewise-linear function are exact away from them); some samples thus have corners outside (zero padding).
 */
function locations(rng: Rng, kinkFree = true): tf.Tensor {
  const d = new Float32Array(B * Q * HEADS * LEVELS.length * POINTS * 2);
  for (let i = 0; i < d.length; i += 2) {
    const [H, W] = LEVELS[Math.floor(i / 2 / POINTS) % LEVELS.length]!;
    const frac = () => (kinkFree ? 0.2 + 0.6 * rng.uniform() : rng.uniform());
    d[i] = (rng.int(W + 1) - 1 + frac() + 0.5) / W;
    d[i + 1] = (rng.int(H + 1) - 1 + frac() + 0.5) / H;
  }
  return tf.tensor(d, [B, Q, HEADS, LEVELS.length, POINTS, 2]);
}

function inputs(seed: number, kinkFree = true) {
  const rng = createRng(seed);
  return {
    value: randn([B, KEYS, HEADS, DIMS], rng),
    loc: locations(rng, kinkFree),
    attn: tf.reshape(tf.softmax(randn([B, Q, HEADS, LEVELS.length * POINTS], rng)), [B, Q, HEADS, LEVELS.length, POINTS]),
    proj: randn([B, Q, HEADS * DIMS], rng),
  };
}

type Impl = 'host' | 'gather';
const loss = (impl: Impl, proj: tf.Tensor) => (v: tf.Tensor, l: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(msDeformAttn(v, LEVELS, l, a, { impl }), proj)) as tf.Scalar;

/** The loss in float64 from the op's float32 output (so that the difference quotient is not lost in a float32 sum). */
function loss64(impl: Impl, proj: Float32Array, v: tf.Tensor, l: tf.Tensor, a: tf.Tensor): number {
  return tf.tidy(() => {
    const o = msDeformAttn(v, LEVELS, l, a, { impl }).dataSync();
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i]! * proj[i]!;
    return s;
  });
}

describe('msDeformAttn', () => {
  it('under a kernel trace (an ONNX export) takes a form whose corners are kernels too, with the same sums', () => {
    for (const kinkFree of [true, false]) {
      const { value, loc, attn, proj } = inputs(11, kinkFree);
      // Locations far outside as well (the padding of cameras that see nothing samples at −10).
      const far = tf.concat([tf.slice(loc, [0, 0, 0, 0, 0, 0], [B, Q - 1, HEADS, LEVELS.length, POINTS, 2]), tf.fill([B, 1, HEADS, LEVELS.length, POINTS, 2], -10)], 1);
      const host = msDeformAttn(value, LEVELS, far, attn).dataSync();
      const traced = withKernelTrace({ detached: () => {} }, () => msDeformAttn(value, LEVELS, far, attn));
      const t = traced.dataSync();
      for (let i = 0; i < host.length; i++) expect(t[i]!).toBeCloseTo(host[i]!, 5);
      tf.dispose([value, loc, attn, proj, far, traced]);
    }
  });

  it('gathers and scatter-adds rows in kernels as the host loops do (−1: a zero row, dropped)', () => {
    const rng = createRng(3);
    const x = randn([5, 3], rng) as tf.Tensor2D;
    const index = Int32Array.from([4, -1, 0, 0, 2, -1]);
    const it = tf.tensor1d(index, 'int32');
    expect(Array.from(gatherRowsKernels(x, it).dataSync())).toEqual(Array.from(gatherRows(x, index).dataSync()));
    const y = randn([6, 3], rng) as tf.Tensor2D;
    const a = scatterAddRowsKernels(y, it, 5).dataSync(), b = scatterAddRows(y, index, 5).dataSync();
    for (let i = 0; i < b.length; i++) expect(a[i]!).toBeCloseTo(b[i]!, 6);
    tf.dispose([x, it, y]);
  });

  it('samples as the reference CUDA op: pixel centres, bilinear between them, zero padding outside', () => {
    // One level 2×3, one head, 1 dim; value = 10·row + col + 1.
    const value = tf.tensor([1, 2, 3, 11, 12, 13], [1, 6, 1, 1]);
    const at = (x: number, y: number, w = 1) =>
      msDeformAttn(value, [[2, 3]], tf.tensor([x, y], [1, 1, 1, 1, 1, 2]), tf.tensor([w], [1, 1, 1, 1, 1])).dataSync()[0]!;
    expect(at(0.5 / 3, 0.5 / 2)).toBeCloseTo(1, 6); // the centre of pixel (0, 0)
    expect(at(2.5 / 3, 1.5 / 2, 0.5)).toBeCloseTo(6.5, 6); // pixel (1, 2), weight 0.5
    expect(at(1 / 3, 1 / 2)).toBeCloseTo((1 + 2 + 11 + 12) / 4, 6); // between four centres
    expect(at(0, 0)).toBeCloseTo(1 / 4, 6); // the map's corner: three of four corners outside
    expect(at(1.2, 0.25)).toBe(0); // wholly outside
    expect(at(-0.1, 0.25)).toBeCloseTo(0.2 * 1, 5); // x = −0.8 px: only column 0, with weight 0.2
  });

  it('the engine kernel and the plain gather version agree, forward and every gradient, zero padding included', async () => {
    const { value, loc, attn, proj } = inputs(1, false);
    const out = (impl: Impl) => msDeformAttn(value, LEVELS, loc, attn, { impl });
    for (const impl of ['host', 'gather'] as const) {
      const kernels = (await tf.profile(() => tf.dispose(tf.grads(loss(impl, proj))([value, loc, attn])))).kernels.map((k) => k.name);
      expect(kernels.includes('BevzooMSDeformAttn') && kernels.includes('BevzooMSDeformAttnGrad'), impl).toBe(impl === 'host');
    }
    const [h, g] = [out('host'), out('gather')];
    expect(h.shape).toEqual([B, Q, HEADS * DIMS]);
    expect(Math.max(...tf.abs(tf.sub(h, g)).dataSync())).toBeLessThan(1e-5);
    const gh = tf.grads(loss('host', proj))([value, loc, attn]);
    const gg = tf.grads(loss('gather', proj))([value, loc, attn]);
    gh.forEach((t, i) => {
      const scale = Math.max(...tf.abs(gg[i]!).dataSync());
      expect(scale).toBeGreaterThan(0);
      expect(Math.max(...tf.abs(tf.sub(t, gg[i]!)).dataSync()) / scale, `gradient ${i}`).toBeLessThan(1e-5);
    });
  });

  for (const impl of ['host', 'gather'] as const)
    it(`${impl}: gradients for values, sampling locations and attention weights match finite differences (relative error ≤ 1e-3)`, () => {
      const { value, loc, attn, proj } = inputs(2);
      const p = proj.dataSync() as Float32Array;
      const analytic = tf.grads(loss(impl, proj))([value, loc, attn]).map((t) => t.dataSync());
      const rng = createRng(3);
      const xs = [value, loc, attn];
      const steps = [1e-2, 1e-3, 1e-2];
      xs.forEach((x, k) => {
        const base = x.dataSync() as Float32Array;
        let num2 = 0, err2 = 0;
        for (let s = 0; s < 40; s++) {
          const i = rng.int(base.length);
          const at = (delta: number) => {
            const d = base.slice();
            d[i] = base[i]! + delta;
            const t = tf.tensor(d, x.shape);
            const args = xs.map((y, j) => (j === k ? t : y)) as [tf.Tensor, tf.Tensor, tf.Tensor];
            const r = loss64(impl, p, ...args);
            t.dispose();
            return r;
          };
          const numeric = (at(steps[k]!) - at(-steps[k]!)) / (2 * steps[k]!);
          num2 += numeric ** 2;
          err2 += (numeric - analytic[k]![i]!) ** 2;
        }
        expect(num2, `input ${k} has gradient`).toBeGreaterThan(0);
        expect(Math.sqrt(err2 / num2), `input ${k}`).toBeLessThan(1e-3);
      });
    });

  for (const impl of ['host', 'gather'] as const)
    it(`${impl}: a training step leaks no tensor`, () => {
      const { value, loc, attn, proj } = inputs(4);
      const vars = [tf.variable(value), tf.variable(loc), tf.variable(attn)];
      const step = () => {
        const { value: l, grads } = tf.variableGrads(() => loss(impl, proj)(vars[0]!, vars[1]!, vars[2]!), vars);
        tf.tidy(() => vars.forEach((v) => v.assign(tf.sub(v, tf.mul(grads[v.name]!, 1e-3)))));
        tf.dispose([l, ...Object.values(grads)]);
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) step();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(vars);
    });

  it('names the shape that does not fit', () => {
    const { value, loc, attn } = inputs(5);
    expect(() => msDeformAttn(value, [[5, 7]], loc, attn)).toThrow(ShapeError);
    expect(() => msDeformAttn(value, [[5, 7], [3, 3]], loc, attn)).toThrow('msDeformAttn value: expected 44 keys (the levels 5×7, 3×3), found 47');
    expect(() => msDeformAttn(value, LEVELS, loc, tf.zeros([B, Q, HEADS, 2, 2]))).toThrow("msDeformAttn attention weights: expected [2,6,2,2,3] (the locations' shape without the last axis), found [2,6,2,2,2]");
    expect(() => msDeformAttn(value, LEVELS, tf.zeros([B, Q, 3, 2, POINTS, 2]), attn)).toThrow('msDeformAttn sampling locations: expected [batch 2, queries, heads 2, levels 2, points, 2], found [2,6,3,2,3,2]');
    expect(() => msDeformAttn(value, [[5, 7], [0, 4]], loc, attn)).toThrow(ConfigurationError);
    expect(() => msDeformAttn(value, [[5, 7], [0, 4]], loc, attn)).toThrow(/level 1 has shape \[0,4\]/);
  });
});
