/**
 * A distillation whose frozen teacher runs on onnxruntime-node (`--teacher-runtime`): the tiny CenterPoint teacher
 * exported on the run's first batch teaches the tiny BEVDet student (DistillBEV); the teacher's features are the
 * engine's, training leaks no tensor, and the choice is in the run's result.json.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, createRng, disposeForward, tidyForward, Trainer, writeSafetensors, type TaskModel } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import type { Batch } from '@bevzoo/nuscenes';
import { compareOutputs, selectTeacherRuntime, type HostTensor } from '@bevzoo/onnx';
import '@bevzoo/teacher-centerpoint';
import '@bevzoo/student-bevdet';
import '@bevzoo/distill-distillbev';
import { datasetId, prepareDataset, type Dataset } from './dataset.js';
import { runJob, trainerOptions, trainingSetup, type JobSpec } from './job.js';
import { buildJobModels } from './models.js';
import { readResult } from './results.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-teacher-runtime-'));
const choice = { synthPreset: 'tiny', dataDir: join(out, 'data') };
const quiet = () => {};
let data: Dataset;
const teacherCheckpoint = join(out, 'centerpoint-tiny.safetensors');

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: quiet });
  data = await prepareDataset(choice, quiet);
  // A frozen teacher's weights (random, but any fixed weights do for equality with the engine).
  const t = await createModel<TaskModel>('centerpoint', { kind: 'teacher', preset: 'tiny', rng: createRng(5) });
  await writeSafetensors(teacherCheckpoint, t.model.stateDict(), { model: 'centerpoint', preset: 'tiny' });
  t.model.dispose();
}, 600_000);

const spec = (id: string, o: Partial<JobSpec> = {}): JobSpec => ({
  id, role: 'distill', teacher: { name: 'centerpoint', preset: 'tiny' }, student: { name: 'bevdet', preset: 'tiny' }, distiller: { name: 'distillbev', preset: 'tiny' },
  seed: 0, dataset: choice, outDir: join(out, id), teacherCheckpoint, steps: 3, teacherRuntime: 'onnx', ...o,
});

const hostOf = (rec: Record<string, tf.Tensor>): Record<string, HostTensor> =>
  Object.fromEntries(Object.entries(rec).map(([k, t]) => [k, { data: t.dataSync() as Float32Array, dims: [...t.shape], dtype: 'float32' as const }]));

describe('a distillation with its frozen teacher on onnxruntime-node', () => {
  it('gives the engine\'s teacher features (names, NHWC shapes, values within 1e-4) and trains without leaking tensors', async () => {
    const s = spec('direct');
    const m = await buildJobModels(s, createRng(s.seed), datasetId(data), quiet);
    const d = m.distillation!;
    const { loader, train } = await trainingSetup(s, data, m, quiet);
    const batch = (i: number): Promise<Batch> => loader.batch(Math.floor(i / loader.numBatches), i % loader.numBatches);
    const sel = await selectTeacherRuntime(d, [await batch(0), await batch(1)], { request: 'onnx', threads: 1 });
    try {
      expect(sel.choice.used).toBe('onnx');
      expect(d.teacherRuntime).toBe('onnx');
      // On a batch neither traced nor measured: the teacher's output as the distiller reads it, against the engine's.
      const b = await batch(2);
      await d.prepare(b);
      const onnx = d.teacherOutput(b);
      const engine = tidyForward(d.teacher.model, b, false);
      try {
        expect(Object.keys(onnx.features).sort()).toEqual(Object.keys(engine.features).sort());
        expect(Object.keys(onnx.outputs).sort()).toEqual(Object.keys(engine.outputs).sort());
        for (const [name, spec] of Object.entries(d.teacher.features)) {
          const t = onnx.features[name]!;
          expect(t.shape, name).toEqual(engine.features[name]!.shape);
          expect(t.shape[3], `${name}: channels last (NHWC)`).toBe(spec.channels);
        }
        const cmp = compareOutputs(hostOf({ ...onnx.features, ...onnx.outputs }), hostOf({ ...engine.features, ...engine.outputs }));
        for (const c of cmp) expect(c.relative, `${c.name}: max |Δ| ${c.maxAbs} at scale ${c.scale}`).toBeLessThan(1e-4);
      } finally {
        disposeForward(engine);
        d.releaseBatch();
      }
      // Without `await prepare`, a step cannot read the (asynchronous) teacher: it says so rather than using the engine.
      expect(() => d.teacherOutput(b)).toThrow(/runs on onnx \(asynchronous\): expected `await prepare\(batch\)`/);

      // Training: the trainer awaits the teacher's forward before each step; the number of tensors stays the same.
      const counts: number[] = [];
      const losses: number[] = [];
      const trainer = new Trainer<Batch>({
        model: d, batches: (e) => loader.epoch(e), steps: 3, seed: 0, ...trainerOptions(train), progress: false,
        onStep: (r) => {
          counts.push(tf.memory().numTensors);
          losses.push(r.losses['loss.distill']!);
        },
      });
      const before = tf.memory().numTensors; // the models, the optimiser's moments
      const res = await trainer.run();
      trainer.dispose();
      expect(res.step).toBe(3);
      expect(Number.isFinite(res.lastLoss)).toBe(true);
      expect(losses.every((l) => Number.isFinite(l) && l > 0)).toBe(true);
      expect(counts, 'tensors after each step').toEqual([before, before, before]);
    } finally {
      d.setTeacherRuntime(null);
      await sel.teacher?.dispose();
      m.dispose();
    }
  });

  it('records the teacher runtime in the run\'s result.json (train.teacher_runtime) and logs the timings', async () => {
    const logs: string[] = [];
    const s = spec('job', { steps: 2 });
    const r = await runJob(s, { log: (l) => logs.push(l), dataset: data });
    expect(r.train.steps).toBe(2);
    expect(r.train.teacher_runtime).toMatchObject({ used: 'onnx', requested: 'onnx', threads: expect.any(Number) });
    expect(r.train.teacher_runtime!.engine_ms).toBeGreaterThan(0);
    expect(r.train.teacher_runtime!.onnx_ms).toBeGreaterThan(0);
    expect(r.train.teacher_runtime!.max_rel_diff).toBeLessThan(1e-4);
    expect(readResult(s.outDir)!.train.teacher_runtime).toEqual(r.train.teacher_runtime);
    expect(logs.filter((l) => /^teacher centerpoint \(tiny\): forward .* on the engine, .* on onnxruntime-node .*: onnx/.test(l))).toHaveLength(1);

    // A second run beside it (a matrix's next cell: the same teacher, config, threads and batch shapes) reuses the
    // choice and the export kept in the folder of the runs, and says so.
    const again: string[] = [];
    const r2 = await runJob(spec('job-again', { steps: 1 }), { log: (l) => again.push(l), dataset: data });
    expect(r2.train.teacher_runtime).toEqual({ ...r.train.teacher_runtime, reused: true });
    expect(again.filter((l) => l.startsWith('teacher centerpoint (tiny): forward') && l.includes(`reused (${join(out, '.teacher-runtime', 'centerpoint-')}`))).toHaveLength(1);
  });
});
