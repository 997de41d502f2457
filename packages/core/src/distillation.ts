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

const isCreated = (x: CreatedModel | ModelRequest): x is CreatedModel => 'model' in x && 'plugin' in x;

/** Parameter and state names of the distillation: `student.*` and `distiller.*` (the teacher is frozen and not saved). */
const PARTS = ['student', 'distiller'] as const;

export class Distillation<B = unknown, P = unknown> implements TaskModel<B, P>, TrainingTarget<B> {
  readonly task: Assembly['task'];
  /** What the distiller's setup did (head inheritance, say); null when it had nothing to do. */
  readonly setup: DistillerSetupReport | null;
  private held: { batch: B; out: ForwardOutput } | null = null;
  private external: TeacherRuntime<B> | null = null;

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

  /** The teacher's forward output for the batch from the runtime set (nothing to do on the engine); kept until `releaseBatch`. */
  async prepare(batch: B): Promise<void> {
    if (!this.external || this.held?.batch === batch) return;
    this.releaseBatch();
    const out = await this.external.forward(batch);
    this.releaseBatch(); // nothing else may have been held meanwhile, but never leak it
    this.held = { batch, out };
  }

  /** The frozen teacher's forward output for a batch, computed once (without a gradient tape when called from prepareBatch). */
  teacherOutput(batch: B): ForwardOutput {
    if (this.held?.batch !== batch) {
      if (this.external)
        throw new TrainError(`Distillation: the teacher ${this.teacher.plugin.name} runs on ${this.external.runtime} (asynchronous): expected \`await prepare(batch)\` before the step, found the batch not prepared`);
      this.releaseBatch();
      this.held = { batch, out: tidyForward(this.teacher.model, batch, false) };
    }
    return this.held.out;
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
