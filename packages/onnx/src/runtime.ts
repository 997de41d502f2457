/**
 * Where a distillation's frozen teacher runs: on the engine (tfjs) or on onnxruntime-node (an OnnxTeacher exported on
 * the run's first batch). `auto` measures both on the run's first batches (a few forwards each, outputs read back) and
 * keeps onnxruntime-node where it is faster and gives the engine's outputs; a teacher that cannot be exported, or whose
 * exported outputs differ from the engine's, stays on the engine (with the reason).
 */
import { BevzooError, disposeForward, tidyForward, type Distillation, type ForwardOutput } from '@bevzoo/core';
import { compareOutputs } from './compare.js';
import type { HostTensor } from './export.js';
import { OnnxTeacher } from './teacher.js';

/** `--teacher-runtime`: onnx (onnxruntime-node, an error if the teacher cannot run there), engine, or auto (the faster). */
export const TEACHER_RUNTIMES = ['auto', 'onnx', 'engine'] as const;
export type TeacherRuntimeRequest = (typeof TEACHER_RUNTIMES)[number];

/** What was chosen and why (a run's `result.json`: `train.teacher_runtime`). */
export interface TeacherRuntimeChoice {
  /** Where the teacher's forward passes of the training ran. */
  used: 'onnx' | 'engine';
  requested: TeacherRuntimeRequest;
  /** Milliseconds per teacher forward, outputs read back (the best of the forwards measured). */
  engine_ms?: number;
  onnx_ms?: number;
  /** onnxruntime-node's intra-op threads. */
  threads?: number;
  /** The largest difference of an onnxruntime-node output from the engine's, relative to its scale (on a batch other than the one traced, where the run has two). */
  max_rel_diff?: number;
  /** Why the engine where onnx was asked for or measured (export failure, a difference, slower). */
  reason?: string;
}

export interface SelectTeacherRuntimeOptions {
  request: TeacherRuntimeRequest;
  /** Intra-op threads of the session (the engine's threads). */
  threads?: number;
  /** Forwards timed on each runtime (default 2; the best counts). */
  repeats?: number;
  /** Largest relative difference accepted (default 1e-4 of each output's scale). */
  tolerance?: number;
  log?: (line: string) => void;
}

/** An error of `--teacher-runtime onnx` (the teacher cannot run on onnxruntime-node). */
export class TeacherRuntimeError extends BevzooError {}

const host = (f: ForwardOutput): Record<string, HostTensor> => {
  const out: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries({ ...f.features, ...f.outputs }))
    out[k] = { data: t.dataSync() as HostTensor['data'], dims: [...t.shape], dtype: t.dtype === 'int32' ? 'int32' : t.dtype === 'bool' ? 'bool' : 'float32' };
  return out;
};

const ms = (x: number) => `${x < 100 ? x.toFixed(1) : x.toFixed(0)} ms`;

/**
 * Choose where the distillation's teacher runs and set it (`Distillation.setTeacherRuntime`). `batches`: two training
 * batches of the run (the export is traced on the first; timings and the comparison with the engine use the second, so
 * that data baked into the file as constants would show as a difference). Returns the choice and the OnnxTeacher in
 * use (null on the engine), which the caller releases (`dispose()`) after training. Logs one line.
 */
export async function selectTeacherRuntime<B>(
  d: Distillation<B, unknown>,
  batches: readonly [B, B],
  opts: SelectTeacherRuntimeOptions,
): Promise<{ choice: TeacherRuntimeChoice; teacher: OnnxTeacher | null }> {
  const log = opts.log ?? (() => {});
  const name = d.teacher.plugin.name;
  const what = `teacher ${name} (${d.teacher.preset})`;
  const request = opts.request;
  if (!(TEACHER_RUNTIMES as readonly string[]).includes(request)) throw new TeacherRuntimeError(`${what}: teacher runtime: expected one of ${TEACHER_RUNTIMES.join(', ')}, found ${JSON.stringify(request)}`);
  d.setTeacherRuntime(null);
  if (request === 'engine') {
    log(`${what}: forward on the engine (--teacher-runtime engine)`);
    return { choice: { used: 'engine', requested: request }, teacher: null };
  }
  const threads = opts.threads ?? 1;
  const repeats = Math.max(1, opts.repeats ?? 2);
  const tolerance = opts.tolerance ?? 1e-4;
  const engineOnly = (reason: string, extra: Partial<TeacherRuntimeChoice> = {}) => {
    if (request === 'onnx') throw new TeacherRuntimeError(`${what}: --teacher-runtime onnx: ${reason}`);
    log(`${what}: forward on the engine: ${reason}`);
    return { choice: { used: 'engine' as const, requested: request, ...extra, reason }, teacher: null };
  };
  let teacher: OnnxTeacher;
  try {
    teacher = await OnnxTeacher.create(d.teacher.model, batches[0], { name, threads });
  } catch (e) {
    return engineOnly(`it cannot run on onnxruntime-node (${(e as Error).message})`);
  }
  let measured: Required<Pick<TeacherRuntimeChoice, 'engine_ms' | 'onnx_ms' | 'threads' | 'max_rel_diff'>>;
  let worst: { name: string; relative: number };
  let engineMs = Infinity;
  let onnxMs = Infinity;
  try {
    const probe = batches[1];
    // The engine: `repeats` forwards (the first after the export's trace, so warm), outputs read back.
    let reference: Record<string, HostTensor> = {};
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      const out = tidyForward(d.teacher.model, probe, false);
      try {
        reference = host(out);
      } finally {
        disposeForward(out);
      }
      engineMs = Math.min(engineMs, performance.now() - t0);
    }
    // onnxruntime-node: the same (host work for the feeds, the session's run, its outputs made tensors and read back).
    let actual: Record<string, HostTensor> = {};
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      const out = await teacher.forward(probe);
      try {
        actual = host(out);
      } finally {
        disposeForward(out);
      }
      onnxMs = Math.min(onnxMs, performance.now() - t0);
    }
    worst = compareOutputs(actual, reference).reduce((a, b) => (b.relative > a.relative ? b : a));
    measured = { engine_ms: Number(engineMs.toPrecision(3)), onnx_ms: Number(onnxMs.toPrecision(3)), threads, max_rel_diff: Number(worst.relative.toPrecision(3)) };
  } catch (e) {
    await teacher.dispose();
    return engineOnly(`onnxruntime-node failed on a training batch (${(e as Error).message})`);
  }
  const timings = `${ms(engineMs)} on the engine, ${ms(onnxMs)} on onnxruntime-node (${threads} thread${threads === 1 ? '' : 's'})`;
  if (!(worst.relative <= tolerance)) {
    await teacher.dispose();
    return engineOnly(`onnxruntime-node's ${worst.name} differs from the engine's by ${worst.relative.toExponential(2)} of its scale (expected ≤ ${tolerance}); forward ${timings}`, measured);
  }
  if (request === 'auto' && !(onnxMs < engineMs)) {
    await teacher.dispose();
    log(`${what}: forward ${timings}: engine (auto: onnxruntime-node is not faster)`);
    return { choice: { used: 'engine', requested: request, ...measured, reason: 'onnxruntime-node is not faster' }, teacher: null };
  }
  d.setTeacherRuntime(teacher);
  log(`${what}: forward ${timings}, outputs within ${worst.relative.toExponential(1)} of the engine's: onnx (${request === 'auto' ? `auto, ${(engineMs / onnxMs).toFixed(2)}× faster` : '--teacher-runtime onnx'})`);
  return { choice: { used: 'onnx', requested: request, ...measured }, teacher };
}
