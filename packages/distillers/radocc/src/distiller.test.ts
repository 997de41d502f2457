/**
 * RadOcc on the wasm backend with @bevzoo/engine's training kernels (as the occupancy students' tests); the renderer
 * itself is tested against a slow reference, with finite differences, in @bevzoo/nn (src/occ/render.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assemble, AssemblyError, createDistillation, createRng, get, register, resolveConfig, tryAssemble, Trainer,
  type FeatureMap, type ForwardOutput,
} from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { lidarRays, lssOcc2DFeatures, renderOcc, raySampling, samplePlan, type LSSOcc2DConfig } from '@bevzoo/nn';
import { fixtureBatch, fixtureStudent, fixtureTeacher, type FixtureBatch } from './fixture.js';
import {
  affinity, affinityLoss, RADOCC_ABLATION, RADOCC_PRESETS, RadOcc, radOccPlugin, RadOccError, segmentPool, softKl, type RadOccConfig,
} from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

register(fixtureTeacher);
register(fixtureStudent);

const tinyFeatures = lssOcc2DFeatures(resolveConfig<LSSOcc2DConfig>(fixtureStudent, { preset: 'tiny' }).config);
const maps = (): { teacher: FeatureMap; student: FeatureMap } => ({ teacher: tinyFeatures, student: tinyFeatures });
const [GX, GY, GZ] = tinyFeatures.occ_logits!.grid.cells as [number, number, number];

function configOf(overrides: Record<string, unknown> = {}, preset = 'tiny'): RadOccConfig {
  return resolveConfig<RadOccConfig>(radOccPlugin, { preset, overrides }).config;
}

function make(overrides: Record<string, unknown> = {}, m = maps()): RadOcc {
  return radOccPlugin.create(configOf(overrides), { rng: createRng(1), ...m });
}

let batchCache: FixtureBatch | null = null;
const batch = (): FixtureBatch => (batchCache ??= fixtureBatch([64, 176], 2, 3));

/** Random logits on the tiny grid; the "free" logit biased up so that rays cross several voxels. */
function logits(seed: number, B = 2): tf.Tensor {
  const rng = createRng(seed);
  const d = Float32Array.from({ length: B * GX * GY * GZ * 18 }, (_, i) => rng.normal(0, 1) + (i % 18 === 17 ? 1.5 : 0));
  return tf.tensor5d(d, [B, GX, GY, GZ, 18]);
}

function outputs(t: tf.Tensor, s: tf.Tensor, extra: { teacher?: Record<string, tf.Tensor>; student?: Record<string, tf.Tensor> } = {}): { teacher: ForwardOutput; student: ForwardOutput } {
  return { teacher: { features: { occ_logits: t, ...extra.teacher }, outputs: {} }, student: { features: { occ_logits: s, ...extra.student }, outputs: {} } };
}

function values(d: RadOcc, t: tf.Tensor, s: tf.Tensor, b: FixtureBatch = batch(), extra = {}): Record<string, number> {
  const out = d.loss({ ...outputs(t, s, extra), batch: b });
  const v: Record<string, number> = { total: out.total.dataSync()[0]! };
  for (const [k, x] of Object.entries(out.parts)) v[k] = x.dataSync()[0]!;
  tf.dispose([out.total, ...Object.values(out.parts)]);
  return v;
}

describe('plugin, presets, requirements', () => {
  it('registers distiller "radocc" (task occ) with presets, a data hook and the ablation rows', () => {
    expect(get('distiller', 'radocc')).toBe(radOccPlugin);
    expect(radOccPlugin.task).toBe('occ');
    for (const p of Object.keys(RADOCC_PRESETS)) expect(() => configOf({}, p)).not.toThrow();
    const d = configOf({}, 'small');
    expect(d.rdc).toMatchObject({ enabled: true, mode: 'kl', weight: 100, tau: 1 });
    expect(d.voxelKl).toMatchObject({ enabled: true, weight: 10 });
    expect(d.rsc).toMatchObject({ enabled: true, mode: 'affinity', klWeight: 10 });
    expect(configOf({}, 'reference').render).toMatchObject({ rays: 0, jitter: false });
    expect(radOccPlugin.data!(d)).toEqual({ points: true, sweeps: 0, segments: true, occ: false });
    expect(radOccPlugin.data!(configOf({ rsc: { mode: 'kl' }, voxelKl: { mask: 'camera' } }))).toEqual({ points: true, sweeps: 0, segments: false, occ: true });
    expect(radOccPlugin.data!(configOf({ rsc: { enabled: false }, rdc: { enabled: false } }))).toMatchObject({ points: false, segments: false });
    expect(RADOCC_ABLATION.map((r) => r.name)).toEqual([
      '+ voxel-logit KL', '+ depth consistency (RDC)', '+ semantic consistency (RSC)', 'all (RDC + RSC + voxel-logit KL)', 'feature imitation', 'rendered depth values (naive RDC)',
    ]);
    for (const r of RADOCC_ABLATION) expect(() => configOf(r.overrides as Record<string, unknown>)).not.toThrow();
  });

  it('assembles with the fixture teacher and student; clear errors for other grids (voxel KL) and missing features', () => {
    const a = assemble({ teacher: { plugin: 'radocc-fixture-teacher' }, student: { plugin: 'radocc-fixture-student' }, distiller: { plugin: 'radocc', preset: 'tiny' } });
    expect(a.task).toBe('occ');
    // a student on another grid: the voxel KL cannot compare them…
    const other = { plugin: 'radocc-fixture-student', overrides: { grid: { cellSize: 4 } } };
    const r = tryAssemble({ teacher: { plugin: 'radocc-fixture-teacher' }, student: other, distiller: { plugin: 'radocc', preset: 'tiny' } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join('\n')).toMatch(/"occ_logits" .*does not share the grid of teacher feature "occ_logits".*does not resample: the grids must be equal .*voxelKl.enabled false/);
    // …rendering alone samples each model's own grid
    expect(tryAssemble({ teacher: { plugin: 'radocc-fixture-teacher' }, student: other, distiller: { plugin: 'radocc', preset: 'tiny', overrides: { voxelKl: { enabled: false } } } }).ok).toBe(true);
    expect(() => assemble({ teacher: { plugin: 'radocc-fixture-teacher' }, student: { plugin: 'radocc-fixture-student' }, distiller: { plugin: 'radocc', overrides: { teacherLogits: 'voxel_logits' } } }))
      .toThrow(/teacher "radocc-fixture-teacher" does not provide feature "voxel_logits" \(needed for rendered depth consistency, rendered semantic consistency, the voxel-logit KL/);
    expect(() => assemble({ teacher: { plugin: 'radocc-fixture-teacher' }, student: { plugin: 'radocc-fixture-student' }, distiller: { plugin: 'radocc', overrides: { feature: { enabled: true, teacher: 'voxel' } } } }))
      .toThrow(AssemblyError);
    expect(() => make({}, { teacher: { pre_head: tinyFeatures.pre_head! }, student: tinyFeatures })).toThrow(/RadOcc: rendering \/ the voxel KL needs the teacher feature "occ_logits"; the teacher provides pre_head/);
  });
});

describe('loss terms', () => {
  it('each term switches on and off; identical teacher and student logits give zero consistency losses', () => {
    const t = logits(1), s = logits(2);
    const all = values(make(), t, s);
    expect(Object.keys(all).sort()).toEqual(['distill.rdc', 'distill.rsc', 'distill.voxel_kl', 'total']);
    for (const v of Object.values(all)) expect(Number.isFinite(v) && v >= 0).toBe(true);
    expect(all['distill.rdc']).toBeGreaterThan(0);
    expect(all['distill.rsc']).toBeGreaterThan(0);
    expect(all.total).toBeCloseTo(all['distill.rdc']! + all['distill.rsc']! + all['distill.voxel_kl']!, 4);
    const off = { enabled: false };
    expect(Object.keys(values(make({ rdc: off, rsc: off }), t, s))).toEqual(['total', 'distill.voxel_kl']);
    expect(Object.keys(values(make({ voxelKl: off, rsc: off }), t, s))).toEqual(['total', 'distill.rdc']);
    expect(Object.keys(values(make({ voxelKl: off, rdc: off }), t, s))).toEqual(['total', 'distill.rsc']);
    expect(values(make({ voxelKl: off, rdc: off, rsc: off }), t, s)).toEqual({ total: 0 });
    const same = values(make(), t, t);
    for (const k of ['distill.rdc', 'distill.rsc', 'distill.voxel_kl']) expect(Math.abs(same[k]!)).toBeLessThan(1e-5);
    const ray = values(make({ rsc: { mode: 'kl' } }), t, s);
    expect(ray['distill.rsc']).toBeGreaterThan(0);
    const naive = values(make({ rdc: { mode: 'depth' } }), t, s);
    expect(naive['distill.rdc']).toBeGreaterThan(0);
    expect(values(make({ rdc: { mode: 'depth' } }), t, t)['distill.rdc']).toBeLessThan(1e-6);
    tf.dispose([t, s]);
  });

  it('rendering works across grids: each model samples its own volume along the same rays', () => {
    const coarse = lssOcc2DFeatures(resolveConfig<LSSOcc2DConfig>(fixtureStudent, { preset: 'tiny', overrides: { grid: { cellSize: 4 } } }).config);
    const [cx, cy, cz] = coarse.occ_logits!.grid.cells as [number, number, number];
    expect([cx, cy, cz]).toEqual([20, 20, 8]);
    const d = make({ voxelKl: { enabled: false } }, { teacher: tinyFeatures, student: coarse });
    const t = logits(1), s = tf.randomNormal([2, cx, cy, cz, 18]);
    const v = values(d, t, s);
    expect(Number.isFinite(v['distill.rdc']!) && v['distill.rdc']! > 0).toBe(true);
    expect(Number.isFinite(v['distill.rsc']!)).toBe(true);
    const rc = d.lastRays!;
    expect(rc.teacher.cells).toEqual([GX, GY, GZ]);
    expect(rc.student.cells).toEqual([20, 20, 8]);
    expect(rc.teacher.samples).toBe(rc.student.samples);
    tf.dispose([t, s]);
  });

  it('voxel KL = weight·mean over voxels of KL(p_T ‖ p_S)/18, RDC = λ·mean over rays of KL of the weights/N (hand computation)', () => {
    const t = logits(4), s = logits(5);
    const d = make({ rsc: { enabled: false } });
    const v = values(d, t, s);
    const T = t.dataSync(), S = s.dataSync();
    let kl = 0;
    const n = T.length / 18;
    for (let i = 0; i < n; i++) {
      const row = (a: ArrayLike<number>) => {
        const x = Array.from({ length: 18 }, (_, c) => a[i * 18 + c]!), m = Math.max(...x);
        const z = Math.log(x.reduce((acc, y) => acc + Math.exp(y - m), 0)) + m;
        return x.map((y) => y - z);
      };
      const lp = row(T), lq = row(S);
      for (let c = 0; c < 18; c++) kl += Math.exp(lp[c]!) * (lp[c]! - lq[c]!);
    }
    expect(v['distill.voxel_kl']).toBeCloseTo((10 * kl) / n / 18, 3);
    // RDC from the same rays (the distiller's cache) rendered here
    const rc = d.rayCache(batch());
    expect(rc.rays.count).toBe(256);
    expect(rc.student).toBe(rc.teacher); // one grid, one sampling plan
    const wt = renderOcc(t, rc.teacher).weights.arraySync(), ws = renderOcc(s, rc.student).weights.arraySync();
    let rdc = 0;
    for (let r = 0; r < wt.length; r++) {
      const sm = (w: number[]) => {
        const m = Math.max(...w), e = w.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
        return e.map((x) => x / z);
      };
      const p = sm(wt[r]!), q = sm(ws[r]!);
      rdc += p.reduce((a, pk, k) => a + pk * Math.log(pk / q[k]!), 0) / p.length;
    }
    expect(v['distill.rdc']).toBeCloseTo((100 * rdc) / wt.length, 3);
    tf.dispose([t, s]);
  });

  it('voxel KL with class weights: the mean weighted by the weight of the teacher\'s arg-max class (hand computation)', () => {
    const t = logits(6), s = logits(7);
    const cw = Array.from({ length: 18 }, (_, c) => 1 + c);
    const v = values(make({ rdc: { enabled: false }, rsc: { enabled: false }, voxelKl: { classWeights: cw } }), t, s);
    const T = t.dataSync(), S = s.dataSync();
    let num = 0, den = 0;
    for (let i = 0; i < T.length / 18; i++) {
      const row = (a: ArrayLike<number>) => {
        const x = Array.from({ length: 18 }, (_, c) => a[i * 18 + c]!), m = Math.max(...x);
        const z = Math.log(x.reduce((acc, y) => acc + Math.exp(y - m), 0)) + m;
        return x.map((y) => y - z);
      };
      const lp = row(T), lq = row(S);
      let kl = 0;
      for (let c = 0; c < 18; c++) kl += Math.exp(lp[c]!) * (lp[c]! - lq[c]!);
      const w = cw[lp.indexOf(Math.max(...lp))]!;
      num += w * kl;
      den += w;
    }
    expect(v['distill.voxel_kl']).toBeCloseTo((10 * num) / den / 18, 3);
    const plain = values(make({ rdc: { enabled: false }, rsc: { enabled: false } }), t, s)['distill.voxel_kl']!;
    expect(Math.abs(v['distill.voxel_kl']! - plain)).toBeGreaterThan(1e-3);
    tf.dispose([t, s]);
  });

  it('segment affinity: mean-pooled semantics per (camera, id), normalised F·Fᵀ, mean squared difference', () => {
    const pool = segmentPool([0, 1, 1, 2, 2, 2, 1, 5], [0, 0, 0, 0, 0, 0, 1, 0], 2);
    expect(pool.keys).toEqual(['0:1', '0:2']); // camera 1's id 1 and id 5 have one ray each
    const semT = tf.tensor2d([[0, 0], [1, 0], [3, 0], [0, 1], [0, 2], [0, 3], [9, 9], [5, 5]]);
    const semS = tf.tensor2d([[0, 0], [1, 1], [1, 1], [1, 0], [1, 0], [1, 0], [9, 9], [5, 5]]);
    // F_T = [[2, 0], [0, 2]] → F Fᵀ = diag(4, 4) → rows: identity; F_S = [[1, 1], [1, 0]] → [[2, 1], [1, 1]] → rows normalised
    const l = affinityLoss(semT, semS, pool, 'rows')!.dataSync()[0]!;
    const a = [2 / Math.sqrt(5), 1 / Math.sqrt(5), 1 / Math.SQRT2, 1 / Math.SQRT2];
    expect(l).toBeCloseTo(((1 - a[0]!) ** 2 + a[1]! ** 2 + a[2]! ** 2 + (1 - a[3]!) ** 2) / 4, 5);
    const cos = affinity(tf.tensor2d([[1, 1], [1, 0]]), 'cosine').arraySync();
    expect(cos[0]![1]).toBeCloseTo(1 / Math.SQRT2, 5);
    expect(cos[1]![1]).toBeCloseTo(1, 5);
    expect(affinityLoss(semT, semS, segmentPool([1, 1, 0, 0, 0, 0, 0, 0], new Array(8).fill(0), 1), 'rows')).toBeNull();
    tf.dispose([semT, semS]);
  });

  it("softKl's hand-written gradient matches finite differences and leaves the teacher detached", () => {
    const rng = createRng(6);
    const t = tf.tensor2d(Float32Array.from({ length: 12 }, () => rng.normal()), [3, 4]);
    const s = tf.variable(tf.tensor2d(Float32Array.from({ length: 12 }, () => rng.normal()), [3, 4]));
    const tv = tf.variable(t);
    const f = () => tf.sum(tf.mul(softKl(tv, s, 2), tf.tensor1d([1, -2, 0.5]))) as tf.Scalar;
    const { grads } = tf.variableGrads(f, [s, tv]);
    const g = grads[s.name]!.dataSync();
    expect(Array.from(grads[tv.name]!.dataSync()).every((x) => x === 0)).toBe(true);
    const base = s.dataSync().slice();
    for (let i = 0; i < 12; i++) {
      const at = (h: number) => {
        const d = base.slice();
        d[i] = base[i]! + h;
        s.assign(tf.tensor2d(d, [3, 4]));
        return f().dataSync()[0]!;
      };
      expect(g[i]).toBeCloseTo((at(1e-2) - at(-1e-2)) / 2e-2, 2);
    }
    tf.dispose([t, s, tv, ...Object.values(grads)]);
  });

  it('feature imitation: an adapter (1×1 conv) is the distiller\'s only parameter; L1 × 0.1', () => {
    const d = make({ voxelKl: { enabled: false }, rdc: { enabled: false }, rsc: { enabled: false }, feature: { enabled: true } });
    expect(d.namedParameters().map(([n]) => n)).toEqual(['feature_adapter.weight', 'feature_adapter.bias']);
    expect(make().namedParameters()).toEqual([]);
    const C = tinyFeatures.pre_head!.channels, [X, Y] = tinyFeatures.pre_head!.grid.cells as [number, number];
    const ft = tf.randomNormal([2, Y, X, C]), fs = tf.randomNormal([2, Y, X, C]);
    const t = logits(1);
    const v = values(d, t, t, batch(), { teacher: { pre_head: ft }, student: { pre_head: fs } });
    const phi = d.feature_adapter!.forward(fs);
    expect(v['distill.feature']).toBeCloseTo(0.1 * tf.mean(tf.abs(tf.sub(phi, ft))).dataSync()[0]!, 5);
    tf.dispose([ft, fs, t, phi]);
  });

  it('errors name the batch field or feature a term needs', () => {
    const t = logits(1), s = logits(2);
    const b = batch();
    expect(() => values(make(), t, s, { ...b, points: undefined } as unknown as FixtureBatch)).toThrow(/RadOcc: rendering \(RDC \/ RSC\) needs batch.points/);
    expect(() => values(make(), t, s, { ...b, segments: undefined } as unknown as FixtureBatch)).toThrow(/rsc.mode 'affinity' needs batch.segments/);
    expect(() => values(make({ voxelKl: { mask: 'camera' }, rdc: { enabled: false }, rsc: { enabled: false } }), t, s, { ...b, occ: undefined } as unknown as FixtureBatch)).toThrow(/voxelKl.mask 'camera' needs batch.occ/);
    const bad = tf.zeros([2, GX, GY, GZ, 17]);
    expect(() => values(make(), t, bad)).toThrow(RadOccError);
    expect(() => values(make(), t, bad)).toThrow(/the student feature "occ_logits" should be \[2, 40, 40, 8, 18\]/);
    expect(() => values(make(), t, s, { ...b, points: b.points.slice(0, 1) })).toThrow(/batch.points has 1 clouds for 2 samples/);
    tf.dispose([t, s, bad]);
  });

  it("rays are the fixture's LiDAR pixels; the step's draw is seeded and jitter only applies in training", () => {
    const b = batch();
    const all = lidarRays(b.points, b, { imageSize: b.imageSize });
    expect(all.count).toBeGreaterThan(1000);
    // every candidate pixel lies on the segment map's ground or car (id > 0)
    const hits = Array.from(all.pixel).filter((p, r) => b.segments[all.camera[r]! * 64 * 176 + p]! > 0).length;
    expect(hits / all.count).toBeGreaterThan(0.97);
    const d1 = make(), d2 = make();
    const c1 = d1.rayCache(b), c2 = d2.rayCache(b);
    expect(Array.from(c1.rays.pixel)).toEqual(Array.from(c2.rays.pixel));
    expect(c1.sampling.offsets.some((x) => x > 0)).toBe(true);
    d2.train(false);
    expect(d2.rayCache({ ...b }).sampling.offsets.every((x) => x === 0)).toBe(true);
    // another grid for the student: its own plan, the same samples
    const s = raySampling([tinyFeatures.occ_logits!.grid], c1.rays.count);
    expect(samplePlan(c1.rays, s, tinyFeatures.occ_logits!.grid, 2).samples).toBe(c1.sampling.count);
  });
});

describe('distillation', () => {
  it('a tiny-preset distillation trains with finite, decreasing loss and no tensor leak', async () => {
    const d = await createDistillation<FixtureBatch>({
      teacher: { name: 'radocc-fixture-teacher', kind: 'teacher', preset: 'tiny', pretrained: false },
      student: { name: 'radocc-fixture-student', kind: 'student', preset: 'tiny' },
      distiller: { name: 'radocc', preset: 'tiny' },
      seed: 0,
    });
    const b = batch();
    const losses: number[] = [], counts: number[] = [], distill: number[] = [];
    const trainer = new Trainer<FixtureBatch>({
      model: d, batches: [b], steps: 5, optimizer: { lr: 2e-3, weightDecay: 0.01 }, progress: false,
      onStep: (r) => {
        losses.push(r.loss);
        distill.push(r.losses['loss.distill']!);
        counts.push(tf.memory().numTensors);
        expect(Object.keys(r.losses)).toEqual(expect.arrayContaining(['occ.ce', 'distill.rdc', 'distill.rsc', 'distill.voxel_kl', 'loss.task', 'loss.distill']));
      },
    });
    await trainer.run();
    trainer.dispose();
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]!);
    expect(distill[distill.length - 1]).toBeLessThan(distill[0]!);
    expect(new Set(counts.slice(1)).size).toBe(1);
    d.dispose();
  }, 240_000);
});
