import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from './adamw.js';
import { clipGradNorm, gradNorm } from './clip.js';
import { Ema } from './ema.js';
import { lrAt } from './schedule.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol);
};

/** torch.optim.AdamW's update written out in float64, for comparison. */
function torchAdamW(p: number[], grads: number[][], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const m = p.map(() => 0), v = p.map(() => 0);
  const q = [...p];
  grads.forEach((g, t0) => {
    const t = t0 + 1;
    for (let i = 0; i < q.length; i++) {
      q[i] = q[i]! * (1 - lr * wd);
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
      q[i] = q[i]! - (lr / (1 - b1 ** t)) * (m[i]! / denom);
    }
  });
  return q;
}

describe('AdamW', () => {
  it('matches hand-computed PyTorch values', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([['w', p]], { lr: 0.1, weightDecay: 0.01 });
    const g1 = tf.tensor1d([0.5, -1]);
    opt.step({ w: g1 });
    // Step 1: m̂ = g, v̂ = g², so p ← p·(1 − 0.001) − 0.1·g/(|g| + 1e-8) = (0.999 − 0.1, −1.998 + 0.1).
    close(p.dataSync(), [0.899, -1.898]);
    const g2 = tf.tensor1d([0.1, 0.3]);
    opt.step({ w: g2 }, 0.05);
    // Step 2 at lr 0.05, by the formula (m = (0.095·0.5 … ) etc.): compare with the float64 reference.
    const ref1 = torchAdamW([1, -2], [[0.5, -1]], 0.1, 0.01);
    const m = [0.9 * 0.05 + 0.1 * 0.1, 0.9 * -0.1 + 0.1 * 0.3];
    const v = [0.999 * 0.001 * 0.25 + 0.001 * 0.01, 0.999 * 0.001 * 1 + 0.001 * 0.09];
    const bc1 = 1 - 0.81, bc2 = 1 - 0.999 ** 2;
    const expected = ref1.map((q, i) => q * (1 - 0.05 * 0.01) - (0.05 / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + 1e-8)));
    close(p.dataSync(), expected);
    expect(opt.stepCount).toBe(2);
    tf.dispose([p, g1, g2]);
    opt.dispose();
  });

  it('follows the reference over many steps; no decay for rank-1 params with bias-and-norm; skips params without grads', () => {
    const w = tf.variable(tf.tensor2d([[0.3, -0.7], [1.2, 0.05]]));
    const b = tf.variable(tf.tensor1d([0.5, -0.5]));
    const frozen = tf.variable(tf.tensor1d([2, 3]));
    const opt = new AdamW([['w', w], ['b', b], ['f', frozen]], { lr: 0.01, weightDecay: 0.1, noDecay: 'bias-and-norm', betas: [0.8, 0.99], eps: 1e-6 });
    const gw: number[][] = [], gb: number[][] = [];
    for (let t = 0; t < 6; t++) {
      const a = [Math.sin(t + 1), Math.cos(2 * t), 0.1 * t - 0.2, -0.5];
      const c = [0.2 * t, -Math.sin(t)];
      gw.push(a);
      gb.push(c);
      const ga = tf.tensor2d(a, [2, 2]), gc = tf.tensor1d(c);
      opt.step(new Map<string, tf.Tensor>([['w', ga], ['b', gc]]));
      tf.dispose([ga, gc]);
    }
    close(w.dataSync(), torchAdamW([0.3, -0.7, 1.2, 0.05], gw, 0.01, 0.1, 0.8, 0.99, 1e-6), 2e-6);
    close(b.dataSync(), torchAdamW([0.5, -0.5], gb, 0.01, 0, 0.8, 0.99, 1e-6), 2e-6);
    close(frozen.dataSync(), [2, 3], 0);
    expect(opt.stateInfo().paramSteps).toEqual({ f: 0 });
    tf.dispose([w, b, frozen]);
    opt.dispose();
  });
});

describe('schedules', () => {
  it('cosine with linear warm-up (mmcv semantics)', () => {
    const s = { type: 'cosine' as const, warmup: { steps: 10 } };
    expect(lrAt(s, 1e-3, 0, 100)).toBeCloseTo(1e-3 / 3, 12);
    // step 5: cosine 0.5e-3·(1 + cos(0.05π)) = 9.938442e-4, warm-up factor 1 − 0.5·(2/3) = 2/3.
    expect(lrAt(s, 1e-3, 5, 100)).toBeCloseTo(9.938441702975689e-4 * (2 / 3), 12);
    expect(lrAt(s, 1e-3, 10, 100)).toBeCloseTo(0.5e-3 * (1 + Math.cos(0.1 * Math.PI)), 12);
    expect(lrAt(s, 1e-3, 50, 100)).toBeCloseTo(0.5e-3, 12);
    expect(lrAt(s, 1e-3, 100, 100)).toBeCloseTo(0, 12);
    expect(lrAt({ type: 'cosine', minLrRatio: 1e-3 }, 2e-4, 100, 100)).toBeCloseTo(2e-7, 15);
  });

  it('step, constant, poly and other warm-ups', () => {
    const s = { type: 'step' as const, milestones: [3, 6], gamma: 0.1 };
    expect([0, 2, 3, 5, 6, 9].map((t) => lrAt(s, 1, t, 10))).toEqual([1, 1, 0.1, 0.1, 0.1 ** 2, 0.1 ** 2]);
    expect(lrAt({ type: 'constant', warmup: { type: 'constant', steps: 5, ratio: 0.1 } }, 2, 4, 10)).toBeCloseTo(0.2, 12);
    expect(lrAt({ type: 'constant', warmup: { type: 'constant', steps: 5, ratio: 0.1 } }, 2, 5, 10)).toBe(2);
    expect(lrAt({ type: 'constant', warmup: { type: 'exp', steps: 4, ratio: 0.01 } }, 1, 2, 10)).toBeCloseTo(0.1, 12);
    expect(lrAt({ type: 'poly', power: 2 }, 1, 5, 10)).toBeCloseTo(0.25, 12);
  });
});

describe('clipGradNorm', () => {
  it('scales by maxNorm / (total + 1e-6) when over, leaves alone when under', () => {
    const grads = new Map([['a', tf.tensor1d([3, 4])], ['b', tf.tensor1d([12])]]);
    const r = clipGradNorm(grads, 6.5);
    expect(r.totalNorm).toBeCloseTo(13, 5);
    const c = 6.5 / (13 + 1e-6);
    close(r.grads.get('a')!.dataSync(), [3 * c, 4 * c]);
    close(r.grads.get('b')!.dataSync(), [12 * c]);
    const r2 = clipGradNorm(grads, 20);
    close(r2.grads.get('a')!.dataSync(), [3, 4], 0);
    expect(gradNorm([...grads.values()], Infinity)).toBe(12);
    expect(gradNorm([...grads.values()], 1)).toBeCloseTo(19, 5);
    tf.dispose([...grads.values(), ...r.grads.values(), ...r2.grads.values()]);
  });
});

describe('Ema', () => {
  it('averages, warms up the decay and swaps', () => {
    const p = tf.variable(tf.tensor1d([0]));
    const ema = new Ema([['p', p]], { decay: 0.9 });
    p.assign(tf.tensor1d([10]));
    ema.update();
    close(ema.stateTensors().p!.dataSync(), [1]);
    ema.update();
    close(ema.stateTensors().p!.dataSync(), [1.9], 1e-6);
    ema.swap();
    close(p.dataSync(), [1.9], 1e-6);
    close(ema.stateTensors().p!.dataSync(), [10]);
    ema.swap();
    close(p.dataSync(), [10]);
    const warm = new Ema([['p', p]], { decay: 0.99, warmup: true });
    expect(warm.currentDecay()).toBeCloseTo(0.1, 12);
    p.assign(tf.tensor1d([20]));
    warm.update(); // 0.1·10 + 0.9·20
    close(warm.stateTensors().p!.dataSync(), [19], 1e-5);
    expect(warm.currentDecay()).toBeCloseTo(2 / 11, 12);
    ema.dispose();
    warm.dispose();
    p.dispose();
  });
});
