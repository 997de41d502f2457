/**
 * A distillation as one trainable model: a frozen teacher, a trainable student and the distiller's adapters.
 * The generic trainer trains it like any other model (it is a TrainingTarget); evaluation sees the student.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assemble, type Assembly } from './assemble.js';
import { AssemblyError } from './errors.js';
import { TrainError } from './train/types.js';
import type { DistillerSetupReport, DistillerModel, ForwardOutput, LossOutput, TaskModel, TrainingTarget } from './model.js';
import { createRng, type Rng } from './rng.js';
import { createModel, type CreatedModel, type CreateModelOptions } from './zoo.js';

/** A model to create by name (see createModel). */
export interface ModelRequest extends CreateModelOptions {
  name: string;
}

export interface DistillerRequest {
  name: string;
  preset?: string;
  overrides?: Record<string, unknown>;
}

export interface DistillationOptions {
  /** A created teacher, or one to create (`pretrained` defaults to true: a frozen teacher needs trained weights). */
  teacher: CreatedModel | ModelRequest;
  /** A created student, or one to create. */
  student: CreatedModel | ModelRequest;
  distiller: DistillerRequest;
  /** The run's generator: teacher, student and distiller are created from its forks 'teacher', 'student', 'distiller'. */
  rng?: Rng;
  seed?: number;
}

/** A forward pass under tf.tidy: intermediates are freed, the returned features and outputs are kept. */
export function tidyForward<B>(model: TaskModel<B>, batch: B, training: boolean): ForwardOutput {
  return tf.tidy(() => model.forward(batch, { training }) as unknown as tf.TensorContainer) as unknown as ForwardOutput;
}

/** Dispose every tensor of a forward output. */
export function disposeForward(f: ForwardOutput | null | undefined): void {
  if (f) tf.dispose([...Object.values(f.features), ...Object.values(f.outputs)]);
}

/**
 * Where a distillation's frozen teacher runs when not on the engine: an asynchronous forward pass (e.g. `@bevzoo/onnx`'s
 * OnnxTeacher on onnxruntime-node) that gives the teacher's ForwardOutput for a batch, with the same feature and
 * output names, shapes and layout (NHWC) as the engine's; the tensors it returns are the distillation's to dispose.
 */
export interface TeacherRuntime<B = unknown> {
  /** The runtime's name for logs and results, e.g. `onnx`. */
  readonly runtime: string;
  forward(batch: B): Promise<ForwardOutput>;
}

/**
 * Per-sample outputs of the frozen teacher kept across steps (`Distillation.setTeacherCache`): where a sample's teacher
 * input does not change between epochs (no augmentation, no GT-paste), its output does not either, so it is computed
 * in the first epoch and served from memory afterwards.
 */
export interface TeacherCacheOptions<B> {
  /**
   * Each sample's key, in batch order. The teacher's input for a sample must be a function of its key alone. null: this
   * batch is neither served from the cache nor stored in it.
   */
  keys(batch: B): readonly string[] | null;
  /** Memory budget of the stored outputs in bytes; samples past it are computed every time they come. */
  maxBytes: number;
}

/** What the teacher cache did in a run (`result.json`'s `train.teacher_cache`). */
export interface TeacherCacheStats {
  /** Samples whose teacher output came from the cache. */
  hits: number;
  /** Samples whose teacher output was computed. */
  computed: number;
  /** Samples held, and their bytes. */
  samples: number;
  bytes: number;
  max_bytes: number;
  /** Why nothing was stored (a teacher output that is not batch-major), where so. */
  off?: string;
}

type StoredTensor = { shape: number[]; dtype: tf.DataType; data: tf.TypedArray };
type StoredSample = { features: Record<string, StoredTensor>; outputs: Record<string, StoredTensor> };

/**
 * Why a forward output cannot be cut into the batch's samples; null if it can. Every tensor's first axis must hold the
 * samples in batch order: one row each ([B, …]), or the same number of rows each, sample-major ([B·k, …], as the LSS
 * family's per-camera tensors [B·N, …]).
 */
function notBatchMajor(out: ForwardOutput, samples: number): string | null {
  const bad = [out.features, out.outputs].flatMap((r) => Object.entries(r as Record<string, tf.Tensor>)).find(([, t]) => !(t.shape[0]! > 0 && t.shape[0]! % samples === 0));
  return bad ? `the teacher's output "${bad[0]}" has shape [${bad[1].shape.join(', ')}], whose first axis is not the batch's ${samples} samples (nor a multiple of them)` : null;
}

/** The teacher cache of one distillation: per-sample slices of the teacher's outputs, on the JavaScript heap. */
class TeacherCache<B> {
  private readonly samples = new Map<string, StoredSample>();
  readonly stats: TeacherCacheStats;

  constructor(private readonly opts: TeacherCacheOptions<B>) {
    this.stats = { hits: 0, computed: 0, samples: 0, bytes: 0, max_bytes: opts.maxBytes };
  }

  /** The batch's teacher output from the cache when every sample of it is held; null otherwise. */
  get(batch: B): ForwardOutput | null {
    const keys = this.opts.keys(batch);
    const held = keys?.map((k) => this.samples.get(k));
    if (!held?.length || held.some((h) => !h)) return null;
    // One tensor per stored tensor: a name that aliased another in the teacher's output (occ-fusion's `occ` output is
    // its `occ_logits` feature) gets the same tensor back.
    const made = new Map<StoredTensor, tf.Tensor>();
    const stack = (pick: (s: StoredSample) => Record<string, StoredTensor>) =>
      Object.fromEntries(Object.entries(pick(held[0]!)).map(([name, first]) => {
        let t = made.get(first);
        if (!t) {
          const n = first.data.length;
          const data = new (first.data.constructor as new (n: number) => tf.TypedArray)(n * held.length);
          held.forEach((h, i) => data.set(pick(h!)[name]!.data, i * n));
          t = tf.tensor(data, [held.length * first.shape[0]!, ...first.shape.slice(1)], first.dtype);
          made.set(first, t);
        }
        return [name, t];
      }));
    this.stats.hits += held.length;
    return { features: stack((s) => s.features), outputs: stack((s) => s.outputs) } as ForwardOutput;
  }

  /** Store the samples of a computed batch that are not held yet, within the budget. */
  put(batch: B, out: ForwardOutput): void {
    const keys = this.opts.keys(batch);
    if (!keys) return;
    this.stats.computed += keys.length;
    if (this.stats.off) return;
    const off = notBatchMajor(out, keys.length);
    if (off) {
      this.stats.off = off;
      return;
    }
    const parts = [out.features, out.outputs] as Record<string, tf.Tensor>[];
    const missing = keys.map((k, i) => [k, i] as const).filter(([k]) => !this.samples.has(k));
    // Each tensor once, however many names it has.
    const tensors = [...new Set(parts.flatMap((r) => Object.values(r)))];
    const bytes = tensors.reduce((a, t) => a + (t.size / keys.length) * tf.util.bytesPerElement(t.dtype), 0);
    // Nothing to store, or no room for one more sample: the tensors are not read (a full cache costs a step nothing).
    if (!missing.length || this.stats.bytes + bytes > this.opts.maxBytes) return;
    // One read of each tensor; each sample gets copies of its rows, shared by the names of one tensor.
    const data = new Map(tensors.map((t) => [t, t.dataSync()]));
    const rows = (i: number): StoredSample => {
      // A sample's rows of each tensor: [k, …] of the batch's [B·k, …] (k = 1 for a batch-major tensor).
      const own = new Map(tensors.map((t) => {
        const all = data.get(t)!, n = all.length / keys.length;
        return [t, { shape: [t.shape[0]! / keys.length, ...t.shape.slice(1)], dtype: t.dtype, data: all.slice(i * n, (i + 1) * n) as tf.TypedArray }];
      }));
      const [features, outputs] = parts.map((r) => Object.fromEntries(Object.entries(r).map(([name, t]) => [name, own.get(t)!])));
      return { features: features!, outputs: outputs! };
    };
    for (const [k, i] of missing) {
      if (this.stats.bytes + bytes > this.opts.maxBytes) break;
      this.samples.set(k, rows(i));
      this.stats.samples += 1;
      this.stats.bytes += bytes;
    }
  }
}

const isCreated = (x: CreatedModel | ModelRequest): x is CreatedModel => 'model' in x && 'plugin' in x;

/** Parameter and state names of the distillation: `student.*` and `distiller.*` (the teacher is frozen and not saved). */
const PARTS = ['student', 'distiller'] as const;

export class Distillation<B = unknown, P = unknown> implements TaskModel<B, P>, TrainingTarget<B> {
  readonly task: Assembly['task'];
  /** What the distiller's setup did (head inheritance, say); null when it had nothing to do. */
  readonly setup: DistillerSetupReport | null;
  private held: { batch: B; out: ForwardOutput } | null = null;
  private external: TeacherRuntime<B> | null = null;
  private cache: TeacherCache<B> | null = null;

  constructor(
    readonly teacher: CreatedModel<TaskModel<B, P>>,
    readonly student: CreatedModel<TaskModel<B, P>>,
    readonly distiller: { name: string; preset: string; config: unknown; model: DistillerModel<B> },
    readonly assembly: Assembly,
  ) {
    this.task = assembly.task;
    teacher.model.train(false);
    this.setup = distiller.model.setup?.({ teacher: teacher.model, student: student.model }) ?? null;
  }

  private parts(): [string, TaskModel<B, P> | DistillerModel<B>][] {
    return [[PARTS[0], this.student.model], [PARTS[1], this.distiller.model]];
  }

  namedParameters(): [string, tf.Variable][] {
    return this.parts().flatMap(([p, m]) => m.namedParameters().map(([n, v]) => [`${p}.${n}`, v] as [string, tf.Variable]));
  }

  stateDict(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.parts().flatMap(([p, m]) => Object.entries(m.stateDict()).map(([n, t]) => [`${p}.${n}`, t])));
  }

  loadStateDict(d: Record<string, tf.Tensor>, opts?: { strict?: boolean }): void {
    for (const [p, m] of this.parts()) {
      const sub: Record<string, tf.Tensor> = {};
      for (const [k, t] of Object.entries(d)) if (k.startsWith(`${p}.`)) sub[k.slice(p.length + 1)] = t;
      m.loadStateDict(sub, opts);
    }
  }

  /** Training mode of the student and the adapters; the teacher stays in evaluation mode. */
  train(on = true): void {
    this.student.model.train(on);
    this.distiller.model.train(on);
  }

  /** The student's forward pass. */
  forward(batch: B, opts: { training: boolean }): ForwardOutput {
    return this.student.model.forward(batch, opts);
  }

  /**
   * Run the frozen teacher on `runtime` (asynchronous: the trainer awaits `prepare(batch)` before each step) instead of
   * the engine; null goes back to the engine. The runtime stays the caller's (it is not disposed here).
   */
  setTeacherRuntime(runtime: TeacherRuntime<B> | null): void {
    this.releaseBatch();
    this.external = runtime;
  }

  /** Where the teacher's forward runs: `engine`, or the name of the runtime set. */
  get teacherRuntime(): string {
    return this.external?.runtime ?? 'engine';
  }

  /**
   * Keep the teacher's outputs per sample and serve them again when the same samples come back (see
   * TeacherCacheOptions); null stops it and frees what it holds. Where the runtime or the cache changes, the outputs
   * are the same: the cache stores what the teacher computed, bit for bit.
   */
  setTeacherCache(opts: TeacherCacheOptions<B> | null): void {
    this.releaseBatch();
    this.cache = opts ? new TeacherCache(opts) : null;
  }

  /**
   * Whether the teacher's outputs could be cached per sample: the teacher runs on the engine on `batch` (of `samples`
   * samples) and every tensor of its output must have the batch's samples along its first axis, one row each or the
   * same number each, sample-major ([B·k, …]). Null if so, else why not. Nothing
   * is stored or held.
   */
  teacherCacheCheck(batch: B, samples: number): string | null {
    const out = tidyForward(this.teacher.model, batch, false);
    try {
      return notBatchMajor(out, samples);
    } finally {
      disposeForward(out);
    }
  }

  /** What the teacher cache did so far; null without one. */
  get teacherCacheStats(): TeacherCacheStats | null {
    return this.cache ? { ...this.cache.stats } : null;
  }

  /** The batch's teacher output from the cache, held as the batch's; false where the cache lacks a sample of it. */
  private holdCached(batch: B): boolean {
    const out = this.cache?.get(batch);
    if (!out) return false;
    this.releaseBatch();
    this.held = { batch, out };
    return true;
  }

  /** The teacher's forward output for the batch from the runtime set (nothing to do on the engine); kept until `releaseBatch`. */
  async prepare(batch: B): Promise<void> {
    if (!this.external || this.held?.batch === batch || this.holdCached(batch)) return;
    this.releaseBatch();
    const out = await this.external.forward(batch);
    this.releaseBatch(); // nothing else may have been held meanwhile, but never leak it
    this.cache?.put(batch, out);
    this.held = { batch, out };
  }

  /** The frozen teacher's forward output for a batch, computed once (without a gradient tape when called from prepareBatch). */
  teacherOutput(batch: B): ForwardOutput {
    if (this.held?.batch !== batch && !this.holdCached(batch)) {
      if (this.external)
        throw new TrainError(`Distillation: the teacher ${this.teacher.plugin.name} runs on ${this.external.runtime} (asynchronous): expected \`await prepare(batch)\` before the step, found the batch not prepared`);
      this.releaseBatch();
      const out = tidyForward(this.teacher.model, batch, false);
      this.cache?.put(batch, out);
      this.held = { batch, out };
    }
    return this.held!.out;
  }

  /** Task loss plus distillation loss; parts: the student's, the distiller's, `loss.task` and `loss.distill`. */
  loss(out: ForwardOutput, batch: B): LossOutput {
    const task = this.student.model.loss(out, batch);
    const teacher = this.teacherOutput(batch);
    const t0 = performance.now();
    const dl = this.distiller.model.loss({ teacher, student: out, batch });
    const seconds = { distill: (performance.now() - t0) / 1000 };
    return { total: tf.add(task.total, dl.total) as tf.Scalar, parts: { ...task.parts, ...dl.parts, 'loss.task': task.total, 'loss.distill': dl.total }, seconds };
  }

  prepareBatch(batch: B): void {
    this.teacherOutput(batch);
  }

  trainingLoss(batch: B): LossOutput {
    return this.loss(this.student.model.forward(batch, { training: true }), batch);
  }

  releaseBatch(): void {
    disposeForward(this.held?.out);
    this.held = null;
  }

  /** The student's predictions. */
  predict(out: ForwardOutput, batch: B): Promise<P[]> {
    return this.student.model.predict(out, batch);
  }

  dispose(): void {
    this.releaseBatch();
    this.cache = null;
    this.student.model.dispose();
    this.teacher.model.dispose();
    this.distiller.model.dispose();
  }
}

/**
 * Create a distillation: teacher and student (created here from requests, or given), checked with `assemble()`
 * against what the distiller requires, the distiller's adapters, then the distiller's setup hook.
 */
export async function createDistillation<B = unknown, P = unknown>(opts: DistillationOptions): Promise<Distillation<B, P>> {
  const rng = opts.rng ?? createRng(opts.seed ?? 0);
  const make = (r: CreatedModel | ModelRequest, kind: 'teacher' | 'student', pretrained: boolean) =>
    isCreated(r) ? Promise.resolve(r) : createModel(r.name, { pretrained, ...r, kind, rng: r.rng ?? rng.fork(kind) });
  const teacher = (await make(opts.teacher, 'teacher', true)) as CreatedModel<TaskModel<B, P>>;
  let student: CreatedModel<TaskModel<B, P>> | undefined;
  try {
    student = (await make(opts.student, 'student', false)) as CreatedModel<TaskModel<B, P>>;
    const tp = teacher.plugin, sp = student.plugin;
    if (tp.kind !== 'teacher' || sp.kind !== 'student')
      throw new AssemblyError(`createDistillation: expected a teacher and a student, found ${tp.kind} "${tp.name}" and ${sp.kind} "${sp.name}"`, [`teacher: ${tp.kind} ${tp.name}`, `student: ${sp.kind} ${sp.name}`]);
    const assembly = assemble({
      teacher: { plugin: tp, preset: teacher.preset, overrides: teacher.overrides },
      student: { plugin: sp, preset: student.preset, overrides: student.overrides },
      distiller: { plugin: opts.distiller.name, preset: opts.distiller.preset, overrides: opts.distiller.overrides },
    });
    const d = assembly.distiller!;
    const model = d.plugin.create(d.config, { rng: rng.fork('distiller'), teacher: assembly.teacher!.features, student: assembly.student.features }) as DistillerModel<B>;
    return new Distillation<B, P>(teacher, student, { name: d.plugin.name, preset: d.preset, config: d.config, model }, assembly);
  } catch (e) {
    if (!isCreated(opts.teacher)) teacher.model.dispose();
    if (student && !isCreated(opts.student)) student.model.dispose();
    throw e;
  }
}
