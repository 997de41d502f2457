/**
 * Where a distillation's frozen teacher runs: on the engine (tfjs) or on onnxruntime-node (an OnnxTeacher exported on
 * the run's first batch). `auto` measures both on the run's first batches (a few forwards each, outputs read back) and
 * keeps onnxruntime-node where it is faster and gives the engine's outputs; a teacher that cannot be exported, or whose
 * exported outputs differ from the engine's, stays on the engine (with the reason). With a cache folder, the choice
 * (and the export it was made with) is kept per teacher weights, config, threads and the caller's key, and reused.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BevzooError, disposeForward, removeStaleTemps, tidyForward, writeFileAtomic, type Distillation, type ForwardOutput } from '@bevzoo/core';
import { compareOutputs } from './compare.js';
import type { ExportableModel, HostTensor } from './export.js';
import { OnnxTeacher, type TeacherExport } from './teacher.js';

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
  /** True where the choice (and its figures) came from the cache: measured by an earlier run with the same key. */
  reused?: boolean;
}

/**
 * Where `selectTeacherRuntime` keeps its choices: in `dir`, one entry per key (`<teacher>-<hash>.json`, and the
 * exported model `<teacher>-<hash>.onnx` where onnx was chosen), written atomically. The key is the teacher's name,
 * preset, config and weights (a hash of its state dict: the checkpoint's content), the request, threads, repeats and
 * tolerance, the tfjs backend and the CPU, and `key`: what else decides the choice for the caller (the batches'
 * shapes, say: the export fixes them).
 */
export interface TeacherRuntimeCache {
  dir: string;
  key?: Record<string, unknown>;
}

export interface SelectTeacherRuntimeOptions {
  request: TeacherRuntimeRequest;
  /** Intra-op threads of the session (the engine's threads). */
  threads?: number;
  /** Forwards timed on each runtime (default 2; the best counts). */
  repeats?: number;
  /** Largest relative difference accepted (default 1e-4 of each output's scale). */
  tolerance?: number;
  /** Keep the choice there and reuse it (no export, no timing) when the key is the same. */
  cache?: TeacherRuntimeCache;
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

type Selection = { choice: TeacherRuntimeChoice; teacher: OnnxTeacher | null };

/**
 * Choose where the distillation's teacher runs and set it (`Distillation.setTeacherRuntime`). `batches`: two training
 * batches of the run (the export is traced on the first; timings and the comparison with the engine use the second, so
 * that data baked into the file as constants would show as a difference). Returns the choice and the OnnxTeacher in
 * use (null on the engine), which the caller releases (`dispose()`) after training. Logs one line. With `cache`, a
 * choice made before with the same key is reused (its export reopened) instead of measured, and a new one is kept.
 */
export async function selectTeacherRuntime<B>(
  d: Distillation<B, unknown>,
  batches: readonly [B, B],
  opts: SelectTeacherRuntimeOptions,
): Promise<Selection> {
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
  if (!opts.cache) return measure(d, batches, { what, request, threads, repeats, tolerance, log });
  const key = {
    teacher: name, preset: d.teacher.preset, config: d.teacher.config ?? null, weights: weightsHash(d.teacher.model),
    request, threads, repeats, tolerance, backend: tf.getBackend(), cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`, ...opts.cache.key,
  };
  const base = join(opts.cache.dir, `${name}-${createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16)}`);
  await removeStaleTemps(opts.cache.dir);
  const reused = await reuse(d, `${base}.json`, key, { what, name, threads, log });
  if (reused) return reused;
  const sel = await measure(d, batches, { what, request, threads, repeats, tolerance, log });
  const entry: CacheEntry = { format: CACHE_FORMAT, key, choice: sel.choice, ...(sel.teacher ? { onnx: { file: `${basename(base)}.onnx`, inputs: sel.teacher.exported.inputs, outputs: sel.teacher.exported.outputs } } : {}) };
  try {
    if (sel.teacher) await writeFileAtomic(`${base}.onnx`, [sel.teacher.exported.bytes]);
    await writeFileAtomic(`${base}.json`, `${JSON.stringify(entry, null, 1)}\n`);
  } catch (e) {
    log(`${what}: the choice is not kept for later runs: ${(e as Error).message}`);
  }
  return sel;
}

const CACHE_FORMAT = 'bevzoo.teacher-runtime.v1';

/** A cache entry: the key in full (checked against the hash's), the choice, and the export onnx was chosen with (its file beside the entry). */
interface CacheEntry {
  format: typeof CACHE_FORMAT;
  key: Record<string, unknown>;
  choice: TeacherRuntimeChoice;
  onnx?: { file: string } & Omit<TeacherExport, 'bytes'>;
}

/** SHA-256 of a model's state dict (names, dtypes, shapes and values in name order): the content of its weights. */
export function weightsHash(model: Pick<ExportableModel, 'stateDict'>): string {
  const h = createHash('sha256');
  for (const [n, t] of Object.entries(model.stateDict()).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const v = t.dataSync() as Float32Array | Int32Array | Uint8Array;
    h.update(`${n}\0${t.dtype}\0${t.shape.join('x')}\0`);
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return h.digest('hex');
}

/** The choice kept in `file` for `key`, set on `d` (its export's session opened); null where there is none or it cannot serve (said in the log). */
async function reuse<B>(d: Distillation<B, unknown>, file: string, key: Record<string, unknown>, o: { what: string; name: string; threads: number; log: (l: string) => void }): Promise<Selection | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') o.log(`${o.what}: cannot read the kept choice ${file} (${(e as Error).message}): measuring again`);
    return null;
  }
  let entry: CacheEntry;
  try {
    entry = JSON.parse(text) as CacheEntry;
    if (entry.format !== CACHE_FORMAT) throw new Error(`expected format ${CACHE_FORMAT}, found ${JSON.stringify(entry.format)}`);
    if (JSON.stringify(entry.key) !== JSON.stringify(key)) throw new Error('its key differs from this run\'s');
    if (entry.choice?.used !== 'engine' && !(entry.choice?.used === 'onnx' && entry.onnx)) throw new Error('expected a choice (engine, or onnx with its export)');
  } catch (e) {
    o.log(`${o.what}: ${file} holds no usable choice (${(e as Error).message}): measuring again`);
    return null;
  }
  const c = entry.choice;
  const earlier = `the choice of an earlier run with the same teacher weights, config and threads, reused (${file})`;
  if (c.used === 'engine') {
    o.log(`${o.what}: forward on the engine: ${c.reason ?? 'measured'}; ${earlier}`);
    return { choice: { ...c, reused: true }, teacher: null };
  }
  const onnxFile = join(dirname(file), entry.onnx!.file);
  let teacher: OnnxTeacher;
  try {
    teacher = await OnnxTeacher.open(d.teacher.model, { bytes: await readFile(onnxFile), inputs: entry.onnx!.inputs, outputs: entry.onnx!.outputs }, { name: o.name, threads: o.threads });
  } catch (e) {
    o.log(`${o.what}: the kept export ${onnxFile} does not open (${(e as Error).message}): measuring again`);
    return null;
  }
  d.setTeacherRuntime(teacher);
  o.log(`${o.what}: forward ${ms(c.engine_ms!)} on the engine, ${ms(c.onnx_ms!)} on onnxruntime-node (${o.threads} thread${o.threads === 1 ? '' : 's'}): onnx; ${earlier}`);
  return { choice: { ...c, reused: true }, teacher };
}

/** Export the teacher, time both runtimes, compare their outputs and choose (see `selectTeacherRuntime`). */
async function measure<B>(
  d: Distillation<B, unknown>,
  batches: readonly [B, B],
  o: { what: string; request: Exclude<TeacherRuntimeRequest, 'engine'>; threads: number; repeats: number; tolerance: number; log: (l: string) => void },
): Promise<Selection> {
  const { what, request, threads, repeats, tolerance, log } = o;
  const name = d.teacher.plugin.name;
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
