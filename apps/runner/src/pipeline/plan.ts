import { relative, resolve, isAbsolute } from 'node:path';
import { checkName, list, tryAssemble, type DistillerPlugin, type StudentPlugin, type TeacherPlugin } from '@bevzoo/core';
import type { EngineBackend } from '@bevzoo/engine';
import type { TeacherRuntimeRequest } from '@bevzoo/onnx';
import type { DatasetChoice } from './dataset.js';
import type { ComponentSpec, JobSpec } from './job.js';
import type { ScheduledJob } from './scheduler.js';

export interface PlanOptions {
  preset: string;
  seeds: number[];
  out: string;
  dataset: DatasetChoice;
  backend: EngineBackend;
  /** Where the distillations' frozen teachers run (`--teacher-runtime`; the job's default, auto, where not given). */
  teacherRuntime?: TeacherRuntimeRequest;
  steps?: number;
  teachers?: string[];
  students?: string[];
  distillers?: string[];
  teacherOverrides?: Record<string, unknown>;
  studentOverrides?: Record<string, unknown>;
  distillerOverrides?: Record<string, unknown>;
  /** `--plugin` values, resolved (paths made absolute), passed on to every run's process. */
  plugins?: string[];
  /** Train teachers even where their package ships matching weights (`--retrain-teachers`). */
  retrainTeachers?: boolean;
  /** Ignore the plugins' starting weights (`--scratch`). */
  scratch?: boolean;
}

/** A plugin's preset of the given name, or its own default when it has none of that name. */
export function presetFor(p: { presets: Record<string, unknown> }, preset: string): string | undefined {
  return preset in p.presets ? preset : undefined;
}

/**
 * The folder of run `id` under `out`. Run ids are built from plugin, preset and variant names, which the registry
 * already restricts to NAME_PATTERN; checked again here, so that no run folder can land outside `out`.
 */
export function runDir(out: string, id: string): string {
  checkName(id, 'run id');
  const dir = resolve(out, 'runs', id);
  const rel = relative(resolve(out), dir);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`run ${JSON.stringify(id)} would write outside --out ${out}`);
  return dir;
}

const comp = (p: TeacherPlugin | StudentPlugin | DistillerPlugin, preset: string, overrides?: Record<string, unknown>): ComponentSpec => ({ name: p.name, preset: presetFor(p, preset), overrides });

export function teacherJob(o: PlanOptions, t: TeacherPlugin): ScheduledJob {
  const id = `teacher-${t.name}`;
  return { after: [], spec: { id, role: 'teacher', teacher: comp(t, o.preset, o.teacherOverrides), seed: 0, dataset: o.dataset, outDir: runDir(o.out, id), backend: o.backend, steps: o.steps, plugins: o.plugins, usePackaged: !o.retrainTeachers, scratch: o.scratch } };
}

export function baselineJob(o: PlanOptions, s: StudentPlugin, seed: number): ScheduledJob {
  const id = `baseline-${s.name}-seed${seed}`;
  return { after: [], spec: { id, role: 'baseline', student: comp(s, o.preset, o.studentOverrides), seed, dataset: o.dataset, outDir: runDir(o.out, id), backend: o.backend, steps: o.steps, plugins: o.plugins, scratch: o.scratch } };
}

export function distillJob(o: PlanOptions, t: TeacherPlugin, s: StudentPlugin, d: DistillerPlugin, seed: number, variant?: { name: string; overrides: Record<string, unknown> }): ScheduledJob {
  const id = `distill-${d.name}${variant ? `-${variant.name}` : ''}-${t.name}-${s.name}-seed${seed}`;
  const dOver = variant ? { ...(o.distillerOverrides ?? {}), ...variant.overrides } : o.distillerOverrides;
  return {
    after: [`teacher-${t.name}`],
    spec: {
      id, role: 'distill', teacher: comp(t, o.preset, o.teacherOverrides), student: comp(s, o.preset, o.studentOverrides), distiller: comp(d, o.preset, dOver),
      seed, dataset: o.dataset, outDir: runDir(o.out, id), backend: o.backend, steps: o.steps, plugins: o.plugins, scratch: o.scratch,
      ...(o.teacherRuntime ? { teacherRuntime: o.teacherRuntime } : {}),
    },
  };
}

/** The distillers the matrix runs by default: every registered one that does not opt out (`matrix: false`, ablation baselines). */
export function defaultMatrixDistillers(): string[] {
  return list('distiller').filter((d) => d.matrix !== false).map((d) => d.name);
}

/**
 * Every compatible registered combination: each teacher once, each student's baseline per seed, and each
 * compatible teacher × student × distiller per seed. Returns the jobs and the combinations that do not assemble.
 */
export function matrixJobs(o: PlanOptions): { jobs: ScheduledJob[]; incompatible: string[] } {
  const pick = <P extends { name: string }>(all: P[], names?: string[]) => (names ? all.filter((p) => names.includes(p.name)) : all);
  const teachers = pick(list('teacher'), o.teachers);
  const students = pick(list('student'), o.students);
  const distillers = pick(list('distiller'), o.distillers ?? defaultMatrixDistillers());
  const jobs: ScheduledJob[] = [];
  const incompatible: string[] = [];
  const cells: ScheduledJob[] = [];
  for (const d of distillers)
    for (const t of teachers)
      for (const s of students) {
        if (t.task !== d.task || s.task !== d.task) continue;
        const r = tryAssemble({ teacher: { plugin: t, preset: presetFor(t, o.preset) }, student: { plugin: s, preset: presetFor(s, o.preset) }, distiller: { plugin: d, preset: presetFor(d, o.preset) } });
        if (!r.ok) {
          incompatible.push(`${t.name} × ${s.name} × ${d.name}: ${r.problems.join('; ')}`);
          continue;
        }
        for (const seed of o.seeds) cells.push(distillJob(o, t, s, d, seed));
      }
  for (const t of teachers) jobs.push(teacherJob(o, t));
  for (const s of students) for (const seed of o.seeds) jobs.push(baselineJob(o, s, seed));
  jobs.push(...cells);
  return { jobs, incompatible };
}
