import { isAbsolute, resolve } from 'node:path';
import type { ParsedArgs } from '../args.js';
import { int, optStr } from '../args.js';
import { parseOverrides } from '@bevzoo/core';
import type { DatasetChoice } from './dataset.js';
import type { PlanOptions } from './plan.js';
import type { EngineBackend } from '@bevzoo/engine';
import type { TeacherRuntimeRequest } from '@bevzoo/onnx';

/** The values of `--backend` (checked by the option table in commands/specs.ts). */
export const BACKENDS = ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const satisfies readonly EngineBackend[];

/** Dataset flags shared by train, distill, matrix and ablate. */
export function datasetChoice(args: ParsedArgs, preset: string): DatasetChoice {
  const n = (k: string) => (args.flags[k] !== undefined ? int(args, k, 0) : undefined);
  return {
    dataroot: optStr(args, 'dataroot') ?? optStr(args, 'data'),
    version: optStr(args, 'version'),
    trainSplit: optStr(args, 'train-split'),
    valSplit: optStr(args, 'val-split'),
    gts: optStr(args, 'gts'),
    evalConfig: optStr(args, 'eval-config'),
    synthPreset: optStr(args, 'data-preset') ?? preset,
    synthSeed: n('data-seed') ?? 0,
    dataDir: optStr(args, 'data-dir'),
    maxTrain: n('max-train'),
    maxVal: n('max-val'),
  };
}

/**
 * The values of `--teacher-runtime` (where a distillation's frozen teacher runs): auto (the default: onnxruntime-node
 * where it is faster than the engine on the run's first batches), onnx, engine. A type-only import of @bevzoo/onnx, so
 * that parsing a command line does not load onnxruntime-node.
 */
export const TEACHER_RUNTIMES = ['auto', 'onnx', 'engine'] as const satisfies readonly TeacherRuntimeRequest[];

/** `--teacher-runtime`, where given (checked by the option table). */
export function teacherRuntimeOf(args: ParsedArgs): TeacherRuntimeRequest | undefined {
  return optStr(args, 'teacher-runtime') as TeacherRuntimeRequest | undefined;
}

export function backendOf(args: ParsedArgs): EngineBackend {
  return (optStr(args, 'backend') ?? 'auto') as EngineBackend; // one of BACKENDS: the parser checked it
}

/** `--set k=v` applies to the trained model; `--teacher-set`, `--student-set`, `--distiller-set` to one component. */
export function overridesOf(args: ParsedArgs, list: string): Record<string, unknown> | undefined {
  const v = args.lists[list];
  return v?.length ? parseOverrides(v) : undefined;
}

export function stepsOf(args: ParsedArgs): number | undefined {
  return args.flags.steps !== undefined ? int(args, 'steps', 0) : undefined;
}

/** `--plugin` values for child processes: paths made absolute (the children may run elsewhere), package names kept. */
export function pluginsOf(args: ParsedArgs): string[] {
  return (args.lists.plugin ?? []).map((p) => (p.startsWith('.') || isAbsolute(p) ? resolve(p) : p));
}

/** The flags every planning command (train, distill, matrix, ablate) reads the same way, for a given preset. */
export function commonPlanOptions(args: ParsedArgs, preset: string): Omit<PlanOptions, 'preset' | 'seeds' | 'out'> {
  return {
    dataset: datasetChoice(args, preset),
    backend: backendOf(args),
    teacherRuntime: teacherRuntimeOf(args),
    steps: stepsOf(args),
    teacherOverrides: overridesOf(args, 'teacher-set'),
    studentOverrides: overridesOf(args, 'student-set'),
    distillerOverrides: overridesOf(args, 'distiller-set'),
    plugins: pluginsOf(args),
    retrainTeachers: !!args.flags['retrain-teachers'],
    scratch: !!args.flags.scratch,
  };
}
