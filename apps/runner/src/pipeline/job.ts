/**
 * One run of the benchmark: train a teacher, a student baseline, or a distilled student, then evaluate it on the
 * validation split with its task's metrics. Everything a run writes lives in its own folder; `result.json` is
 * written last (atomically), so a folder with it is a finished run. The folder is locked while the run owns it.
 */
import { appendFile } from 'node:fs/promises';
import { constants, totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import {
  checkpointStep, createProgress, createRng, fileError, keepJsonlUntil, latestCheckpoint, removeStaleTemps, runSettings, trainLoop, writeSafetensors,
  type AdamWConfig, type DataSettings, type StepPhases, type TeacherCacheStats, type TrainOptions, type TrainSettings,
} from '@bevzoo/core';
import { initEngine, type EngineBackend } from '@bevzoo/engine';
import { createLoader, type Batch, type Loader, type LoaderOptions } from '@bevzoo/nuscenes';
import type { TeacherRuntimeChoice, TeacherRuntimeRequest } from '@bevzoo/onnx';
import { datasetId, prepareDataset, prepareVirtualPointsFor, type Dataset, type DatasetChoice } from './dataset.js';
import { objectSampleOption } from './gt-paste.js';
import { optionalOnnx, requireOnnx, teacherRuntimeCache } from './onnx.js';
import { lockFolder } from './lock.js';
import { buildJobModels, type JobModels } from './models.js';
import { writeJsonAtomic, resultPath, type CurvePoint, type JobResult, type RunTiming } from './results.js';
import { sensorsOf, TASK_EVALUATORS, type Evaluation } from './tasks.js';


export interface ComponentSpec {
  name: string;
  preset?: string;
  overrides?: Record<string, unknown>;
}

export interface JobSpec {
  /** Stable id, also the folder name. */
  id: string;
  role: 'teacher' | 'baseline' | 'distill';
  teacher?: ComponentSpec;
  student?: ComponentSpec;
  distiller?: ComponentSpec;
  seed: number;
  dataset: DatasetChoice;
  /** Folder of this run. */
  outDir: string;
  /** Frozen teacher weights (role distill). */
  teacherCheckpoint?: string;
  /**
   * Where the frozen teacher runs (role distill): onnx (onnxruntime-node), engine, or auto (the default: onnx where it
   * gives the engine's outputs faster, measured on the run's first batches).
   */
  teacherRuntime?: TeacherRuntimeRequest;
  /** Load the package's trained weights instead of training when they match config and data (teacher runs of the matrix). */
  usePackaged?: boolean;
  /** Start from random weights even where the trained model's plugin declares starting weights (`initWeights`). */
  scratch?: boolean;
  backend?: EngineBackend;
  /** Override the number of training steps of the trained model (quick runs, tests). */
  steps?: number;
  /** Extra plugins (`--plugin`) the job needs: package names or absolute paths. */
  plugins?: string[];
}

const round = (v: number, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

/** The environment variable with the pid of the process that started a run as its child (the scheduler). */
export const PARENT_PID_ENV = 'BEVZOO_PARENT_PID';

/**
 * A run started as a child by the scheduler (`BEVZOO_PARENT_PID` = its parent) ends when that process is gone: a
 * matrix killed with SIGKILL cannot stop its runs, so they watch for being orphaned (their parent pid changes). A
 * worker thread watches, so that a run busy in a long training step still ends at once (with SIGKILL: its lock is
 * taken over by the rerun, its checkpoints are whole). A signal ends the run through `process.exit`, which releases
 * its folder's lock. Returns the function that stops watching.
 */
function exitWithParent(): () => void {
  const parent = Number(process.env[PARENT_PID_ENV]);
  if (!parent || parent !== process.ppid) return () => {};
  const watcher = new Worker(
    "const { workerData: parent } = require('node:worker_threads'); setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); }, 250);",
    { eval: true, workerData: parent },
  );
  watcher.unref();
  const onSignal = (signal: NodeJS.Signals) => process.exit(128 + constants.signals[signal]);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  return () => {
    void watcher.terminate();
    for (const s of signals) process.off(s, onSignal);
  };
}

/** Train and evaluate one job; writes `<outDir>/result.json` last. */
export async function runJob(spec: JobSpec, opts: { log?: (s: string) => void; dataset?: Dataset; queued?: boolean } = {}): Promise<JobResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  // A queue worker owns its run by the queue's lock: a folder lock another host left is its stopped predecessor's.
  const lock = await lockFolder(spec.outDir, `bevzoo run ${spec.id}`, log, { takeOverOtherHosts: opts.queued });
  const stopWatching = exitWithParent();
  try {
    // What a killed run may have left: temporary files of its unfinished writes (a checkpoint, the log).
    const stale = await removeStaleTemps(spec.outDir, { recursive: true });
    if (stale.length) log(`${spec.id}: removed ${stale.length} temporary file(s) an interrupted run left (${stale.join(', ')})`);
    return await trainAndEvaluate(spec, log, opts.dataset);
  } finally {
    lock.release();
    stopWatching();
  }
}

/** A memory budget in bytes: the environment variable `name` (megabytes) where set, else `total · fraction` within [min, max]. */
function memoryBudget(name: string, env: NodeJS.ProcessEnv, total: number, fraction: number, min: number, max: number): number {
  const v = env[name];
  if (v !== undefined && v !== '') {
    if (!/^\d+$/.test(v.trim())) throw new Error(`${name} must be a whole number of megabytes (0 turns the memory cache off), found ${JSON.stringify(v)}`);
    return Number(v.trim()) * 1024 ** 2;
  }
  return Math.round(Math.min(max, Math.max(min, total * fraction)));
}

/**
 * The memory budget of a training loader's frame cache (decoded images, assembled clouds): `BEVZOO_FRAME_CACHE_MB`
 * where set, else a fifth of the machine's memory (a matrix runs two jobs at a time, each with its own cache), between
 * 1 and 8 GiB. @bevzoo/nuscenes's own default, 2 GiB, held less than a third of an MVP run's frames (the clouds with
 * their virtual points and sweeps: 4.2 GB for the `small` training split), so each epoch loaded them again.
 */
export function frameCacheBytes(env: NodeJS.ProcessEnv = process.env, total: number = totalmem()): number {
  return memoryBudget('BEVZOO_FRAME_CACHE_MB', env, total, 1 / 5, 1024 ** 3, 8 * 1024 ** 3);
}

/**
 * The memory budget of a distillation's teacher cache (the frozen teacher's outputs per training sample, kept where
 * the student's batches are not augmented): `BEVZOO_TEACHER_CACHE_MB` where set, else a tenth of the machine's memory,
 * between 256 MiB and 4 GiB. CenterPoint `small`'s outputs take 3.7 MB a sample, its 192 training samples 717 MB.
 */
export function teacherCacheBytes(env: NodeJS.ProcessEnv = process.env, total: number = totalmem()): number {
  return memoryBudget('BEVZOO_TEACHER_CACHE_MB', env, total, 1 / 10, 256 * 1024 ** 2, 4 * 1024 ** 3);
}

/** The training loader's frame cache counters, for `result.json` (`train.data_cache`). */
function dataCacheStats(loader: Loader): NonNullable<JobResult['train']['data_cache']> {
  const s = loader.stats;
  return { decodes: s.decodes, point_files: s.pointFiles, memory_hits: s.memoryHits, disk_hits: s.diskHits, misses: s.misses, memory_bytes: loader.cache.memoryBytes, memory_limit: loader.cache.memoryLimit };
}

/** What a job trains on: its model's settings (`own`), the training settings of the run, and its training batches. */
export interface TrainingSetup {
  own: { train: TrainSettings; data: DataSettings };
  /** The trained model's `train` settings with the job's `steps`. */
  train: TrainSettings;
  /** Options of every loader of the run (the data the batches must hold); occupancy labels not included. */
  loaderOpts: Pick<LoaderOptions, 'nusc' | 'imageSize' | 'sweeps' | 'points' | 'withPrev' | 'virtualPoints'>;
  /** The training batches: shuffled, augmented (and GT-pasted) as the settings say, the last partial batch dropped. */
  loader: Loader;
  /** Whether a training sample's batch data change between epochs (augmentation or GT-paste). */
  varies: boolean;
}

/** The training data of a job (also what `bench:step` times its steps on). */
export async function trainingSetup(spec: JobSpec, data: Dataset, m: JobModels, log: (s: string) => void): Promise<TrainingSetup> {
  const own = runSettings(m.trained.config);
  const train = { ...own.train, ...(spec.steps ? { steps: spec.steps } : {}) };
  const need = m.data;
  const loaderOpts = { nusc: data.nusc, imageSize: need.imageSize, sweeps: need.sweeps, points: need.points, withPrev: need.withPrev, virtualPoints: need.virtualPoints };
  // MVP's virtual points: masks and the cache of every sample the run loads (train and val), before any loader.
  if (need.virtualPoints) await prepareVirtualPointsFor(data, [...data.train, ...data.val], need.sweeps, log);
  const objectSample = m.packaged ? undefined : await objectSampleOption(spec, m.trained.name, train, need, data, log); // GT-paste only for a run that trains
  const loader = createLoader({ ...loaderOpts, occGts: need.occ ? data.gts : undefined, segments: need.segments, sampleTokens: data.train, batchSize: train.batchSize, augment: train.augment, objectSample, seed: spec.seed, shuffle: true, dropLast: true, memoryCacheBytes: frameCacheBytes() });
  return { own, train, loaderOpts, loader, varies: train.augment !== false || objectSample !== undefined };
}

/** The trainer's optimiser (AdamW), schedule and gradient clipping for a run's training settings. */
export function trainerOptions(train: TrainSettings): Pick<TrainOptions<unknown>, 'optimizer' | 'schedule' | 'clip'> & { optimizer: AdamWConfig; clip: number | null } {
  return {
    optimizer: { lr: train.lr, weightDecay: train.weightDecay },
    schedule: train.schedule === 'cosine' ? { type: 'cosine', warmup: { steps: Math.min(train.warmupSteps, Math.floor(train.steps / 4)) } } : { type: 'constant' },
    clip: train.clip > 0 ? train.clip : null,
  };
}

async function trainAndEvaluate(spec: JobSpec, log: (s: string) => void, dataset?: Dataset): Promise<JobResult> {
  const tStart = performance.now();
  const engine = await initEngine({ backend: spec.backend ?? 'auto', log: () => {} });
  const data = dataset ?? (await prepareDataset(spec.dataset, log));
  const m = await buildJobModels(spec, createRng(spec.seed), datasetId(data), log);
  let onnxTeacher: { dispose(): Promise<void> } | null = null;
  try {
    const model = m.trained.model;
    const evaluator = TASK_EVALUATORS[m.task];
    const { own, train, loaderOpts, loader, varies } = await trainingSetup(spec, data, m, log);
    // Evaluation on the validation split: no augmentation, every sample once, what the trained model reads.
    const evalLoader = createLoader({ ...loaderOpts, occGts: m.data.occ || evaluator.data.occ ? data.gts : undefined, withPrev: own.data.withPrev, points: own.data.points, virtualPoints: own.data.points && own.data.virtualPoints, sampleTokens: data.val, batchSize: train.batchSize, augment: false, shuffle: false, seed: spec.seed });
    const what = `${spec.role} ${[spec.teacher?.name, spec.student?.name, spec.distiller?.name].filter(Boolean).join(' × ')} (seed ${spec.seed})`;
    const meta = sensorsOf(m.trained.kind, m.data);
    const evaluate = async (final: boolean): Promise<Evaluation> => {
      const bar = createProgress({ total: data.val.length, label: `eval ${what}`, unit: 'samples' });
      return evaluator.evaluate({ model, batches: evalLoader.epoch(0), data, final, outDir: spec.outDir, meta, log, onBatch: (n) => bar.tick(n) }).finally(() => bar.done());
    };

    const logPath = join(spec.outDir, 'train.jsonl');
    const curvePath = join(spec.outDir, 'evals.jsonl');
    // The curve a run starts with: the points up to the checkpoint it resumes from, none for a fresh run (so a rerun
    // into the same folder never mixes in stale points).
    const resumeFrom = train.checkpointEvery > 0 ? await latestCheckpoint(join(spec.outDir, 'checkpoints')) : null;
    const curve = await keepJsonlUntil<CurvePoint>(curvePath, resumeFrom ? checkpointStep(resumeFrom)! : 0);
    const addPoint = async (step: number, trainSeconds: number, ev: Evaluation) => {
      const point: CurvePoint = { step, train_seconds: round(trainSeconds, 1), ...ev.curve };
      curve.push(point);
      await appendFile(curvePath, `${JSON.stringify(point)}\n`).catch((e: unknown) => Promise.reject(fileError('write', curvePath, e)));
      log(`${what}: step ${step} (${trainSeconds.toFixed(0)} s of training): val ${ev.headline}`);
    };

    let steps: number, trainSeconds: number, firstLoss: number, lastLoss: number, resumedFrom = 0;
    // This session's time: setup, the steps' phases (summed as the trainer reports each step), evaluation.
    let setupSeconds = 0, evalDuring = 0, trainWall = 0;
    const phases: StepPhases = { data: 0, teacher: 0, forward: 0, distill: 0, backward: 0, optimizer: 0 };
    let teacherRuntime: TeacherRuntimeChoice | undefined;
    let teacherCache: TeacherCacheStats | undefined;
    const checkpoint = m.packaged?.file ?? join(spec.outDir, 'model.safetensors');
    if (m.packaged) {
      const md = m.packaged.metadata;
      [steps, trainSeconds, firstLoss, lastLoss] = [Number(md.train_steps), Number(md.train_seconds), Number(md.first_loss), Number(md.last_loss)];
    } else {
      if (m.distillation) {
        // Where the frozen teacher runs: measured on the run's first two training batches (the export is traced on
        // the first; the timings and the comparison with the engine use the second).
        const request = spec.teacherRuntime ?? 'auto';
        // Unaugmented batches give the teacher the same input for a sample in every epoch: its outputs are kept, and
        // it runs in the first epoch only. `auto` then keeps it on the engine: onnxruntime-node would save little, and
        // its choice, a timing, would make the run's bits depend on the machine's load (the two runtimes differ in
        // the last bits, which a short training amplifies).
        let cacheBytes = varies ? 0 : teacherCacheBytes();
        if (cacheBytes > 0) {
          const probe = await loader.batch(0, 0);
          const why = m.distillation.teacherCacheCheck(probe, probe.sampleTokens.length);
          if (why) {
            log(`teacher ${m.distillation.teacher.name}: its outputs cannot be kept per training sample: ${why}`);
            cacheBytes = 0;
          }
        }
        const onnx = request === 'engine' || (request === 'auto' && cacheBytes > 0) ? null : request === 'onnx' ? await requireOnnx('--teacher-runtime onnx') : await optionalOnnx();
        if (onnx) {
          const first = await loader.batch(0, 0);
          const second = loader.numBatches > 1 ? await loader.batch(0, 1) : await loader.batch(1, 0);
          const r = await onnx.selectTeacherRuntime(m.distillation, [first, second], { request, threads: engine.threads, log, cache: teacherRuntimeCache(spec.outDir, { batch: first.shapes, kernels: engine.kernels }) });
          onnxTeacher = r.teacher;
          teacherRuntime = r.choice;
        } else {
          const why = request !== 'auto' ? null : cacheBytes > 0 ? 'its outputs are kept per training sample' : '@bevzoo/onnx is not installed';
          teacherRuntime = { used: 'engine', requested: request, ...(why ? { reason: why } : {}) };
          if (why) log(`teacher ${m.distillation.teacher.name}: on the engine (${cacheBytes > 0 ? why : '@bevzoo/onnx, for onnxruntime-node, is not installed'})`);
        }
        if (cacheBytes > 0) {
          m.distillation.setTeacherCache({ keys: (b) => (b as Batch).sampleTokens, maxBytes: cacheBytes });
          log(`teacher ${m.distillation.teacher.name}: its outputs are kept per training sample (the batches are not augmented), up to ${(cacheBytes / 1024 ** 2).toFixed(0)} MiB (BEVZOO_TEACHER_CACHE_MB)`);
        }
      }
      const tTrain = performance.now();
      setupSeconds = (tTrain - tStart) / 1000;
      log(`${what}: training ${train.steps} steps, batch ${train.batchSize}, ${data.train.length} train samples, backend ${engine.backend}${engine.kernels ? ` (${engine.kernels} kernels, ${engine.threads} thread${engine.threads === 1 ? '' : 's'})` : ''}${resumeFrom ? `, resuming from step ${checkpointStep(resumeFrom)}` : ''}`);
      // The trainer's figures (steps, seconds, first and last loss) cover every session of the run: a resumed run
      // carries the earlier ones over in its checkpoint; evaluations during training (onStep) are not training time.
      const res = await trainLoop({
        model: m.trainable,
        batches: (e: number) => loader.epoch(e),
        steps: train.steps,
        seed: spec.seed,
        ...trainerOptions(train),
        checkpoint: train.checkpointEvery > 0 ? { dir: join(spec.outDir, 'checkpoints'), every: train.checkpointEvery, keepLast: 1 } : undefined,
        resume: train.checkpointEvery > 0 ? 'latest' : undefined,
        log: logPath,
        config: { spec, config: m.trained.config },
        onStep: async (r) => {
          if (!Number.isFinite(r.loss)) throw new Error(`${what}: the loss became ${r.loss} at step ${r.step} (see ${logPath})`);
          for (const k of Object.keys(phases) as (keyof StepPhases)[]) phases[k] += r.phases[k];
          if (train.evalEvery > 0 && r.step % train.evalEvery === 0 && r.step < train.steps) {
            const t = performance.now();
            await addPoint(r.step, r.time, await evaluate(false));
            evalDuring += (performance.now() - t) / 1000;
          }
        },
      });
      [steps, trainSeconds, firstLoss, lastLoss, resumedFrom] = [res.step, res.seconds, res.firstLoss ?? NaN, res.lastLoss ?? NaN, res.resumedFrom];
      trainWall = (performance.now() - tTrain) / 1000 - evalDuring;
      teacherCache = m.distillation?.teacherCacheStats ?? undefined;
      m.distillation?.setTeacherCache(null);
      if (onnxTeacher) {
        m.distillation?.setTeacherRuntime(null);
        await onnxTeacher.dispose();
        onnxTeacher = null;
      }
      await writeSafetensors(checkpoint, model.stateDict(), {
        format: 'bevzoo-model', model: m.trained.name, preset: m.trained.preset, data: datasetId(data),
        config: JSON.stringify({ ...(m.trained.config as Record<string, unknown>), train }), // with the steps run (--steps)
        train_steps: String(res.step), train_seconds: String(round(trainSeconds, 1)), first_loss: String(firstLoss), last_loss: String(lastLoss), backend: engine.backend, ...(engine.kernels ? { kernels: engine.kernels } : {}),
      });
    }
    if (m.packaged) setupSeconds = (performance.now() - tStart) / 1000;
    const t1 = performance.now();
    const ev = await evaluate(true);
    const evalSeconds = (performance.now() - t1) / 1000;
    const inSteps = Object.values(phases).reduce((a, b) => a + b, 0);
    const timing: RunTiming = {
      wall: round((performance.now() - tStart) / 1000, 2), setup: round(setupSeconds, 2),
      ...(Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(v, 2)])) as unknown as StepPhases),
      train_other: round(Math.max(0, trainWall - inSteps), 2), eval: round(evalDuring + evalSeconds, 2),
    };
    if (train.evalEvery > 0 && !m.packaged) await addPoint(steps, trainSeconds, ev);
    const result: JobResult = {
      id: spec.id,
      role: spec.role,
      task: m.task,
      teacher: spec.teacher?.name ?? null,
      student: spec.role === 'teacher' ? null : (spec.student?.name ?? null),
      distiller: spec.role === 'distill' ? (spec.distiller?.name ?? null) : null,
      seed: spec.seed,
      presets: m.presets,
      metrics: ev.metrics,
      train: {
        steps, seconds: round(trainSeconds, 1), steps_per_s: round(steps / trainSeconds, 3), samples_per_s: round((steps * train.batchSize) / trainSeconds, 3),
        first_loss: firstLoss, last_loss: lastLoss, backend: m.packaged?.metadata.backend ?? engine.backend,
        ...(m.packaged ? (m.packaged.metadata.kernels ? { kernels: m.packaged.metadata.kernels } : {}) : engine.kernels ? { kernels: engine.kernels, threads: engine.threads } : {}),
        ...(resumedFrom ? { resumed_from: resumedFrom } : {}),
        ...(m.packaged ? { packaged: { file: m.packaged.file, command: m.packaged.command } } : m.init ? { init: m.init } : {}),
        ...(m.setup ? { setup: m.setup } : {}),
        ...(teacherRuntime ? { teacher_runtime: teacherRuntime } : {}),
        ...(teacherCache ? { teacher_cache: teacherCache } : {}),
        ...(m.packaged ? {} : { data_cache: dataCacheStats(loader) }),
      },
      eval: { samples: data.val.length, seconds: round(evalSeconds, 1) },
      timing,
      ...(curve.length ? { curve } : {}),
      checkpoint,
      log: logPath,
      ...(ev.preview ? { preview: ev.preview } : {}),
      finished_at: new Date().toISOString(),
    };
    await writeJsonAtomic(resultPath(spec.outDir), result);
    log(`${what}: ${ev.headline} (train ${trainSeconds.toFixed(0)} s, ${result.train.steps_per_s} steps/s; eval ${evalSeconds.toFixed(0)} s)`);
    return result;
  } finally {
    try {
      await onnxTeacher?.dispose();
    } finally {
      m.dispose();
    }
  }
}

