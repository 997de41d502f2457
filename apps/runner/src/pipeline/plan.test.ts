import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bevGrid, defineDistiller, defineStudent, defineTeacher, register, unregister, type AnyPlugin, type Task } from '@bevzoo/core';
import { defaultMatrixDistillers, matrixJobs, type PlanOptions } from './plan.js';
import { runScheduled, type ScheduledJob } from './scheduler.js';
import type { JobSpec } from './job.js';
import type { JobResult } from './results.js';

const grid = bevGrid([-51.2, -51.2, 51.2, 51.2], 64);
const schema = z.object({ width: z.number().default(8) });
const common = (name: string, task: Task) => ({ name, version: '0.0.1', task, package: 'plan-test', description: name, configSchema: schema, presets: { tiny: {}, small: { width: 16 } } });
const feature = (c: { width: number }) => ({ pre_head: { kind: 'bev' as const, channels: c.width, grid } });
const create = () => ({});
const plugins: AnyPlugin[] = [
  defineTeacher({ ...common('pt-lidar', 'det'), provides: feature, create }),
  defineStudent({ ...common('pt-cam', 'det'), provides: feature, create }),
  // A student without the feature the distiller pairs: not compatible, reported and skipped.
  defineStudent({ ...common('pt-nofeat', 'det'), provides: () => ({}), create }),
  defineStudent({ ...common('pt-occ', 'occ'), provides: () => ({}), create }),
  defineDistiller({ ...common('pt-distill', 'det'), requires: () => [{ side: 'teacher', name: 'pre_head' }, { side: 'student', name: 'pre_head', sameAreaAs: { side: 'teacher', name: 'pre_head' } }], create }),
  defineDistiller({ ...common('pt-ablation-only', 'det'), matrix: false, requires: () => [], create }),
];
const out = mkdtempSync(join(tmpdir(), 'bevzoo-plan-'));
const opts = (o: Partial<PlanOptions> = {}): PlanOptions => ({ preset: 'small', seeds: [0, 1], out, dataset: { synthPreset: 'tiny' }, backend: 'wasm', ...o, teachers: o.teachers ?? ['pt-lidar'], students: o.students ?? ['pt-cam', 'pt-nofeat', 'pt-occ'] });

beforeAll(() => plugins.forEach((p) => register(p)));
afterAll(() => plugins.forEach((p) => unregister(p.kind, p.name)));

describe('matrix planning', () => {
  it('plans each teacher once, each student baseline per seed and each compatible cell per seed, and names what does not assemble', () => {
    const { jobs, incompatible } = matrixJobs(opts({ distillers: ['pt-distill'] }));
    expect(jobs.map((j) => j.spec.id)).toEqual([
      'teacher-pt-lidar',
      'baseline-pt-cam-seed0', 'baseline-pt-cam-seed1', 'baseline-pt-nofeat-seed0', 'baseline-pt-nofeat-seed1', 'baseline-pt-occ-seed0', 'baseline-pt-occ-seed1',
      'distill-pt-distill-pt-lidar-pt-cam-seed0', 'distill-pt-distill-pt-lidar-pt-cam-seed1',
    ]);
    expect(incompatible).toEqual([expect.stringMatching(/^pt-lidar × pt-nofeat × pt-distill: student "pt-nofeat" does not provide feature "pre_head"/)]);
    const cell = jobs.at(-1)!;
    expect(cell.after).toEqual(['teacher-pt-lidar']);
    expect(cell.spec).toMatchObject({ role: 'distill', seed: 1, teacher: { name: 'pt-lidar', preset: 'small' }, student: { name: 'pt-cam', preset: 'small' }, distiller: { name: 'pt-distill', preset: 'small' }, outDir: join(out, 'runs', cell.spec.id) });
    expect(jobs[0]!.spec).toMatchObject({ role: 'teacher', seed: 0, usePackaged: true });
    expect(matrixJobs(opts({ retrainTeachers: true })).jobs[0]!.spec.usePackaged).toBe(false);
    // --teacher-runtime reaches the distillation runs only (absent: the run's default, auto).
    expect(cell.spec.teacherRuntime).toBeUndefined();
    const onnx = matrixJobs(opts({ distillers: ['pt-distill'], teacherRuntime: 'onnx' })).jobs;
    expect(onnx.filter((j) => j.spec.role === 'distill').every((j) => j.spec.teacherRuntime === 'onnx')).toBe(true);
    expect(onnx.filter((j) => j.spec.role !== 'distill').some((j) => 'teacherRuntime' in j.spec)).toBe(false);
  });

  it('runs every distiller that does not opt out by default, and filters teachers and students', () => {
    expect(defaultMatrixDistillers()).toContain('pt-distill');
    expect(defaultMatrixDistillers()).not.toContain('pt-ablation-only');
    const { jobs } = matrixJobs(opts({ students: ['pt-occ'], seeds: [3] }));
    expect(jobs.map((j) => j.spec.id)).toEqual(['teacher-pt-lidar', 'baseline-pt-occ-seed3']);
  });

  it('keeps a preset a plugin lacks unset (the plugin takes its own default)', () => {
    const { jobs } = matrixJobs(opts({ preset: 'paper', students: ['pt-cam'], seeds: [0], distillers: ['pt-distill'] }));
    expect(jobs[1]!.spec.student).toEqual({ name: 'pt-cam', preset: undefined, overrides: undefined });
  });
});

const result = (spec: JobSpec): JobResult => ({
  id: spec.id, role: spec.role, task: 'det', teacher: spec.teacher?.name ?? null, student: spec.student?.name ?? null, distiller: spec.distiller?.name ?? null, seed: spec.seed, presets: {},
  metrics: { mean_ap: 0.1, nd_score: 0.2 }, train: { steps: 1, seconds: 1, steps_per_s: 1, samples_per_s: 1, first_loss: 1, last_loss: 1, backend: 'wasm' }, eval: { samples: 1, seconds: 0 },
  checkpoint: join(spec.outDir, 'model.safetensors'), log: join(spec.outDir, 'train.jsonl'), finished_at: '2026-01-01T00:00:00Z',
});
const job = (id: string, role: JobSpec['role'], after: string[] = [], dir = out): ScheduledJob => ({ after, spec: { id, role, seed: 0, dataset: {}, outDir: join(dir, id), teacher: { name: 't' }, student: { name: 's' } } });

describe('scheduling', () => {
  it('runs at most `parallel` jobs at once, a distillation after its teacher with the teacher checkpoint filled in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-sched-'));
    let running = 0, peak = 0;
    const order: string[] = [];
    const run = async (spec: JobSpec) => {
      running++;
      peak = Math.max(peak, running);
      order.push(`start ${spec.id}${spec.teacherCheckpoint ? ` with ${spec.teacherCheckpoint}` : ''}`);
      await new Promise((r) => setTimeout(r, spec.role === 'teacher' ? 30 : 5));
      running--;
      order.push(`end ${spec.id}`);
      return result(spec);
    };
    const jobs = [job('teacher-t', 'teacher', [], dir), job('d0', 'distill', ['teacher-t'], dir), job('b0', 'baseline', [], dir), job('b1', 'baseline', [], dir), job('d1', 'distill', ['teacher-t'], dir)];
    const r = await runScheduled(jobs, { parallel: 2, log: () => {}, run });
    expect(peak).toBe(2);
    expect([...r.results.keys()].sort()).toEqual(['b0', 'b1', 'd0', 'd1', 'teacher-t']);
    expect(order.indexOf(`start d0 with ${join(dir, 'teacher-t', 'model.safetensors')}`)).toBeGreaterThan(order.indexOf('end teacher-t'));
    expect(order.indexOf('start b0')).toBeLessThan(order.indexOf('end teacher-t')); // independent work goes on meanwhile
  });

  it('skips what depends on a failed job and reports the failure; a rerun keeps finished runs (resume)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-sched-'));
    const calls: string[] = [];
    const failing = async (spec: JobSpec) => {
      calls.push(spec.id);
      if (spec.role === 'teacher') throw new Error('out of memory');
      return result(spec);
    };
    const jobs = [job('teacher-t', 'teacher', [], dir), job('d0', 'distill', ['teacher-t'], dir), job('b0', 'baseline', [], dir)];
    const r = await runScheduled(jobs, { parallel: 2, log: () => {}, run: failing });
    expect(r.failed.get('teacher-t')).toBe('out of memory');
    expect(r.skipped).toEqual(['d0']);
    expect(calls.sort()).toEqual(['b0', 'teacher-t']);

    // The finished baseline left a result.json: a rerun keeps it and runs the rest.
    mkdirSync(join(dir, 'b0'), { recursive: true });
    writeFileSync(join(dir, 'b0', 'result.json'), JSON.stringify(result(jobs[2]!.spec)));
    calls.length = 0;
    const again = await runScheduled(jobs, { parallel: 2, log: () => {}, run: async (spec) => (calls.push(spec.id), result(spec)) });
    expect(again.resumed).toEqual(['b0']);
    expect(calls).toEqual(['teacher-t', 'd0']);
    expect(again.results.size).toBe(3);
  });

  it('a torn or hand-broken result.json reruns the job', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-sched-'));
    mkdirSync(join(dir, 'b0'), { recursive: true });
    writeFileSync(join(dir, 'b0', 'result.json'), '{"id": "b0", "ro');
    const calls: string[] = [];
    const r = await runScheduled([job('b0', 'baseline', [], dir)], { parallel: 1, log: () => {}, run: async (spec) => (calls.push(spec.id), result(spec)) });
    expect(calls).toEqual(['b0']);
    expect(r.resumed).toEqual([]);
  });
});
