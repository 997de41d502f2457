import { closeSync, existsSync, openSync, readFileSync, promises as fsp, writeSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Rng } from '../rng.js';
import { AdamW, type AdamWConfig } from './adamw.js';
import { fileError, makeDir, removeStaleTemps, writeFileAtomic } from './atomic.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta, type TrainerMeta } from './checkpoint.js';
import { clipGradNorm, gradNorm } from './clip.js';
import { Ema, type EmaConfig } from './ema.js';
import { isTaskModel, isTrainingTarget, type LossOutput, type TrainingTarget } from '../model.js';
import { createProgress, type ProgressOptions } from '../progress.js';
import { lrAt, type ScheduleConfig } from './schedule.js';
import { CheckpointError, TrainError, type TrainableModel } from './types.js';

/** What the loss function gets besides the batch. */
export interface StepContext {
  /** Updates completed before this one (0-based index of this update). */
  step: number;
  epoch: number;
  /** This step's generator: createRng(seed).fork(step), the same after a resume. */
  rng: Rng;
}

/** Batches: any (async) iterable, re-iterated for each epoch, or a function giving epoch e's batches. */
export type BatchSource<B> = Iterable<B> | AsyncIterable<B> | ((epoch: number) => Iterable<B> | AsyncIterable<B>);

export interface ClipConfig {
  maxNorm: number;
  normType?: number;
}

export interface CheckpointConfig {
  dir: string;
  /** Save every N steps (and at the end). */
  every: number;
  /** Keep only the newest K step checkpoints in `dir` (default: all). */
  keepLast?: number;
}

export interface TrainOptions<B> {
  /**
   * The model: its parameters are trained. A `TrainingTarget` (e.g. a distillation) supplies its own loss and its
   * per-batch work outside the gradient tape; a `TaskModel` trains on `loss(forward(batch))`.
   */
  model: TrainableModel;
  /** The parameters to train (default: the model's trainable parameters). */
  params?: [string, tf.Variable][];
  /** The loss of one batch (default: the model's `trainingLoss`, or a task model's `loss(forward(batch))`). */
  lossFn?: (batch: B, ctx: StepContext) => LossOutput;
  batches: BatchSource<B>;
  /** Total optimizer steps of the run (a resumed run continues up to this); the schedule spans it. */
  steps: number;
  /** Stop this session after this many completed steps (≤ steps), e.g. to split a run; default steps. */
  until?: number;
  optimizer: AdamWConfig;
  /** Default constant. */
  schedule?: ScheduleConfig;
  /** Max global gradient norm (a number) or a clip config; null/undefined: no clipping (the norm is still logged). */
  clip?: number | ClipConfig | null;
  ema?: EmaConfig;
  checkpoint?: CheckpointConfig;
  /** JSONL log file (appended; one line per step). */
  log?: string;
  seed?: number;
  /** Stored as JSON in each checkpoint's metadata. */
  config?: unknown;
  /**
   * Resume from this checkpoint file, or 'latest' (the newest in checkpoint.dir; none there = fresh start; temporary
   * files that a killed run left there are removed first).
   */
  resume?: string;
  /** On resume, consume the batches the saved run had already used in its current epoch (default true). */
  skipConsumedBatches?: boolean;
  /** Progress on stderr (default true): a cli-progress bar on a TTY, plain lines otherwise (see core's createProgress). */
  progress?: boolean | Pick<ProgressOptions, 'stream' | 'intervalMs'>;
  /** Called after each step; the time it takes (an evaluation, say) is not counted as training time. */
  onStep?: (rec: StepRecord) => void | Promise<void>;
}

/** One line of the JSONL log. */
export interface StepRecord {
  /** Updates completed (1 after the first). */
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  losses: Record<string, number>;
  grad_norm: number;
  /** Seconds of training so far, over resumes (time spent in `onStep` left out). */
  time: number;
  step_time: number;
  /**
   * Where the step's seconds went: `data` (waiting for the batch), `teacher` (a frozen teacher's forward, `prepare` and
   * `prepareBatch`), `forward` (the model's forward and task loss), `distill` (a distiller's loss, where the loss reports
   * it), `backward` (the gradients) and `optimizer` (clipping, the update, EMA, reading the losses). `data` is not part
   * of `step_time`.
   */
  phases: StepPhases;
}

/** Seconds of one training step by phase (see `StepRecord.phases`). */
export interface StepPhases {
  data: number;
  teacher: number;
  forward: number;
  distill: number;
  backward: number;
  optimizer: number;
}

export interface TrainResult {
  step: number;
  epoch: number;
  last: StepRecord | null;
  /** Seconds of training over every session of the run (resumes included; `onStep` time left out). */
  seconds: number;
  /** Loss of the run's first and latest step, over resumes (null before any step). */
  firstLoss: number | null;
  lastLoss: number | null;
  /** The step this session resumed from (0: a fresh start). */
  resumedFrom: number;
  checkpoints: string[];
  /** True when the batches ran out before `steps`. */
  exhausted: boolean;
}

/**
 * Keep the records of a JSONL file with `step` ≤ the given step, dropping empty lines and lines cut by an
 * interruption; the file is rewritten (`writeFileAtomic`) and the kept records returned. No file: [].
 */
export async function keepJsonlUntil<T extends { step: number }>(file: string, step: number): Promise<T[]> {
  if (!existsSync(file)) return [];
  const kept: { line: string; record: T }[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      const record = JSON.parse(line) as T;
      if (record.step <= step) kept.push({ line, record });
    } catch {
      // an empty line, or one cut by the interruption
    }
  }
  await writeFileAtomic(file, kept.map((k) => `${k.line}\n`).join(''));
  return kept.map((k) => k.record);
}

const CHECKPOINT_FILE = /^step_(\d+)\.safetensors$/;

/** Checkpoint file name of a step: step_0000100.safetensors. */
export function checkpointName(step: number): string {
  return `step_${String(step).padStart(7, '0')}.safetensors`;
}

/** The step of a file named by `checkpointName`, or null for any other name. */
export function checkpointStep(file: string): number | null {
  const m = CHECKPOINT_FILE.exec(path.basename(file));
  return m ? Number(m[1]) : null;
}

/** The newest step checkpoint in a directory, or null. */
export async function latestCheckpoint(dir: string): Promise<string | null> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return null;
  }
  const steps = names.filter((n) => checkpointStep(n) !== null).sort((a, b) => checkpointStep(b)! - checkpointStep(a)!);
  return steps.length ? path.join(dir, steps[0]!) : null;
}

type AnyIterator<B> = Iterator<B> | AsyncIterator<B>;

/** Epoch-aware batch reader. */
class BatchStream<B> {
  private it: AnyIterator<B> | null = null;
  constructor(private readonly source: BatchSource<B>, public epoch: number, public inEpoch: number) {}

  private open(): AnyIterator<B> {
    const src = typeof this.source === 'function' ? this.source(this.epoch) : this.source;
    if (src && typeof (src as AsyncIterable<B>)[Symbol.asyncIterator] === 'function') return (src as AsyncIterable<B>)[Symbol.asyncIterator]();
    if (src && typeof (src as Iterable<B>)[Symbol.iterator] === 'function') return (src as Iterable<B>)[Symbol.iterator]();
    throw new TrainError(`trainer: batches for epoch ${this.epoch} must be an iterable or async iterable, found ${typeof src}`);
  }

  /** The next batch (moving to the next epoch at the end of one), or null when an epoch yields nothing. */
  async next(): Promise<{ value: B } | null> {
    for (;;) {
      if (!this.it) this.it = this.open();
      const r = await this.it.next();
      if (!r.done) {
        this.inEpoch++;
        return { value: r.value };
      }
      this.it = null;
      if (this.inEpoch === 0) return null;
      this.epoch++;
      this.inEpoch = 0;
    }
  }

  /** Consume n batches of the current epoch without using them (replaying a resumed run's position). */
  async skip(n: number): Promise<void> {
    const target = this.inEpoch;
    this.inEpoch = 0;
    this.it = this.open();
    for (let i = 0; i < n; i++) {
      const r = await this.it.next();
      if (r.done) throw new TrainError(`trainer: resuming needs ${target} batches of epoch ${this.epoch} to skip, the source has only ${i}`);
      this.inEpoch++;
    }
  }
}

/**
 * The training loop: loss → tf.variableGrads over the trainable parameters → clip by global norm → AdamW at the
 * scheduled lr → EMA; a JSONL line per step, a progress display, safetensors checkpoints, resume.
 */
export class Trainer<B> {
  readonly optimizer: AdamW;
  readonly ema: Ema | null;
  readonly params: [string, tf.Variable][];
  readonly seed: number;
  /** Updates completed. */
  step = 0;
  epoch = 0;
  stepInEpoch = 0;
  /** Seconds trained before this session (from a checkpoint). */
  private elapsedBefore = 0;
  /** Loss of the run's first and latest step (carried over resumes in the checkpoint). */
  private firstLoss: number | null = null;
  private lastLoss: number | null = null;
  private sessionStart = performance.now();
  private readonly opts: TrainOptions<B>;
  private readonly clip: ClipConfig | null;
  private readonly lossFn: (batch: B, ctx: StepContext) => LossOutput;
  private readonly target: TrainingTarget<B> | null;

  constructor(opts: TrainOptions<B>) {
    if (!(Number.isInteger(opts.steps) && opts.steps >= 0)) throw new TrainError(`Trainer: steps must be a non-negative integer, found ${opts.steps}`);
    if (opts.checkpoint && !(Number.isInteger(opts.checkpoint.every) && opts.checkpoint.every > 0))
      throw new TrainError(`Trainer: checkpoint.every must be a positive integer, found ${opts.checkpoint.every}`);
    if (!tf.getGradient('Add'))
      throw new TrainError("Trainer: tfjs has no gradient functions registered (tfjs-core alone registers none); import '@bevzoo/engine' or '@tensorflow/tfjs-core/dist/register_all_gradients' first");
    this.opts = opts;
    this.target = isTrainingTarget<B>(opts.model) ? opts.model : null;
    this.lossFn = opts.lossFn ?? defaultLossFn(opts.model);
    this.seed = opts.seed ?? 0;
    this.params = opts.params ?? opts.model.namedParameters().filter(([, v]) => v.trainable);
    if (this.params.length === 0) throw new TrainError('Trainer: expected at least one trainable parameter, found none');
    this.clip = opts.clip == null ? null : typeof opts.clip === 'number' ? { maxNorm: opts.clip } : opts.clip;
    this.optimizer = new AdamW(this.params, opts.optimizer);
    this.ema = opts.ema ? new Ema(this.params, opts.ema) : null;
  }

  /** Seconds trained, including before a resume (time in `onStep` left out). */
  elapsed(): number {
    return this.elapsedBefore + (performance.now() - this.sessionStart) / 1000;
  }

  /** The learning rate of the next update. */
  currentLr(): number {
    return lrAt(this.opts.schedule ?? { type: 'constant' }, this.opts.optimizer.lr, this.step, this.opts.steps);
  }

  /**
   * One update on one batch. Leaves no tensor behind. A model with an asynchronous `prepare` (a frozen teacher on
   * onnxruntime, say) must be prepared first: use `trainStepAsync`, which `run()` does.
   */
  trainStep(batch: B): StepRecord {
    return this.stepOn(batch, performance.now());
  }

  /** `prepare` (awaited, where the model has it), then one update on the batch (`trainStep`); the step's time includes both. */
  async trainStepAsync(batch: B, dataSeconds = 0): Promise<StepRecord> {
    const t0 = performance.now();
    if (this.target?.prepare) {
      try {
        await this.target.prepare(batch);
      } catch (e) {
        this.target.releaseBatch?.();
        throw e;
      }
    }
    return this.stepOn(batch, t0, dataSeconds);
  }

  private stepOn(batch: B, t0: number, dataSeconds = 0): StepRecord {
    const lr = this.currentLr();
    const ctx: StepContext = { step: this.step, epoch: this.epoch, rng: createRng(this.seed).fork(this.step) };
    this.target?.prepareBatch?.(batch); // outside the gradient tape (a frozen teacher's forward, say)
    const tGrad = performance.now();
    const phases: StepPhases = { data: dataSeconds, teacher: (tGrad - t0) / 1000, forward: 0, distill: 0, backward: 0, optimizer: 0 };
    try {
      let parts: Record<string, tf.Scalar> = {};
      const { value, grads } = tf.variableGrads(() => {
        const tf0 = performance.now();
        const out = this.lossFn(batch, ctx);
        if (!out || !(out.total instanceof tf.Tensor) || out.total.rank !== 0)
          throw new TrainError(`Trainer: lossFn must return { total: scalar tensor }, found ${out?.total instanceof tf.Tensor ? `a tensor of shape [${out.total.shape}]` : typeof out?.total}`);
        parts = out.parts ?? {}; // tolerated missing, though LossOutput requires it
        for (const p of Object.values(parts)) tf.keep(p);
        phases.distill = out.seconds?.distill ?? 0;
        phases.forward = (performance.now() - tf0) / 1000 - phases.distill;
        return out.total;
      }, this.params.map(([, v]) => v));
      return this.update(value, grads, parts, lr, t0, phases, tGrad);
    } finally {
      this.target?.releaseBatch?.();
    }
  }

  /** Clip, step the optimiser and make the step's record; frees the loss, its parts and the gradients. */
  private update(value: tf.Scalar, grads: tf.NamedTensorMap, parts: Record<string, tf.Scalar>, lr: number, t0: number, phases: StepPhases, tGrad: number): StepRecord {
    const tOpt = performance.now();
    phases.backward = (tOpt - tGrad) / 1000 - phases.forward - phases.distill;
    const toDispose: tf.Tensor[] = [value, ...Object.values(parts)];
    try {
      const byName = new Map<string, tf.Tensor>();
      for (const [n, v] of this.params) {
        const g = grads[v.name];
        if (g) byName.set(n, g);
      }
      toDispose.push(...byName.values());
      let norm: number;
      if (this.clip) {
        const r = clipGradNorm(byName, this.clip.maxNorm, this.clip.normType ?? 2);
        norm = r.totalNorm;
        toDispose.push(...r.grads.values());
        this.optimizer.step(r.grads, lr);
      } else {
        norm = gradNorm([...byName.values()]);
        this.optimizer.step(byName, lr);
      }
      this.ema?.update();
      this.step++;
      const losses: Record<string, number> = {};
      for (const [k, p] of Object.entries(parts)) losses[k] = p.dataSync()[0]!;
      const loss = value.dataSync()[0]!;
      const now = performance.now();
      phases.optimizer = (now - tOpt) / 1000;
      return {
        step: this.step,
        epoch: this.epoch,
        lr,
        loss,
        losses,
        grad_norm: norm,
        time: this.elapsed(),
        step_time: (now - t0) / 1000,
        phases: roundPhases(phases),
      };
    } finally {
      for (const g of Object.values(grads)) g?.dispose();
      for (const t of toDispose) t.dispose();
    }
  }

  private meta(): TrainerMeta {
    return {
      step: this.step, epoch: this.epoch, stepInEpoch: this.stepInEpoch, seed: this.seed, rng: { seed: this.seed, step: this.step }, elapsed: this.elapsed(),
      ...(this.firstLoss !== null && this.lastLoss !== null ? { firstLoss: this.firstLoss, lastLoss: this.lastLoss } : {}),
    };
  }

  /** Save model + optimizer + EMA + trainer state (default: checkpoint.dir/step_N.safetensors). Returns the path. */
  async save(file?: string): Promise<string> {
    const target = file ?? (this.opts.checkpoint ? path.join(this.opts.checkpoint.dir, checkpointName(this.step)) : null);
    if (!target) throw new TrainError('Trainer.save: expected a file or a checkpoint.dir, found neither');
    await saveCheckpoint(target, { model: this.opts.model, optimizer: this.optimizer, ema: this.ema ?? undefined, trainer: this.meta(), config: this.opts.config });
    return target;
  }

  /** Restore model, optimizer, EMA and position from a checkpoint written by `save`. */
  async load(file: string): Promise<CheckpointMeta> {
    const meta = await loadCheckpoint(file, { model: this.opts.model, optimizer: this.optimizer, ema: this.ema ?? undefined });
    if (!meta.trainer) throw new CheckpointError(`${file}: expected trainer state (__metadata__.trainer), found none`, { file, field: 'trainer' });
    this.step = meta.trainer.step;
    this.epoch = meta.trainer.epoch;
    this.stepInEpoch = meta.trainer.stepInEpoch;
    this.elapsedBefore = meta.trainer.elapsed;
    this.firstLoss = meta.trainer.firstLoss ?? null;
    this.lastLoss = meta.trainer.lastLoss ?? null;
    this.sessionStart = performance.now();
    return meta;
  }

  /** Train until `until` (default `steps`) updates are done, or the batches run out. */
  async run(): Promise<TrainResult> {
    const o = this.opts;
    if (o.resume) {
      if (o.resume === 'latest' && !o.checkpoint) throw new TrainError("Trainer: resume: 'latest' needs checkpoint.dir");
      if (o.checkpoint) await removeStaleTemps(o.checkpoint.dir);
      const file = o.resume === 'latest' ? await latestCheckpoint(o.checkpoint!.dir) : o.resume;
      if (file) await this.load(file);
    }
    o.model.train(true);
    const stream = new BatchStream(o.batches, this.epoch, this.stepInEpoch);
    if ((o.skipConsumedBatches ?? true) && this.stepInEpoch > 0) await stream.skip(this.stepInEpoch);
    const startStep = this.step;
    const stop = Math.min(o.until ?? o.steps, o.steps);
    let logFd: number | null = null;
    const logFile = o.log;
    if (logFile) {
      await makeDir(path.dirname(path.resolve(logFile)));
      // A fresh run starts a fresh log; a resumed one keeps the lines up to the step it resumed from (an interrupted
      // run may have logged steps after its last checkpoint, which are trained again).
      if (startStep > 0) await keepJsonlUntil(logFile, startStep);
      try {
        logFd = openSync(logFile, startStep === 0 ? 'w' : 'a');
      } catch (e) {
        throw fileError('write', logFile, e);
      }
    }
    const checkpoints: string[] = [];
    let last: StepRecord | null = null;
    let exhausted = false;
    let savedAt = -1;
    const saveNow = async (): Promise<void> => {
      checkpoints.push(await this.save());
      savedAt = this.step;
      await this.prune();
    };
    // Made here, so that the `finally` below always ends it (on a TTY its redraw timer would keep the process alive).
    const progress =
      o.progress === false || startStep >= stop
        ? null
        : createProgress({ total: stop - startStep, label: 'train', unit: 'steps', ...(typeof o.progress === 'object' ? o.progress : {}) });
    try {
      while (this.step < stop) {
        const tData = performance.now();
        const b = await stream.next();
        if (b === null) {
          exhausted = true;
          break;
        }
        this.epoch = stream.epoch;
        this.stepInEpoch = stream.inEpoch;
        last = await this.trainStepAsync(b.value, (performance.now() - tData) / 1000);
        this.firstLoss ??= last.loss;
        this.lastLoss = last.loss;
        if (logFd !== null) {
          try {
            writeSync(logFd, `${JSON.stringify(last)}\n`);
          } catch (e) {
            throw fileError('write', logFile!, e);
          }
        }
        progress?.update(last.step - startStep, { step: `${last.step}/${o.steps}`, loss: last.loss, lr: last.lr });
        if (o.onStep) {
          const t = performance.now();
          await o.onStep(last);
          this.sessionStart += performance.now() - t; // not training time
        }
        if (o.checkpoint && this.step % o.checkpoint.every === 0) await saveNow();
      }
      if (o.checkpoint && savedAt !== this.step && last !== null) await saveNow();
    } finally {
      progress?.done(exhausted ? `train: the batches ran out at step ${this.step} of ${o.steps}` : undefined);
      if (logFd !== null) closeSync(logFd);
    }
    return { step: this.step, epoch: this.epoch, last, seconds: this.elapsed(), firstLoss: this.firstLoss, lastLoss: this.lastLoss, resumedFrom: startStep, checkpoints, exhausted };
  }

  private async prune(): Promise<void> {
    const c = this.opts.checkpoint;
    if (!c?.keepLast) return;
    const names = (await fsp.readdir(c.dir)).filter((n) => /^step_\d+\.safetensors$/.test(n)).sort();
    for (const n of names.slice(0, Math.max(0, names.length - c.keepLast))) await fsp.rm(path.join(c.dir, n), { force: true });
  }

  /** Free the optimizer moments and the EMA averages (the model is the caller's). */
  dispose(): void {
    this.optimizer.dispose();
    this.ema?.dispose();
  }
}

/** The loss a model trains on when the caller gives none (also what `bench:step` in the runner times). */
export function defaultLossFn<B>(model: TrainableModel): (batch: B) => LossOutput {
  if (isTrainingTarget<B>(model)) return (batch) => model.trainingLoss(batch);
  if (isTaskModel<B>(model)) return (batch) => model.loss(model.forward(batch, { training: true }), batch);
  throw new TrainError('Trainer: expected a lossFn, or a model with trainingLoss() or with forward() and loss(); found neither');
}

/**
 * Run a training loop (see `Trainer`) and free the optimizer state at the end. With `ema`, the averaged weights are
 * returned as new tensors (the caller disposes them).
 */
export async function trainLoop<B>(opts: TrainOptions<B>): Promise<TrainResult & { ema?: Record<string, tf.Tensor> }> {
  const trainer = new Trainer(opts);
  try {
    const r = await trainer.run();
    if (!trainer.ema) return r;
    const ema: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(trainer.ema.stateTensors())) ema[k] = t.clone();
    return { ...r, ema };
  } finally {
    trainer.dispose();
  }
}

/** Phases to the microsecond (the JSONL log stays readable). */
function roundPhases(p: StepPhases): StepPhases {
  const r = (x: number) => Math.round(Math.max(0, x) * 1e6) / 1e6;
  return { data: r(p.data), teacher: r(p.teacher), forward: r(p.forward), distill: r(p.distill), backward: r(p.backward), optimizer: r(p.optimizer) };
}
