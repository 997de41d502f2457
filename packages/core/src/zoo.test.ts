import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDistillation, Distillation, tidyForward } from './distillation.js';
import { AssemblyError, RegistryError } from './errors.js';
import { bevGrid } from './features.js';
import type { DistillerModel, ForwardOutput, LossOutput, TaskModel } from './model.js';
import { defineDistiller, defineStudent, defineTeacher } from './plugin.js';
import { register, unregister } from './registry.js';
import type { Rng } from './rng.js';
import { trainLoop } from './train/trainer.js';
import { CheckpointError } from './train/types.js';
import { writeSafetensors } from './train/safetensors.js';
import { createModel, listModels, matchPackagedCheckpoint } from './zoo.js';

interface Batch { x: tf.Tensor2D; y: tf.Tensor2D }

/** y ≈ x·W: one weight matrix, its output as the feature "f". */
class Linear implements TaskModel<Batch, number> {
  readonly w: tf.Variable;
  mode = true;
  forwardCalls = 0;
  /** Whether the output `y` is the feature `f` itself (one tensor under two names). */
  alias = false;
  constructor(readonly width: number, rng: Rng) {
    this.w = tf.variable(tf.tensor2d(Array.from({ length: 2 * width }, () => rng.normal(0, 0.5)), [2, width]));
  }
  namedParameters(): [string, tf.Variable][] { return [['fc.weight', this.w]]; }
  stateDict(): Record<string, tf.Tensor> { return { 'fc.weight': this.w }; }
  loadStateDict(d: Record<string, tf.Tensor>, opts: { strict?: boolean } = {}): void {
    const t = d['fc.weight'];
    if (!t) { if (opts.strict !== false) throw new Error('missing fc.weight'); return; }
    if (t.shape[1] !== this.width) throw new Error(`fc.weight: shape [${t.shape}], expected [2,${this.width}]`);
    this.w.assign(t);
  }
  train(on = true): void { this.mode = on; }
  forward(batch: Batch): ForwardOutput {
    this.forwardCalls++;
    const f = tf.matMul(batch.x, this.w);
    return { features: { f }, outputs: { y: this.alias ? f : tf.clone(f) } };
  }
  loss(out: ForwardOutput, batch: Batch): LossOutput {
    const mse = tf.mean(tf.square(tf.sub(out.outputs.y!, batch.y))) as tf.Scalar;
    return { total: mse, parts: { 'task.mse': tf.clone(mse) } };
  }
  async predict(out: ForwardOutput): Promise<number[]> { return [...(await out.outputs.y!.data())]; }
  dispose(): void { this.w.dispose(); }
}

/** Imitation of the teacher's feature through a learned scale; setup copies the teacher's weight into the student. */
class Imitate implements DistillerModel<Batch> {
  readonly s = tf.variable(tf.scalar(0.5));
  namedParameters(): [string, tf.Variable][] { return [['scale', this.s]]; }
  stateDict(): Record<string, tf.Tensor> { return { scale: this.s }; }
  loadStateDict(d: Record<string, tf.Tensor>): void { if (d.scale) this.s.assign(d.scale as tf.Scalar); }
  train(): void {}
  loss(a: { teacher: ForwardOutput; student: ForwardOutput }): LossOutput {
    const l = tf.mean(tf.square(tf.sub(tf.mul(a.student.features.f!, this.s), a.teacher.features.f!))) as tf.Scalar;
    return { total: l, parts: { 'distill.f': tf.clone(l) } };
  }
  setup(a: { teacher: TaskModel<Batch>; student: TaskModel<Batch> }) {
    a.student.loadStateDict(a.teacher.stateDict());
    return { summary: 'fc.weight copied', copied: ['fc.weight'], skipped: [] };
  }
  dispose(): void { this.s.dispose(); }
}

const grid = bevGrid([-1, -1, 1, 1], 2);
const schema = z.object({ width: z.number().int().positive().default(3), train: z.object({ steps: z.number().default(5) }).prefault({}) });
type Config = z.infer<typeof schema>;
const dir = mkdtempSync(join(tmpdir(), 'bevzoo-zoo-'));
const ckpt = join(dir, 'teacher-small.safetensors');
const common = { version: '0.0.1', task: 'det' as const, package: 'zoo-test', description: 'a test model', configSchema: schema, presets: { small: {}, wide: { width: 4 } } as Record<string, Partial<Config>> };
const teacher = defineTeacher<Config, Linear>({
  ...common, name: 'zoo-teacher', provides: (c: z.infer<typeof schema>) => ({ f: { kind: 'bev' as const, channels: c.width, grid } }), create: (c, ctx) => new Linear(c.width, ctx.rng),
  checkpoints: [{ preset: 'small', file: ckpt, data: 'toy data', metrics: { mean_ap: 0.5 }, command: 'test' }],
});
const student = defineStudent<Config, Linear>({ ...common, name: 'zoo-student', provides: (c: z.infer<typeof schema>) => ({ f: { kind: 'bev' as const, channels: c.width, grid } }), create: (c, ctx) => new Linear(c.width, ctx.rng) });
const distiller = defineDistiller({
  ...common, configSchema: z.object({}), presets: {}, name: 'zoo-imitate',
  requires: () => [{ side: 'teacher' as const, name: 'f', kind: 'bev' as const }, { side: 'student' as const, name: 'f', kind: 'bev' as const, channels: 3 }],
  create: () => new Imitate(),
});

const batch = (): Batch => ({ x: tf.tensor2d([1, 2, -1, 0.5, 0, 1, 2, -2], [4, 2]), y: tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i)), [4, 3]) });

beforeAll(async () => {
  await tf.setBackend('cpu');
  for (const p of [teacher, student, distiller]) register(p);
  const m = new Linear(3, (await import('./rng.js')).createRng(7));
  await writeSafetensors(ckpt, m.stateDict(), { config: JSON.stringify({ width: 3, train: { steps: 5 } }), data: 'toy data' });
  m.dispose();
});
afterAll(() => {
  for (const p of [teacher, student, distiller]) unregister(p.kind, p.name);
});

describe('createModel', () => {
  it('resolves by name, applies preset and overrides, and loads the packaged weights with pretrained', async () => {
    const a = await createModel<Linear>('zoo-teacher', { preset: 'wide' });
    expect([a.kind, a.name, a.preset, a.config.width, a.model.width, a.weights.length]).toEqual(['teacher', 'zoo-teacher', 'wide', 4, 4, 0]);
    expect(a.features.f!.channels).toBe(4);
    a.model.dispose();
    const b = await createModel<Linear>('zoo-teacher', { overrides: { width: 3 }, pretrained: true });
    expect(b.weights[0]).toMatchObject({ source: 'packaged', file: ckpt, tensors: 1 });
    const c = await createModel<Linear>('teacher:zoo-teacher', { seed: 3 });
    expect(b.model.w.dataSync()).not.toEqual(c.model.w.dataSync());
    const d = await createModel<Linear>('zoo-teacher', { pretrained: ckpt });
    expect([...d.model.w.dataSync()]).toEqual([...b.model.w.dataSync()]);
    for (const m of [b, c, d]) m.model.dispose();
  });

  it('refuses what it cannot do, naming it', async () => {
    await expect(createModel('nope')).rejects.toThrow(/no teacher or student named "nope".*teacher:zoo-teacher/);
    await expect(createModel('zoo-teacher', { preset: 'wide', pretrained: true })).rejects.toThrow(CheckpointError);
    await expect(createModel('zoo-teacher', { preset: 'wide', pretrained: true })).rejects.toThrow(/ships no weights for preset "wide"; packaged: small/);
    await expect(createModel('zoo-teacher', { preset: 'wide', pretrained: ckpt })).rejects.toThrow(/do not fit the model/);
    await expect(createModel('zoo-student', { pretrained: join(dir, 'missing.safetensors') })).rejects.toThrow(/no such weights file/);
    register({ ...teacher, name: 'zoo-student' });
    try {
      await expect(createModel('zoo-student')).rejects.toThrow(RegistryError);
      expect((await createModel('zoo-student', { kind: 'student' })).kind).toBe('student');
    } finally {
      unregister('teacher', 'zoo-student');
    }
  });

  it('listModels is the zoo: presets and packaged weights with their metrics', () => {
    const zoo = listModels().filter((m) => m.package === 'zoo-test');
    expect(zoo.map((m) => [m.kind, m.name])).toEqual([['teacher', 'zoo-teacher'], ['student', 'zoo-student']]);
    expect(zoo[0]).toMatchObject({ task: 'det', presets: ['small', 'wide'], defaultPreset: 'small', checkpoints: [{ preset: 'small', metrics: { mean_ap: 0.5 }, data: 'toy data' }] });
    expect(listModels({ kind: 'student' }).some((m) => m.name === 'zoo-teacher')).toBe(false);
  });

  it('matches a packaged checkpoint only for the same config and data', () => {
    const cfg = { width: 3, train: { steps: 5 } };
    expect(matchPackagedCheckpoint(teacher, 'small', cfg, 'toy data')).toHaveProperty('checkpoint');
    expect(matchPackagedCheckpoint(teacher, 'small', { ...cfg, width: 2 }, 'toy data')).toEqual({ reason: expect.stringMatching(/another config/) });
    expect(matchPackagedCheckpoint(teacher, 'small', cfg, 'other')).toEqual({ reason: expect.stringMatching(/trained on "toy data", this run uses "other"/) });
    expect(matchPackagedCheckpoint(teacher, 'wide', cfg, 'toy data')).toEqual({ reason: expect.stringMatching(/no weights for preset wide/) });
  });
});

describe('createDistillation', () => {
  it('is one trainable model: student and adapters trained, the teacher frozen and run once per step outside the tape', async () => {
    const d = await createDistillation<Batch, number>({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student' }, distiller: { name: 'zoo-imitate' }, seed: 1 });
    expect(d).toBeInstanceOf(Distillation);
    expect(d.setup?.summary).toBe('fc.weight copied');
    expect([...d.student.model.stateDict()['fc.weight']!.dataSync()]).toEqual([...d.teacher.model.stateDict()['fc.weight']!.dataSync()]);
    expect(d.namedParameters().map(([n]) => n)).toEqual(['student.fc.weight', 'distiller.scale']);
    const teacherBefore = [...(d.teacher.model as Linear).w.dataSync()];
    const b = batch();
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    await trainLoop({ model: d, batches: [b], steps: 6, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false, onStep: (r) => {
      losses.push(r.loss);
      expect(Object.keys(r.losses)).toEqual(['task.mse', 'distill.f', 'loss.task', 'loss.distill']);
      expect(r.losses['loss.task']! + r.losses['loss.distill']!).toBeCloseTo(r.loss, 5);
      // The step's time split: the teacher's forward and the distiller's loss are phases of their own.
      expect(r.phases.teacher).toBeGreaterThan(0);
      expect(r.phases.distill).toBeGreaterThan(0);
      expect(r.phases.teacher + r.phases.forward + r.phases.distill + r.phases.backward + r.phases.optimizer).toBeCloseTo(r.step_time, 4);
    } });
    expect(tf.memory().numTensors).toBe(before); // AdamW's moments are freed by trainLoop; no step leaks
    expect(losses.at(-1)!).toBeLessThan(losses[0]!);
    expect([...(d.teacher.model as Linear).w.dataSync()]).toEqual(teacherBefore);
    expect((d.teacher.model as Linear).forwardCalls).toBe(6);
    expect((d.teacher.model as Linear).mode).toBe(false);
    expect(await d.predict(d.forward(b, { training: false }), b)).toHaveLength(12);
    d.dispose();
    tf.dispose([b.x, b.y]);
  });

  it('takes the teacher from an asynchronous runtime (onnxruntime, say): the same training, awaited before each step, no leak', async () => {
    const run = async (external: boolean) => {
      const d = await createDistillation<Batch, number>({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student' }, distiller: { name: 'zoo-imitate' }, seed: 1 });
      let calls = 0;
      if (external)
        d.setTeacherRuntime({
          runtime: 'fake',
          forward: async (b) => {
            await new Promise((r) => setTimeout(r, 2));
            calls++;
            return tidyForward(d.teacher.model, b, false);
          },
        });
      expect(d.teacherRuntime).toBe(external ? 'fake' : 'engine');
      const b = batch();
      if (external) expect(() => d.teacherOutput(b)).toThrow(/teacher zoo-teacher runs on fake \(asynchronous\): expected `await prepare\(batch\)`/);
      const counts: number[] = [];
      const losses: number[] = [];
      const before = tf.memory().numTensors;
      await trainLoop({ model: d, batches: [b], steps: 4, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false, onStep: (r) => {
        losses.push(r.loss);
        counts.push(tf.memory().numTensors);
      } });
      expect(tf.memory().numTensors).toBe(before);
      expect(new Set(counts).size).toBe(1);
      if (external) expect(calls).toBe(4);
      d.setTeacherRuntime(null);
      d.dispose();
      tf.dispose([b.x, b.y]);
      return losses;
    };
    expect(await run(true)).toEqual(await run(false));
  });

  it('serves the teacher from its per-sample cache once every sample of a batch was computed: the same training, fewer forwards, no leak', async () => {
    // Two batches of the same four samples in different orders: rows are samples, keys name them.
    const rows: Record<string, number[]> = { a: [1, 2], b: [-1, 0.5], c: [0, 1], d: [2, -2] };
    const keyOf = new WeakMap<Batch, string[]>();
    const make = (keys: string[]): Batch => {
      const b = { x: tf.tensor2d(keys.flatMap((k) => rows[k]!), [4, 2]), y: tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i)), [4, 3]) };
      keyOf.set(b, keys);
      return b;
    };
    const run = async (maxBytes: number | null) => {
      const d = await createDistillation<Batch, number>({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student' }, distiller: { name: 'zoo-imitate' }, seed: 1 });
      if (maxBytes !== null) d.setTeacherCache({ keys: (b) => keyOf.get(b) ?? null, maxBytes });
      const batches = [make(['a', 'b', 'c', 'd']), make(['c', 'a', 'd', 'b'])];
      const losses: number[] = [];
      const counts: number[] = [];
      await trainLoop({ model: d, batches, steps: 6, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false, onStep: (r) => {
        losses.push(r.loss);
        counts.push(tf.memory().numTensors);
      } });
      const out = { losses, counts, calls: (d.teacher.model as Linear).forwardCalls, stats: d.teacherCacheStats };
      d.dispose();
      tf.dispose(batches.flatMap((b) => [b.x, b.y]));
      return out;
    };
    const plain = await run(null);
    expect(plain.calls).toBe(6);
    expect(plain.stats).toBeNull();
    const cached = await run(1 << 20);
    expect(cached.losses).toEqual(plain.losses); // bit for bit: the cache holds what the teacher computed
    expect(cached.calls).toBe(1);
    // f and y: 3 floats each per sample
    expect(cached.stats).toEqual({ hits: 20, computed: 4, samples: 4, bytes: 4 * 24, max_bytes: 1 << 20 });
    expect(new Set(cached.counts).size).toBe(1);
    // A budget of three samples: every batch has the fourth, so the teacher runs every step.
    const small = await run(3 * 24);
    expect(small.losses).toEqual(plain.losses);
    expect(small.calls).toBe(6);
    expect(small.stats).toMatchObject({ hits: 0, computed: 24, samples: 3, bytes: 72 });
  });

  it('caches outputs with several rows per sample, sample-major ([B·k, …], as per-camera tensors)', async () => {
    // Two samples of two rows each, in both orders.
    const rows: Record<string, number[]> = { p: [1, 2, -1, 0.5], q: [0, 1, 2, -2] };
    const keyOf = new WeakMap<Batch, string[]>();
    const make = (keys: string[]): Batch => {
      const b = { x: tf.tensor2d(keys.flatMap((k) => rows[k]!), [4, 2]), y: tf.tensor2d(keys.flatMap((k) => (k === 'p' ? [1, 0, -1, 0.5, 2, 0] : [0, 3, 1, -1, 0, 2])), [4, 3]) };
      keyOf.set(b, keys);
      return b;
    };
    const run = async (cache: boolean) => {
      const d = await createDistillation<Batch, number>({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student' }, distiller: { name: 'zoo-imitate' }, seed: 1 });
      if (cache) d.setTeacherCache({ keys: (b) => keyOf.get(b) ?? null, maxBytes: 1 << 20 });
      const batches = [make(['p', 'q']), make(['q', 'p'])];
      expect(d.teacherCacheCheck(batches[0]!, 2)).toBeNull();
      const losses: number[] = [];
      await trainLoop({ model: d, batches, steps: 4, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false, onStep: (r) => {
        losses.push(r.loss);
      } });
      const out = { losses, calls: (d.teacher.model as Linear).forwardCalls, stats: d.teacherCacheStats };
      d.dispose();
      tf.dispose(batches.flatMap((b) => [b.x, b.y]));
      return out;
    };
    const plain = await run(false);
    const cached = await run(true);
    expect(cached.losses).toEqual(plain.losses); // the second order is served from the first batch's rows, regrouped
    expect(cached.calls).toBe(2); // the check, then the first batch
    expect(cached.stats).toMatchObject({ hits: 6, computed: 2, samples: 2, bytes: 2 * 2 * 24 });
  });

  it('stores a tensor that has two names in the teacher\'s output once, and gives it back as one tensor', async () => {
    const keyOf = new WeakMap<Batch, string[]>();
    const rows: Record<string, number[]> = { a: [1, 2], b: [-1, 0.5], c: [0, 1], d: [2, -2] };
    const b = { x: tf.tensor2d(['a', 'b', 'c', 'd'].flatMap((k) => rows[k]!), [4, 2]), y: tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.cos(i)), [4, 3]) };
    keyOf.set(b, ['a', 'b', 'c', 'd']);
    const run = async (cache: boolean) => {
      const d = await createDistillation<Batch, number>({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student' }, distiller: { name: 'zoo-imitate' }, seed: 1 });
      (d.teacher.model as Linear).alias = true; // y is f
      if (cache) d.setTeacherCache({ keys: (x) => keyOf.get(x) ?? null, maxBytes: 1 << 20 });
      const losses: number[] = [];
      const counts: number[] = [];
      await trainLoop({ model: d, batches: [b], steps: 4, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false, onStep: (r) => {
        losses.push(r.loss);
        counts.push(tf.memory().numTensors);
      } });
      const out = { losses, counts, stats: d.teacherCacheStats };
      d.dispose();
      return out;
    };
    const plain = await run(false);
    const cached = await run(true);
    expect(cached.losses).toEqual(plain.losses);
    expect(cached.stats).toMatchObject({ hits: 12, computed: 4, samples: 4, bytes: 4 * 12 }); // f's 3 floats a sample, once
    expect(new Set(cached.counts).size).toBe(1); // the served tensor, under both names, is disposed once and for all
    tf.dispose([b.x, b.y]);
  });

  it('stores nothing, and says why, where a teacher output does not have the samples along its first axis', async () => {
    const d = await createDistillation<Batch, number>({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student' }, distiller: { name: 'zoo-imitate' }, seed: 1 });
    d.setTeacherCache({ keys: () => ['a', 'b', 'c'], maxBytes: 1 << 20 }); // three keys for four rows
    const b = batch();
    // The check a runner makes before it relies on the cache: the teacher's outputs against the sample count.
    const before = tf.memory().numTensors;
    expect(d.teacherCacheCheck(b, 4)).toBeNull();
    expect(d.teacherCacheCheck(b, 3)).toBe('the teacher\'s output "f" has shape [4, 3], whose first axis is not the batch\'s 3 samples (nor a multiple of them)');
    expect(tf.memory().numTensors).toBe(before);
    await trainLoop({ model: d, batches: [b], steps: 2, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false });
    expect(d.teacherCacheStats).toMatchObject({ hits: 0, computed: 6, samples: 0, off: 'the teacher\'s output "f" has shape [4, 3], whose first axis is not the batch\'s 3 samples (nor a multiple of them)' });
    expect((d.teacher.model as Linear).forwardCalls).toBe(4); // the two checks, then one forward per step
    d.dispose();
    tf.dispose([b.x, b.y]);
  });

  it('checks the combination before it builds adapters', async () => {
    await expect(createDistillation({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student', preset: 'wide' }, distiller: { name: 'zoo-imitate' } }))
      .rejects.toThrow(AssemblyError);
    await expect(createDistillation({ teacher: { name: 'zoo-teacher' }, student: { name: 'zoo-student', preset: 'wide' }, distiller: { name: 'zoo-imitate' } }))
      .rejects.toThrow(/student "zoo-student" feature "f" has 4 channels; expected 3/);
  });
});

describe('trainer defaults', () => {
  it('trains a task model on loss(forward(batch)) when no lossFn is given', async () => {
    const s = await createModel<Linear>('zoo-student', { seed: 2 });
    const b = batch();
    const r = await trainLoop({ model: s.model, batches: [b], steps: 4, optimizer: { lr: 0.05, weightDecay: 0 }, progress: false });
    expect(r.last!.losses).toHaveProperty('task.mse');
    expect(s.model.forwardCalls).toBe(4);
    s.model.dispose();
    tf.dispose([b.x, b.y]);
  });
});
