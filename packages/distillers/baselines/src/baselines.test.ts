import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bevGrid, createRng, get, resolveConfig, type FeatureMap, type ForwardOutput } from '@bevzoo/core';
import { featureImitationPlugin, logitImitationPlugin, type FeatureImitationConfig, type LogitImitationConfig } from './index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const range: [number, number, number, number] = [0, 0, 4, 4];
const g4 = bevGrid(range, 4), g2 = bevGrid(range, 2);
const fiConfig = (o: Record<string, unknown> = {}) => resolveConfig<FeatureImitationConfig>(featureImitationPlugin, { overrides: o }).config;
const liConfig = (o: Record<string, unknown> = {}) => resolveConfig<LogitImitationConfig>(logitImitationPlugin, { overrides: o }).config;
const out = (features: Record<string, tf.Tensor>): ForwardOutput => ({ features, outputs: {} });
const val = (t: tf.Tensor) => t.dataSync()[0]!;

describe('feature-imitation', () => {
  const teacher: FeatureMap = { pre_head: { kind: 'bev', channels: 2, grid: g4 } };
  const student: FeatureMap = { pre_head: { kind: 'bev', channels: 3, grid: g4 } };

  function identityLike(config = fiConfig()) {
    // 3 → 2 channels: keep channels 0 and 1, drop 2; bias 0.
    const d = featureImitationPlugin.create(config, { rng: createRng(0), teacher, student });
    const w = tf.tensor4d([1, 0, 0, 1, 0, 0], [1, 1, 3, 2]), b = tf.zeros([2]);
    d.loadStateDict({ 'adaptation_layers.0.weight': w, 'adaptation_layers.0.bias': b });
    tf.dispose([w, b]);
    return d;
  }

  it('is weight · mean over every element of (φ(F_S) − F_T)², or |·| with l1', () => {
    // F_T = 0 except cell 0 = [3, 0]; F_S = [1, 2, 7] everywhere → φ = [1, 2]: cell 0 squares (1−3)² + 2² = 8, others 1 + 4 = 5.
    const ftData = new Float32Array(32);
    ftData[0] = 3;
    const ft = tf.tensor4d(ftData, [1, 4, 4, 2]);
    const fs = tf.tile(tf.tensor4d([1, 2, 7], [1, 1, 1, 3]), [1, 4, 4, 1]);
    const l = identityLike().loss({ teacher: out({ pre_head: ft }), student: out({ pre_head: fs }), batch: null });
    expect(val(l.parts['distill.feat']!)).toBeCloseTo((10 * (8 + 15 * 5)) / 32, 5);
    expect(val(l.total)).toBeCloseTo(val(l.parts['distill.feat']!), 6);
    const l1 = identityLike(fiConfig({ criterion: 'l1', weight: 2 })).loss({ teacher: out({ pre_head: ft }), student: out({ pre_head: fs }), batch: null });
    // |1−3| + 2 = 4 at cell 0, 1 + 2 = 3 elsewhere.
    expect(val(l1.total)).toBeCloseTo((2 * (4 + 15 * 3)) / 32, 5);
    tf.dispose([ft, fs, l.total, l1.total, ...Object.values(l.parts), ...Object.values(l1.parts)]);
  });

  it('trains the adapter, sends gradients to the student only, leaks nothing', () => {
    const d = identityLike();
    const rng = createRng(1);
    const rnd = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal(0, 1)), shape);
    const ft = rnd([2, 4, 4, 2]), fs = rnd([2, 4, 4, 3]);
    const [gt, gs] = tf.grads((a: tf.Tensor, b: tf.Tensor) => d.loss({ teacher: out({ pre_head: a }), student: out({ pre_head: b }), batch: null }).total)([ft, fs]);
    expect(Math.max(...tf.abs(gt!).dataSync())).toBe(0);
    expect(Math.max(...tf.abs(gs!).dataSync())).toBeGreaterThan(0);
    const step = () => {
      const { grads, value } = tf.variableGrads(() => d.loss({ teacher: out({ pre_head: ft }), student: out({ pre_head: fs }), batch: null }).total, d.parameters());
      expect(Object.keys(grads).length).toBe(2);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ft, fs, gt!, gs!]);
    d.dispose();
  });

  it('resizes a coarser student to the teacher grid; requires() asks for bev features of one area', () => {
    const coarse: FeatureMap = { pre_head: { kind: 'bev', channels: 3, grid: g2 } };
    const d = featureImitationPlugin.create(fiConfig(), { rng: createRng(0), teacher, student: coarse });
    const x = tf.ones([1, 2, 2, 3]);
    const y = d.adapt(x as tf.Tensor4D);
    expect(y.shape).toEqual([1, 4, 4, 2]);
    tf.dispose([x, y]);
    expect(featureImitationPlugin.requires(fiConfig(), { teacher, student })).toEqual([
      expect.objectContaining({ side: 'teacher', name: 'pre_head', kind: 'bev' }),
      expect.objectContaining({ side: 'student', name: 'pre_head', kind: 'bev', sameAreaAs: { side: 'teacher', name: 'pre_head' } }),
    ]);
    expect(get('distiller', 'feature-imitation')).toBe(featureImitationPlugin);
  });
});

describe('logit-imitation', () => {
  const teacher: FeatureMap = { heatmap: { kind: 'heatmap', channels: 2, grid: g2 } };
  const student: FeatureMap = { heatmap: { kind: 'heatmap', channels: 2, grid: g2 } };
  const σ = (x: number) => 1 / (1 + Math.exp(-x));
  // Teacher logits 0 except one element 2; student logits −1 everywhere (8 elements).
  const tData = new Float32Array(8);
  tData[3] = 2;

  function run(o: Record<string, unknown>, s: tf.Tensor = tf.fill([1, 2, 2, 2], -1), maps = { teacher, student }): number {
    const d = logitImitationPlugin.create(liConfig(o), { rng: createRng(0), ...maps });
    const t = tf.tensor4d(tData, [1, 2, 2, 2]);
    const l = d.loss({ teacher: out({ heatmap: t }), student: out({ heatmap: s }), batch: null });
    const v = val(l.parts['distill.logit']!);
    expect(val(l.total)).toBeCloseTo(v, 6);
    tf.dispose([t, s, l.total, ...Object.values(l.parts)]);
    return v;
  }

  it('MSE of sigmoids and of logits', () => {
    expect(run({ weight: 1 })).toBeCloseTo((7 * (σ(-1) - 0.5) ** 2 + (σ(-1) - σ(2)) ** 2) / 8, 6);
    expect(run({ weight: 3, on: 'logits' })).toBeCloseTo((3 * (7 * 1 + 9)) / 8, 5);
  });

  it('binary KL with temperature', () => {
    const kl = (p: number, q: number) => p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
    expect(run({ mode: 'kl', weight: 1 })).toBeCloseTo((7 * kl(0.5, σ(-1)) + kl(σ(2), σ(-1))) / 8, 6);
    expect(run({ mode: 'kl', weight: 1, temperature: 2 })).toBeCloseTo((4 * (7 * kl(0.5, σ(-0.5)) + kl(σ(1), σ(-0.5)))) / 8, 6);
    // Saturated logits stay finite.
    expect(Number.isFinite(run({ mode: 'kl' }, tf.fill([1, 2, 2, 2], -200)))).toBe(true);
  });

  it('gradients reach the student heatmap only; a finer student is resized', () => {
    const d = logitImitationPlugin.create(liConfig({ mode: 'kl' }), { rng: createRng(0), teacher, student });
    const t = tf.tensor4d(tData, [1, 2, 2, 2]), s = tf.fill([1, 2, 2, 2], -1);
    const [gt, gs] = tf.grads((a: tf.Tensor, b: tf.Tensor) => d.loss({ teacher: out({ heatmap: a }), student: out({ heatmap: b }), batch: null }).total)([t, s]);
    expect(Math.max(...tf.abs(gt!).dataSync())).toBe(0);
    // ∂KL/∂s = (q − p)/N per element (T = 1), × the default weight 50.
    expect(gs!.dataSync()[0]).toBeCloseTo((50 * (σ(-1) - 0.5)) / 8, 5);
    tf.dispose([t, s, gt!, gs!]);
    const fine: FeatureMap = { heatmap: { kind: 'heatmap', channels: 2, grid: g4 } };
    expect(Number.isFinite(run({}, tf.fill([1, 4, 4, 2], -1), { teacher, student: fine }))).toBe(true);
  });

  it('requires() matches the class count; mismatched heatmaps are an error', () => {
    expect(logitImitationPlugin.requires(liConfig(), { teacher, student })[1]).toEqual(expect.objectContaining({ side: 'student', name: 'heatmap', kind: 'heatmap', channels: 2 }));
    const other: FeatureMap = { heatmap: { kind: 'heatmap', channels: 3, grid: g2 } };
    expect(() => logitImitationPlugin.create(liConfig(), { rng: createRng(0), teacher, student: other })).toThrow(/3 classes.*2/);
    expect(get('distiller', 'logit-imitation')).toBe(logitImitationPlugin);
    expect(logitImitationPlugin.create(liConfig(), { rng: createRng(0), teacher, student }).namedParameters()).toEqual([]);
  });
});
