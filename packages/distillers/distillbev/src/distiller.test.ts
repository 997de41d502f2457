import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assemble, bevGrid, createRng, defineStudent, defineTeacher, get, resolveConfig, tryAssemble, type FeatureMap, type ForwardOutput, type TaskModel } from '@bevzoo/core';
import { CenterHead, Module } from '@bevzoo/nn';
import { z } from 'zod';
import { DISTILLBEV_ABLATION, DISTILLBEV_PRESETS, DistillBev, distillBevPlugin, type DetBatch, type DistillBevConfig } from './index.js';
import { channelAttention, spatialAttention } from './attention.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * The hand-computed case (B = 1, 4×4 cells of 1 m over [0, 4]², 2 channels, one box):
 * - F_T = 0 except cell (1, 1) = [2, 0]; F_S = [1, 2] everywhere; the adapter is the identity, so
 *   D = (F_S − F_T)² = [1, 4] in every cell (cell (1, 1): (1−2)² = 1, (2−0)² = 4), Σ_c D = 5.
 * - The box (centre (1.5, 1.5), w 1.2, l 2.2, yaw 90°) covers cells 1, 5, 9 (x = 1, y = 0..2); H·W = 2.64.
 * - Teacher heatmap logits −5 except cell 12 (class 0: 0 → σ = 0.5) and cell 15 (class 1: 2 → σ = 0.88); there
 *   the GT Gaussian (centre (1, 1), radius 2) is e^−3.6 and e^−5.76 < 0.1: FP = {12, 15}, TN = 11 cells.
 * - A_T = 16·softmax(mean_c|F_T| / 0.5): cell 5 → 16e²/(e² + 15), others 16/(e² + 15); A_S = 1 (uniform).
 * - A_c = 2·softmax([mean |F_T,0|, mean |F_T,1|] / 0.5) = 2·softmax([0.25, 0]).
 */
const e2 = Math.exp(2);
const AT5 = (16 * e2) / (e2 + 15), ATo = 16 / (e2 + 15);
const A5 = (AT5 + 1) / 2, Ao = (ATo + 1) / 2; // teacher_student
const ac0 = (2 * Math.exp(0.25)) / (Math.exp(0.25) + 1), ac1 = 2 / (Math.exp(0.25) + 1);
const S = 1 / Math.sqrt(2.64);

const grid = bevGrid([0, 0, 4, 4], 4);
const teacherMap: FeatureMap = {
  pre_head: { kind: 'bev', channels: 2, grid, stage: -1 },
  heatmap: { kind: 'heatmap', channels: 2, grid },
};
const studentMap: FeatureMap = { pre_head: { kind: 'bev', channels: 2, grid, stage: -1 } };

function batchOf(n = 1): DetBatch {
  const one = { count: 1, center: Float32Array.of(1.5, 1.5, 0), size: Float32Array.of(1.2, 2.2, 1.5), yaw: Float32Array.of(Math.PI / 2), label: Int32Array.of(0) };
  return { boxes: Array.from({ length: n }, () => one) };
}

function features(n = 1): { teacher: ForwardOutput; student: ForwardOutput } {
  const t = new Float32Array(n * 32), s = new Float32Array(n * 32), h = new Float32Array(n * 32).fill(-5);
  for (let b = 0; b < n; b++) {
    t[b * 32 + 5 * 2] = 2;
    for (let i = 0; i < 16; i++) s.set([1, 2], b * 32 + i * 2);
    h[b * 32 + 12 * 2] = 0;
    h[b * 32 + 15 * 2 + 1] = 2;
  }
  return {
    teacher: { features: { pre_head: tf.tensor4d(t, [n, 4, 4, 2]), heatmap: tf.tensor4d(h, [n, 4, 4, 2]) }, outputs: {} },
    student: { features: { pre_head: tf.tensor4d(s, [n, 4, 4, 2]) }, outputs: {} },
  };
}

function disposeOut(...outs: ForwardOutput[]): void {
  for (const o of outs) tf.dispose(Object.values(o.features));
}

function configOf(overrides: Record<string, unknown> = {}, preset = 'reference'): DistillBevConfig {
  return resolveConfig<DistillBevConfig>(distillBevPlugin, { preset, overrides }).config;
}

/** A distiller with the identity adapter and an identity 3×3 attention conv. */
function make(overrides: Record<string, unknown> = {}, maps = { teacher: teacherMap, student: studentMap }): DistillBev {
  const d = distillBevPlugin.create(configOf(overrides), { rng: createRng(1), ...maps });
  const eye = tf.tensor4d([1, 0, 0, 1], [1, 1, 2, 2]), zero = tf.zeros([2]);
  const k = tf.tensor4d([0, 0, 0, 0, 1, 0, 0, 0, 0], [3, 3, 1, 1]), z1 = tf.zeros([1]);
  const sd: Record<string, tf.Tensor> = { 'channel_wise_adaptations.0.weight': eye, 'channel_wise_adaptations.0.bias': zero };
  if (d.spatial_wise_adaptations) Object.assign(sd, { 'spatial_wise_adaptations.0.weight': k, 'spatial_wise_adaptations.0.bias': z1 });
  d.loadStateDict(sd);
  tf.dispose([eye, zero, k, z1]);
  return d;
}

function lossValues(d: DistillBev, n = 1): Record<string, number> {
  const { teacher, student } = features(n);
  const out = d.loss({ teacher, student, batch: batchOf(n) });
  const vals: Record<string, number> = { total: out.total.dataSync()[0]! };
  for (const [k, v] of Object.entries(out.parts)) vals[k] = v.dataSync()[0]!;
  tf.dispose([out.total, ...Object.values(out.parts)]);
  disposeOut(teacher, student);
  return vals;
}

const α = 6e-3, β = 4e-2, γ = 6e-2, wAtt = 2.5e-3;

describe('attention maps', () => {
  it('spatial attention = H·W·softmax(mean_c |F| / τ) and channel attention = C·softmax(mean |F_c| / τ)', () => {
    const { teacher, student } = features();
    const ft = teacher.features.pre_head as tf.Tensor4D;
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const a = spatialAttention(ft, 0.5).dataSync();
      expect(a[5]).toBeCloseTo(AT5, 4);
      expect(a[0]).toBeCloseTo(ATo, 5);
      const c = channelAttention(ft, 0.5).dataSync();
      expect(c[0]).toBeCloseTo(ac0, 5);
      expect(c[1]).toBeCloseTo(ac1, 5);
      expect(channelAttention(ft, 0.5).shape).toEqual([1, 1, 1, 2]);
      const as = spatialAttention(student.features.pre_head as tf.Tensor4D, 0.5).dataSync();
      expect(Math.max(...as) - Math.min(...as)).toBeLessThan(1e-6);
      expect(as[0]).toBeCloseTo(1, 6);
    });
    expect(tf.memory().numTensors).toBe(before);
    disposeOut(teacher, student);
  });
});

describe('L_feat and L_att against hand computation', () => {
  it('reference defaults: fg, tn, fp, att', () => {
    const v = lossValues(make());
    expect(v['distill.l0.fg']).toBeCloseTo(α * S * 5 * (A5 + 2 * Ao), 7);
    expect(v['distill.l0.tn']).toBeCloseTo(β * (1 / 11) * 5 * 11 * Ao, 7);
    // FP cells: S = 1/2, Σ_c A_c·D_c = a0·1 + a1·4.
    expect(v['distill.l0.fp']).toBeCloseTo(γ * 0.5 * 2 * Ao * (ac0 + 4 * ac1), 7);
    // |mean_c F_T − mean_c φ| = |1 − 1.5| at cell 5, |0 − 1.5| at the 15 others.
    expect(v['distill.l0.att']).toBeCloseTo(wAtt * (0.5 + 15 * 1.5), 7);
    expect(v.total).toBeCloseTo(v['distill.l0.fg']! + v['distill.l0.tn']! + v['distill.l0.fp']! + v['distill.l0.att']!, 6);
  });

  it('divides by the batch size', () => {
    const one = lossValues(make()), two = lossValues(make(), 2);
    for (const k of Object.keys(one)) expect(two[k]).toBeCloseTo(one[k]!, 6);
  });

  it("attention 'teacher' and 'none'", () => {
    const t = lossValues(make({ attention: 'teacher' }));
    expect(t['distill.l0.fg']).toBeCloseTo(α * S * 5 * (AT5 + 2 * ATo), 7);
    expect(t['distill.l0.tn']).toBeCloseTo(β * 5 * ATo, 7);
    const n = lossValues(make({ attention: 'none' }));
    expect(n['distill.l0.fg']).toBeCloseTo(α * S * 5 * 3, 7);
    expect(n['distill.l0.tn']).toBeCloseTo(β * 5, 7);
    expect(n['distill.l0.fp']).toBeCloseTo(γ * (ac0 + 4 * ac1), 7);
  });

  it("scaling 'area', 'count', 'none'", () => {
    expect(lossValues(make({ scaling: 'area' }))['distill.l0.fg']).toBeCloseTo(α * (1 / 2.64) * 5 * (A5 + 2 * Ao), 7);
    expect(lossValues(make({ scaling: 'count' }))['distill.l0.fg']).toBeCloseTo(α * (1 / 3) * 5 * (A5 + 2 * Ao), 7);
    const n = lossValues(make({ scaling: 'none' }));
    expect(n['distill.l0.fg']).toBeCloseTo(α * 5 * (A5 + 2 * Ao), 6);
    expect(n['distill.l0.tn']).toBeCloseTo(β * 5 * 11 * Ao, 6);
    expect(n['distill.l0.fp']).toBeCloseTo(γ * 2 * Ao * (ac0 + 4 * ac1), 6);
  });

  it('fp off: no FP term, the FP cells join TN (13 cells)', () => {
    const v = lossValues(make({ fp: false }));
    expect(v['distill.l0.fp']).toBeUndefined();
    expect(v['distill.l0.tn']).toBeCloseTo(β * 5 * Ao, 7);
  });

  it('FP component scaling and thresholds', () => {
    // Each FP cell is a region of its own: S = 1.
    expect(lossValues(make({ fpScaling: 'component' }))['distill.l0.fp']).toBeCloseTo(γ * 2 * Ao * (ac0 + 4 * ac1), 7);
    // Teacher threshold 0.6 keeps only cell 15 (σ(2) = 0.88): N_fp = 1, N_tn = 12.
    const v = lossValues(make({ teacherThreshold: 0.6 }));
    expect(v['distill.l0.fp']).toBeCloseTo(γ * Ao * (ac0 + 4 * ac1), 7);
    expect(v['distill.l0.tn']).toBeCloseTo(β * 5 * Ao, 7);
    // GT threshold 0.01: cell 12 (G = e^−3.6 ≈ 0.027) is no longer FP.
    expect(lossValues(make({ gtThreshold: 0.01 }))['distill.l0.fp']).toBeCloseTo(γ * Ao * (ac0 + 4 * ac1), 7);
  });

  it('regions off: one uniform region weighted β with S = 1/(H·W)', () => {
    const v = lossValues(make({ regions: false }));
    expect(Object.keys(v).sort()).toEqual(['distill.l0.all', 'distill.l0.att', 'total']);
    expect(v['distill.l0.all']).toBeCloseTo(β * (1 / 16) * 5 * (A5 + 15 * Ao), 7);
  });

  it("channel attention on every term ('all')", () => {
    const v = lossValues(make({ channelAttention: 'all' }));
    expect(v['distill.l0.fg']).toBeCloseTo(α * S * (ac0 + 4 * ac1) * (A5 + 2 * Ao), 7);
    expect(v['distill.l0.tn']).toBeCloseTo(β * (ac0 + 4 * ac1) * Ao, 7);
  });

  it('attention imitation off, and its 3×3 conv is learnable', () => {
    const d = make({ attentionImitation: false });
    expect(lossValues(d)['distill.l0.att']).toBeUndefined();
    expect(d.spatial_wise_adaptations).toBeNull();
    const keys = make().namedParameters().map(([k]) => k);
    expect(keys).toEqual(['channel_wise_adaptations.0.weight', 'channel_wise_adaptations.0.bias', 'spatial_wise_adaptations.0.weight', 'spatial_wise_adaptations.0.bias']);
  });
});

describe('gradients', () => {
  it('flow to the student feature (attention detached) and the adapters, not to the teacher', () => {
    const d = make({ attentionImitation: false });
    const { teacher, student } = features();
    const batch = batchOf();
    const ft = teacher.features.pre_head!, fs = student.features.pre_head!;
    const [gt, gs] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      d.loss({ teacher: { features: { ...teacher.features, pre_head: a }, outputs: {} }, student: { features: { pre_head: b }, outputs: {} }, batch }).total,
    )([ft, fs]);
    expect(Math.max(...tf.abs(gt!).dataSync())).toBe(0);
    // With A treated as a constant: ∂L/∂F_S = w·A·2(φ − F_T) per cell and channel (channel 1: φ − F_T = 2).
    const g = gs!.dataSync();
    expect(g[0 * 2 + 1]).toBeCloseTo(β * (1 / 11) * Ao * 2 * 2, 7); // cell 0: TN
    expect(g[5 * 2 + 0]).toBeCloseTo(α * S * A5 * 2 * (1 - 2), 7); // cell 5: fg, channel 0
    expect(g[15 * 2 + 1]).toBeCloseTo(γ * 0.5 * Ao * ac1 * 2 * 2, 7); // cell 15: FP, channel 1
    const { grads, value } = tf.variableGrads(() => d.loss({ teacher, student, batch }).total, d.parameters());
    for (const [, v] of d.namedParameters()) expect(Math.max(...tf.abs(grads[v.name]!).dataSync())).toBeGreaterThan(0);
    tf.dispose([gt!, gs!, value, ...Object.values(grads)]);
    disposeOut(teacher, student);
    d.dispose();
  });

  it('the attention conv is trained by L_att', () => {
    const d = make();
    const { teacher, student } = features();
    const conv = d.spatial_wise_adaptations!.get(0);
    const { grads, value } = tf.variableGrads(() => d.loss({ teacher, student, batch: batchOf() }).total, [conv.weight, conv.bias!]);
    // ∂L_att/∂bias = w_att·Σ sign(conv − mean_c F_T) = w_att·16 (the conv output 1.5 is above the target everywhere).
    expect(grads[conv.bias!.name]!.dataSync()[0]).toBeCloseTo(wAtt * 16, 7);
    tf.dispose([value, ...Object.values(grads)]);
    disposeOut(teacher, student);
  });

  it('a training step leaks no tensor', () => {
    const d = make();
    const { teacher, student } = features();
    const batch = batchOf();
    const step = () => {
      const { grads, value } = tf.variableGrads(() => d.loss({ teacher, student, batch }).total, d.parameters());
      tf.dispose([value, ...Object.values(grads)]);
    };
    step();
    const before = tf.memory().numTensors;
    step();
    const out = d.loss({ teacher, student, batch: batchOf() });
    tf.dispose([out.total, ...Object.values(out.parts)]);
    expect(tf.memory().numTensors).toBe(before);
    disposeOut(teacher, student);
    d.dispose();
  });
});

describe('layers, adapters and requires()', () => {
  const range: [number, number, number, number] = [-8, -8, 8, 8];
  const T: FeatureMap = {
    stage0: { kind: 'bev', channels: 4, grid: bevGrid(range, 32), stage: 0 },
    stage1: { kind: 'bev', channels: 6, grid: bevGrid(range, 16), stage: 1 },
    stage2: { kind: 'bev', channels: 8, grid: bevGrid(range, 8), stage: 2 },
    pre_head: { kind: 'bev', channels: 12, grid: bevGrid(range, 16), stage: -1 },
    heatmap: { kind: 'heatmap', channels: 10, grid: bevGrid(range, 16) },
  };
  const withStages: FeatureMap = {
    stage0: { kind: 'bev', channels: 4, grid: bevGrid(range, 8), stage: 0 },
    stage1: { kind: 'bev', channels: 5, grid: bevGrid(range, 4), stage: 1 },
    stage2: { kind: 'bev', channels: 7, grid: bevGrid(range, 2), stage: 2 },
    pre_head: { kind: 'bev', channels: 9, grid: bevGrid(range, 16), stage: -1 },
  };
  const bevformerLike: FeatureMap = { pre_head: { kind: 'bev', channels: 9, grid: bevGrid(range, 8), stage: -1 } };

  it('requires(): pre_head with FP, stage1 and stage2 for a CNN student', () => {
    const req = distillBevPlugin.requires(configOf({}, 'reference'), { teacher: T, student: withStages });
    expect(req.map((r) => `${r.side}:${r.name}:${r.kind}:${r.sameAreaAs ? r.sameAreaAs.name : ''}`)).toEqual([
      'teacher:pre_head:bev:',
      'student:pre_head:bev:pre_head',
      'teacher:stage1:bev:',
      'student:stage1:bev:stage1',
      'teacher:stage2:bev:',
      'student:stage2:bev:stage2',
      'teacher:heatmap:heatmap:pre_head',
    ]);
  });

  it('requires(): one layer for a student without stages; no heatmap without FP', () => {
    const req = distillBevPlugin.requires(configOf({}, 'reference'), { teacher: T, student: bevformerLike });
    expect(req.map((r) => `${r.side}:${r.name}`)).toEqual(['teacher:pre_head', 'student:pre_head', 'teacher:heatmap']);
    const noFp = distillBevPlugin.requires(configOf({}, 'bevformer'), { teacher: T, student: withStages });
    expect(noFp.map((r) => `${r.side}:${r.name}`)).toEqual(['teacher:pre_head', 'student:pre_head']);
    const explicit = distillBevPlugin.requires(configOf({ layers: [{ student: 'stage0', teacher: 'stage1' }] }), { teacher: T, student: withStages });
    expect(explicit.map((r) => `${r.side}:${r.name}`)).toEqual(['teacher:stage1', 'student:stage0']);
  });

  it('adapters: upsample factor from the grids, teacher channels out', () => {
    const d = distillBevPlugin.create(configOf({}, 'reference'), { rng: createRng(0), teacher: T, student: withStages });
    expect(d.layers.map((l) => `${l.student}->${l.teacher}:${l.adapter}:${l.fp}`)).toEqual(['pre_head->pre_head:1x1:true', 'stage1->stage1:upsample3:false', 'stage2->stage2:upsample3:false']);
    const inputs = [tf.ones([2, 16, 16, 9]), tf.ones([2, 4, 4, 5]), tf.ones([2, 2, 2, 7])];
    const outs = inputs.map((x, i) => d.channel_wise_adaptations.get(i).forward(x));
    expect(outs.map((o) => o.shape)).toEqual([[2, 16, 16, 12], [2, 16, 16, 6], [2, 8, 8, 8]]); // ×4 and ×4
    const keys = d.namedParameters().map(([k]) => k);
    expect(keys).toContain('channel_wise_adaptations.1.1.conv1.weight');
    expect(keys).toContain('channel_wise_adaptations.2.1.norm3.weight');
    expect(d.stateDict()['channel_wise_adaptations.1.1.conv2.weight']!.shape).toEqual([1, 1, 5, 5]); // hidden = student width
    expect(d.stateDict()['channel_wise_adaptations.1.1.conv3.weight']!.shape).toEqual([1, 1, 5, 6]);
    // The last block ends with ReLU: no negative output.
    expect(Math.min(...outs[1]!.dataSync())).toBeGreaterThanOrEqual(0);
    tf.dispose([...inputs, ...outs]);
    // A coarser student pre_head is resized to the teacher's grid before the 1×1 conv.
    const b = distillBevPlugin.create(configOf({}, 'bevformer'), { rng: createRng(0), teacher: T, student: bevformerLike });
    const x = tf.ones([1, 8, 8, 9]), y = b.channel_wise_adaptations.get(0).forward(x);
    expect(y.shape).toEqual([1, 16, 16, 12]);
    tf.dispose([x, y]);
    d.dispose();
    b.dispose();
  });

  it('three layers at three resolutions give parts per layer', () => {
    const d = distillBevPlugin.create(configOf({}, 'reference'), { rng: createRng(0), teacher: T, student: withStages });
    const rng = createRng(3);
    const rnd = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal(0, 1)), shape);
    const teacher: ForwardOutput = { features: { pre_head: rnd([1, 16, 16, 12]), stage1: rnd([1, 16, 16, 6]), stage2: rnd([1, 8, 8, 8]), heatmap: rnd([1, 16, 16, 10]) }, outputs: {} };
    const student: ForwardOutput = { features: { pre_head: rnd([1, 16, 16, 9]), stage1: rnd([1, 4, 4, 5]), stage2: rnd([1, 2, 2, 7]) }, outputs: {} };
    const batch: DetBatch = { boxes: [{ count: 2, center: Float32Array.of(0, 0, 0, 4, -3, 0), size: Float32Array.of(2, 4.5, 1.6, 0.6, 0.8, 1.7), yaw: Float32Array.of(0.3, 0), label: Int32Array.of(0, 5) }] };
    const out = d.loss({ teacher, student, batch });
    expect(Object.keys(out.parts).sort()).toEqual(
      ['att', 'fg', 'fp', 'tn'].map((t) => `distill.l0.${t}`).concat(['att', 'fg', 'tn'].map((t) => `distill.l1.${t}`), ['att', 'fg', 'tn'].map((t) => `distill.l2.${t}`)).sort(),
    );
    for (const v of Object.values(out.parts)) expect(Number.isFinite(v.dataSync()[0])).toBe(true);
    // Masks are cached for the batch: the same batch gives the same loss.
    const again = d.loss({ teacher, student, batch });
    expect(again.total.dataSync()[0]).toBeCloseTo(out.total.dataSync()[0]!, 5);
    tf.dispose([out.total, ...Object.values(out.parts), again.total, ...Object.values(again.parts)]);
    disposeOut(teacher, student);
    d.dispose();
  });

  it('a feature that does not match its spec is a typed error', () => {
    const d = make();
    const { teacher, student } = features();
    const bad = { features: { pre_head: tf.zeros([1, 4, 4, 3]) }, outputs: {} };
    expect(() => d.loss({ teacher, student: bad, batch: batchOf() })).toThrow(/student feature "pre_head" should be \[1, Y, X, 2\]/);
    expect(() => d.loss({ teacher, student, batch: batchOf(2) })).toThrow(/boxes for 2 samples/);
    disposeOut(teacher, student, bad);
  });
});

class WithHead extends Module {
  readonly head: CenterHead;
  constructor(inChannels: number, seed: number) {
    super();
    this.head = this.registerModule('head', new CenterHead({ inChannels, sharedChannels: 4, headChannels: 4 }, { rng: createRng(seed) }));
  }
}
const asTask = (m: Module) => m as unknown as TaskModel<DetBatch>;

describe('inherit head', () => {
  it('copies every head.* tensor whose name and shape match, and reports the rest', () => {
    const teacher = new WithHead(6, 1), student = new WithHead(5, 2);
    const d = make();
    const report = d.setup({ teacher: asTask(teacher), student: asTask(student) })!;
    const t = teacher.stateDict(), s = student.stateDict();
    // shared_conv.conv.weight differs in input channels (6 vs 5): skipped; everything else copied.
    expect(report.skipped).toEqual([
      { key: 'head.shared_conv.conv.weight', reason: 'shape [3,3,5,4] in the student, [3,3,6,4] in the teacher' },
    ]);
    expect(report.copied.length).toBe(Object.keys(s).length - 1);
    expect(report.copied).toContain('head.task_heads.0.heatmap.1.weight');
    expect(report.copied).toContain('head.shared_conv.bn.running_mean');
    for (const k of report.copied) expect([...s[k]!.dataSync()]).toEqual([...t[k]!.dataSync()]);
    expect(d.inheritReport).toBe(report);
    expect(report.summary).toBe(`the student's head.* starts from the teacher's: ${report.copied.length} tensors copied, 1 kept (head.shared_conv.conv.weight: shape [3,3,5,4] in the student, [3,3,6,4] in the teacher)`);
    teacher.dispose();
    student.dispose();
    d.dispose();
  });

  it("scope 'task_heads' and the switch", () => {
    const teacher = new WithHead(5, 1), student = new WithHead(5, 2);
    const before = student.stateDict()['head.shared_conv.conv.weight']!.dataSync().slice();
    const r = make({ inheritHeadScope: 'task_heads' }).setup({ teacher: asTask(teacher), student: asTask(student) })!;
    expect(r.copied.every((k) => k.startsWith('head.task_heads.'))).toBe(true);
    expect([...student.stateDict()['head.shared_conv.conv.weight']!.dataSync()]).toEqual([...before]);
    expect(make({ inheritHead: false }).setup({ teacher: asTask(teacher), student: asTask(student) })).toBeNull();
    teacher.dispose();
    student.dispose();
  });

  it('inheritHeadExclude keeps the named branches of every task head', () => {
    const teacher = new WithHead(5, 1), student = new WithHead(5, 2);
    const before = student.stateDict();
    const keep = Object.keys(before).filter((k) => /^head\.task_heads\.\d+\.(rot|vel)\./.test(k));
    const saved = Object.fromEntries(keep.map((k) => [k, before[k]!.dataSync().slice()]));
    expect(keep.length).toBeGreaterThan(0);
    const r = make({ inheritHeadExclude: ['rot', 'vel'] }).setup({ teacher: asTask(teacher), student: asTask(student) })!;
    expect(r.skipped.map((x) => x.key).sort()).toEqual([...keep].sort());
    expect(r.skipped.every((x) => /^branch "(rot|vel)" excluded$/.test(x.reason))).toBe(true);
    expect(r.copied).toContain('head.task_heads.0.heatmap.1.weight');
    const after = student.stateDict(), t = teacher.stateDict();
    for (const k of keep) expect([...after[k]!.dataSync()]).toEqual([...saved[k]!]);
    for (const k of r.copied) expect([...after[k]!.dataSync()]).toEqual([...t[k]!.dataSync()]);
    teacher.dispose();
    student.dispose();
  });
});

describe('plugin', () => {
  it('is registered with presets that validate, the small one by default', () => {
    expect(get('distiller', 'distillbev')).toBe(distillBevPlugin);
    for (const p of Object.keys(DISTILLBEV_PRESETS)) expect(() => configOf({}, p)).not.toThrow();
    expect(resolveConfig(distillBevPlugin).preset).toBe('small');
    const bf = configOf({}, 'bevformer');
    expect([bf.alpha, bf.beta, bf.wAtt, bf.attention, bf.fp]).toEqual([5e-3, 4e-3, 5e-4, 'teacher', false]);
  });

  it('ablation rows are ordered config overrides that add one component each', () => {
    expect(DISTILLBEV_ABLATION.map((r) => r.name)).toEqual(['plain', '+ fg/bg', '+ attention', '+ scaling', '+ FP']);
    expect(distillBevPlugin.ablation).toBe(DISTILLBEV_ABLATION);
    const rows = DISTILLBEV_ABLATION.map((r) => configOf(r.overrides as Record<string, unknown>, 'small'));
    expect(rows.map((c) => [c.regions, c.attention !== 'none', c.scaling === 'sqrt', c.fp])).toEqual([
      [false, false, false, false],
      [true, false, false, false],
      [true, true, false, false],
      [true, true, true, false],
      [true, true, true, true],
    ]);
    // The last row is the full method: the preset's defaults.
    const full = configOf({}, 'small');
    expect({ ...rows[4], layers: full.layers }).toEqual(full);
  });
});

describe('assemble()', () => {
  const empty = z.object({ width: z.number().default(1) });
  const base = { version: '0', task: 'det' as const, package: 'test', description: '', configSchema: empty, presets: {}, create: () => null };
  const teacherPlugin = (map: FeatureMap) => defineTeacher({ ...base, name: 't', provides: () => map });
  const studentPlugin = (map: FeatureMap) => defineStudent({ ...base, name: 's', provides: () => map });

  it('accepts a teacher and student that provide what the config asks for', () => {
    const a = assemble({ teacher: { plugin: teacherPlugin(teacherMap) }, student: { plugin: studentPlugin(studentMap) }, distiller: { plugin: 'distillbev', preset: 'reference' } });
    expect(a.distiller!.requirements.map((r) => r.name)).toEqual(['pre_head', 'pre_head', 'heatmap']);
  });

  it('names what is missing: the teacher heatmap for FP, a student feature over another area', () => {
    const noHeatmap = tryAssemble({ teacher: { plugin: teacherPlugin({ pre_head: teacherMap.pre_head! }) }, student: { plugin: studentPlugin(studentMap) }, distiller: { plugin: 'distillbev' } });
    expect(noHeatmap.ok).toBe(false);
    if (!noHeatmap.ok) expect(noHeatmap.problems.join('\n')).toMatch(/does not provide feature "heatmap".*false-positive/);
    // Without FP the same pair assembles.
    expect(tryAssemble({ teacher: { plugin: teacherPlugin({ pre_head: teacherMap.pre_head! }) }, student: { plugin: studentPlugin(studentMap) }, distiller: { plugin: 'distillbev', overrides: { fp: false } } }).ok).toBe(true);
    const shifted: FeatureMap = { pre_head: { kind: 'bev', channels: 2, grid: bevGrid([0, 0, 8, 8], 4) } };
    const r = tryAssemble({ teacher: { plugin: teacherPlugin(teacherMap) }, student: { plugin: studentPlugin(shifted) }, distiller: { plugin: 'distillbev' } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join('\n')).toMatch(/does not share the area/);
  });
});
