/**
 * One run of the benchmark: train a teacher, a student baseline, or a distilled student, then evaluate it on the
 * validation split with the nuScenes metrics. Everything a run writes lives in its own folder; `result.json` is
 * written last (atomically), so a folder with it is a finished run.
 */
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { writeFile, rename, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  assemble, checkpointStep, type DataSettings, createRng, get, keepJsonlUntil, latestCheckpoint, resolveConfig, createProgress, mergeDataSettings, parseSafetensors, readSafetensors, runSettings, trainLoop, writeSafetensors,
  type Assembly, type DistillerModel, type ForwardOutput, type LossOutput, type TaskModel, type TrainableModel,
} from '@bevzoo/core';
import { initEngine, type EngineBackend } from '@bevzoo/engine';
import { buildObjectDatabase, createLoader, objectDatabaseSummary, type Batch, type ObjectDatabase } from '@bevzoo/nuscenes';
import { egoDetectionsToResults, evaluateDetection, writeResults, type EgoDetection, type EvalBox } from '@bevzoo/eval';
import { datasetId, prepareDataset, type Dataset, type DatasetChoice } from './dataset.js';

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
  /** Role teacher: load the teacher package's trained weights instead of training when they match config and data. */
  usePackaged?: boolean;
  /** Start from random weights even where the trained model's plugin declares starting weights (`initWeights`). */
  scratch?: boolean;
  backend?: EngineBackend;
  /** Override the number of training steps of the trained model (quick runs, tests). */
  steps?: number;
  /** Extra plugins (`--plugin`) the job needs: package names or absolute paths. */
  plugins?: string[];
}

export interface JobResult {
  id: string;
  role: JobSpec['role'];
  teacher: string | null;
  student: string | null;
  distiller: string | null;
  seed: number;
  presets: Record<string, string>;
  metrics: Record<string, unknown> & { mean_ap: number; nd_score: number };
  train: {
    steps: number; seconds: number; steps_per_s: number; samples_per_s: number; first_loss: number; last_loss: number; backend: string;
    /** Set when the weights are the teacher package's checkpoint (the figures are those recorded when it was trained). */
    packaged?: { file: string; command: string };
    /** The starting weights loaded before training (the plugin's `initWeights`), if any. */
    init?: { file: string; tensors: number; description: string };
  };
  eval: { samples: number; seconds: number };
  /** Validation metrics during training (`train.evalEvery`), the last entry being the final evaluation. */
  curve?: CurvePoint[];
  checkpoint: string;
  log: string;
  /** One validation sample's boxes in the ego frame, for BEV pictures. */
  preview: { sample_token: string; gt: PreviewBox[]; pred: PreviewBox[] };
  finished_at: string;
}

/** One validation evaluation during training: step, training seconds so far (evaluation time excluded), metrics. */
export interface CurvePoint { step: number; train_seconds: number; mean_ap: number; nd_score: number; tp_errors: Record<string, number> }

export interface PreviewBox { x: number; y: number; w: number; l: number; yaw: number; label: number; score?: number }

export function resultPath(outDir: string): string {
  return join(outDir, 'result.json');
}

export function readResult(outDir: string): JobResult | null {
  const p = resultPath(outDir);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as JobResult;
  } catch {
    return null; // a torn file cannot exist (atomic write), but a hand-edited one might: rerun
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

/** Student + distiller adapters as one trainable model (names prefixed), so one optimiser and one checkpoint hold both. */
export function combineModels(parts: Record<string, TrainableModel>): TrainableModel {
  const entries = Object.entries(parts);
  return {
    namedParameters: () => entries.flatMap(([p, m]) => m.namedParameters().map(([n, v]) => [`${p}.${n}`, v] as [string, tf.Variable])),
    stateDict: () => Object.fromEntries(entries.flatMap(([p, m]) => Object.entries(m.stateDict()).map(([n, t]) => [`${p}.${n}`, t]))),
    loadStateDict: (d, opts) => {
      for (const [p, m] of entries) {
        const sub: Record<string, tf.Tensor> = {};
        for (const [k, t] of Object.entries(d)) if (k.startsWith(`${p}.`)) sub[k.slice(p.length + 1)] = t;
        m.loadStateDict(sub, opts);
      }
    },
    train: (on = true) => entries.forEach(([, m]) => m.train(on)),
  };
}

type DetModel = TaskModel<Batch, EgoDetection>;

/** A forward pass under tf.tidy: intermediates are freed, the returned features and outputs are kept. */
function tidyForward(model: DetModel, batch: Batch, training: boolean): ForwardOutput {
  return tf.tidy(() => model.forward(batch, { training }) as unknown as tf.TensorContainer) as unknown as ForwardOutput;
}

function disposeForward(f: ForwardOutput | null): void {
  if (f) tf.dispose([...Object.values(f.features), ...Object.values(f.outputs)]);
}

/** The resolved components of a job: the model that is trained, and for a distillation the frozen teacher and the distiller. */
export interface JobPlan {
  assembly?: Assembly;
  trained: { kind: 'teacher' | 'student'; name: string; preset: string; config: unknown; create: (rng: ReturnType<typeof createRng>) => DetModel };
}

export function planJob(spec: JobSpec): JobPlan {
  const c = (x?: ComponentSpec) => (x ? { plugin: x.name, preset: x.preset, overrides: x.overrides } : undefined);
  if (spec.role === 'teacher') {
    if (!spec.teacher) throw new Error(`job ${spec.id}: a teacher run needs a teacher`);
    const plugin = get('teacher', spec.teacher.name);
    const { config, preset } = resolveConfig(plugin, { preset: spec.teacher.preset, overrides: spec.teacher.overrides });
    return { trained: { kind: 'teacher', name: plugin.name, preset, config, create: (rng) => plugin.create(config, { rng }) as DetModel } };
  }
  if (!spec.student) throw new Error(`job ${spec.id}: a ${spec.role} run needs a student`);
  const assembly = assemble({ teacher: spec.role === 'distill' ? c(spec.teacher) : undefined, student: c(spec.student)!, distiller: spec.role === 'distill' ? c(spec.distiller) : undefined });
  const s = assembly.student;
  return { assembly, trained: { kind: 'student', name: s.plugin.name, preset: s.preset, config: s.config, create: (rng) => s.plugin.create(s.config, { rng }) as DetModel } };
}

/** Load weights written by `writeSafetensors(model.stateDict())` into a model. */
export async function loadWeights(model: TrainableModel, file: string): Promise<void> {
  const { tensors } = await readSafetensors(file);
  try {
    model.loadStateDict(tensors, { strict: true });
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** The teacher package's checkpoint for this job when its recorded config and dataset equal this run's; else null (logged). */
async function packagedCheckpoint(spec: JobSpec, plan: JobPlan, data: Dataset, log: (s: string) => void): Promise<{ file: string; command: string; metadata: Record<string, string> } | null> {
  if (spec.role !== 'teacher' || !spec.usePackaged || spec.steps) return null;
  const ck = get('teacher', plan.trained.name).checkpoints?.find((c) => c.preset === plan.trained.preset);
  if (!ck) return null;
  const what = `teacher ${plan.trained.name}: the packaged checkpoint ${ck.file}`;
  if (!existsSync(ck.file)) {
    log(`${what} is missing; training instead`);
    return null;
  }
  const { metadata } = parseSafetensors(readFileSync(ck.file), ck.file);
  if (metadata.config !== JSON.stringify(plan.trained.config)) {
    log(`${what} was trained with another config (overrides or a changed preset); training instead`);
    return null;
  }
  const id = datasetId(data);
  if (metadata.data !== id) {
    log(`${what} was trained on "${metadata.data ?? 'unknown data'}", this run uses "${id}"; training instead`);
    return null;
  }
  log(`${what} matches this run's config and data: loading it instead of training (reproduce: ${ck.command})`);
  return { file: ck.file, command: ck.command, metadata };
}

/** Load the plugin's starting weights for this preset into a new model (see InitWeights); null when none apply. */
async function loadInitWeights(spec: JobSpec, plan: JobPlan, model: DetModel, log: (s: string) => void): Promise<NonNullable<JobResult['train']['init']> | null> {
  if (spec.scratch) return null;
  const init = get(plan.trained.kind, plan.trained.name).initWeights?.find((w) => w.preset === plan.trained.preset);
  if (!init) return null;
  if (!existsSync(init.file)) {
    log(`${plan.trained.name}: the starting weights ${init.file} are missing; training from scratch`);
    return null;
  }
  const { tensors } = await readSafetensors(init.file);
  const picked = Object.fromEntries(Object.entries(tensors).filter(([k]) => init.prefixes.some((p) => k.startsWith(p))));
  try {
    model.loadStateDict(picked, { strict: false });
  } catch (e) {
    log(`${plan.trained.name}: the starting weights ${init.file} do not fit this config (${(e as Error).message.slice(0, 200)}); training from scratch`);
    return null;
  } finally {
    tf.dispose(Object.values(tensors));
  }
  const n = Object.keys(picked).length;
  log(`${plan.trained.name}: ${init.prefixes.join(', ')} start from ${init.file} (${n} tensors: ${init.description})`);
  return { file: init.file, tensors: n, description: init.description };
}

/** Build the frozen teacher and the distiller of a distillation job. */
async function buildDistillation(plan: JobPlan, spec: JobSpec, student: DetModel, rng: ReturnType<typeof createRng>, log: (s: string) => void): Promise<{ teacher: DetModel; distiller: DistillerModel<Batch> }> {
  const a = plan.assembly!;
  if (!spec.teacherCheckpoint) throw new Error(`job ${spec.id}: a distillation needs the teacher's checkpoint`);
  const teacher = a.teacher!.plugin.create(a.teacher!.config, { rng: rng.fork('teacher') }) as DetModel;
  await loadWeights(teacher, spec.teacherCheckpoint);
  teacher.train(false);
  const d = a.distiller!;
  const distiller = d.plugin.create(d.config, { rng: rng.fork('distiller'), teacher: a.teacher!.features, student: a.student.features }) as DistillerModel<Batch>;
  const report = distiller.init?.({ teacher, student }) as { copied?: string[]; skipped?: { key: string; reason: string }[] } | null | undefined;
  if (report?.copied) {
    const skipped = report.skipped ?? [];
    log(`${d.plugin.name}: the student's head starts from the teacher's: ${report.copied.length} tensors copied` + (skipped.length ? `, ${skipped.length} kept (${skipped.slice(0, 3).map((k) => `${k.key}: ${k.reason}`).join('; ')}${skipped.length > 3 ? '; …' : ''})` : ''));
  }
  return { teacher, distiller };
}

/** Training batches, each paired with the frozen teacher's forward output (computed without a gradient tape). */
function withTeacher(batches: (epoch: number) => AsyncIterable<Batch>, teacher: DetModel | undefined) {
  let held: ForwardOutput | null = null;
  const release = () => {
    disposeForward(held);
    held = null;
  };
  const source = (epoch: number) =>
    (async function* () {
      for await (const batch of batches(epoch)) {
        release();
        if (teacher) held = tidyForward(teacher, batch, false);
        yield { batch, teacher: held };
      }
    })();
  return { source, release };
}

/** Run a model over batches in eval mode and collect ego-frame detections per sample. */
export async function predictSamples(model: DetModel, batches: AsyncIterable<Batch>, onBatch?: (b: Batch, dets: EgoDetection[][]) => void): Promise<Map<string, EgoDetection[]>> {
  model.train(false);
  const out = new Map<string, EgoDetection[]>();
  for await (const batch of batches) {
    const fwd = tidyForward(model, batch, false);
    try {
      const dets = await model.predict(fwd, batch);
      batch.sampleTokens.forEach((t, i) => out.set(t, dets[i] as unknown as EgoDetection[]));
      onBatch?.(batch, dets as unknown as EgoDetection[][]);
    } finally {
      disposeForward(fwd);
    }
  }
  return out;
}

const round = (v: number, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

function previewBoxes(batch: Batch, dets: EgoDetection[]): { gt: PreviewBox[]; pred: PreviewBox[] } {
  const b = batch.boxes[0]!;
  const gt: PreviewBox[] = [];
  for (let i = 0; i < b.count; i++)
    gt.push({ x: round(b.center[i * 3]!, 2), y: round(b.center[i * 3 + 1]!, 2), w: round(b.size[i * 3]!, 2), l: round(b.size[i * 3 + 1]!, 2), yaw: round(b.yaw[i]!, 3), label: b.label[i]! });
  const pred = dets.filter((d) => d.score >= 0.3).map((d) => ({ x: round(d.center[0]!, 2), y: round(d.center[1]!, 2), w: round(d.size[0]!, 2), l: round(d.size[1]!, 2), yaw: round(d.yaw, 3), label: d.label, score: round(d.score, 3) }));
  return { gt, pred };
}

/** The GT-paste database of the training split (`train.objectSample`), for a run whose batches carry no images. */
async function objectDatabase(spec: JobSpec, name: string, need: DataSettings, data: Dataset, log: (s: string) => void): Promise<ObjectDatabase> {
  if (!need.points || need.images)
    throw new Error(`job ${spec.id}: train.objectSample of ${name} needs a LiDAR-only run (GT-paste adds objects to the points, not to `
      + `camera images), but ${spec.role === 'distill' ? 'a distillation run feeds camera images to the student' : `this run's batches carry ${need.points ? 'camera images' : 'no points'}`}; set train.objectSample=false`);
  const t0 = performance.now();
  const bar = createProgress({ total: data.train.length, label: 'GT-paste database', unit: 'samples' });
  const db = await buildObjectDatabase(data.nusc, data.train, { sweeps: need.sweeps, onProgress: () => bar.tick(1) });
  bar.done();
  log(`GT-paste database: ${db.byLabel.reduce((a, e) => a + e.length, 0)} objects with ≥ ${db.minPoints} points from ${db.samples} train samples in ${((performance.now() - t0) / 1000).toFixed(1)} s (${objectDatabaseSummary(db)})`);
  return db;
}

/** Train and evaluate one job; writes `<outDir>/result.json` last. */
export async function runJob(spec: JobSpec, opts: { log?: (s: string) => void; dataset?: Dataset } = {}): Promise<JobResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const engine = await initEngine({ backend: spec.backend ?? 'auto', log: () => {} });
  mkdirSync(spec.outDir, { recursive: true });
  const plan = planJob(spec);
  const data = opts.dataset ?? (await prepareDataset(spec.dataset, log));
  const rng = createRng(spec.seed);
  const mainSettings = runSettings(plan.trained.config);
  const train = { ...mainSettings.train, ...(spec.steps ? { steps: spec.steps } : {}) };
  const settings = [mainSettings.data];
  if (spec.role === 'distill') settings.push(runSettings(plan.assembly!.teacher!.config).data);
  const need = mergeDataSettings(...settings);

  const model = plan.trained.create(rng.fork(plan.trained.kind));
  const init = await loadInitWeights(spec, plan, model, log);
  let teacher: DetModel | undefined, distiller: DistillerModel<Batch> | undefined;
  if (spec.role === 'distill') ({ teacher, distiller } = await buildDistillation(plan, spec, model, rng, log));
  const trainable: TrainableModel = distiller ? combineModels({ student: model, distiller }) : model;

  const loaderOpts = { nusc: data.nusc, imageSize: need.imageSize, sweeps: need.sweeps, points: need.points, withPrev: need.withPrev, occGts: need.occ ? data.gts : undefined };
  const batchesPerEpoch = Math.floor(data.train.length / train.batchSize); // the training loader drops the last partial batch
  const packaged = await packagedCheckpoint(spec, plan, data, log);
  // GT-paste only for a run that trains (a packaged checkpoint needs no database).
  const objectSample = !packaged && train.augment && train.objectSample
    ? { database: await objectDatabase(spec, plan.trained.name, need, data, log), epochs: Math.ceil((train.objectSampleUntil * train.steps) / batchesPerEpoch) }
    : undefined;
  if (objectSample && train.objectSampleUntil < 1)
    log(`GT-paste in the first ${objectSample.epochs} epochs (steps 1–${Math.min(train.steps, objectSample.epochs * batchesPerEpoch)}), unaltered scenes after`);
  const loader = createLoader({ ...loaderOpts, sampleTokens: data.train, batchSize: train.batchSize, augment: train.augment, objectSample, seed: spec.seed, shuffle: true, dropLast: true });
  const batches = withTeacher((e) => loader.epoch(e), teacher);
  const logPath = join(spec.outDir, 'train.jsonl');
  let firstLoss = NaN, lastLoss = NaN;
  const what = `${spec.role} ${[spec.teacher?.name, spec.student?.name, spec.distiller?.name].filter(Boolean).join(' × ')} (seed ${spec.seed})`;
  // Evaluation on the validation split: no augmentation, every sample once.
  const evalLoader = createLoader({ ...loaderOpts, withPrev: mainSettings.data.withPrev, points: mainSettings.data.points, sampleTokens: data.val, batchSize: train.batchSize, augment: false, shuffle: false, seed: spec.seed });
  const meta = { use_camera: need.images && plan.trained.kind === 'student', use_lidar: plan.trained.kind === 'teacher', use_radar: false, use_map: false, use_external: false };
  let preview: JobResult['preview'] | undefined;
  const evaluate = async (final: boolean) => {
    const bar = createProgress({ total: data.val.length, label: `eval ${what}`, unit: 'samples' });
    const dets = await predictSamples(model, evalLoader.epoch(0), (b, d) => {
      if (final) preview ??= { sample_token: b.sampleTokens[0]!, ...previewBoxes(b, d[0]!) };
      bar.tick(b.sampleTokens.length);
    });
    bar.done();
    model.train(true);
    const results = new Map<string, EvalBox[]>();
    for (const t of data.val) results.set(t, egoDetectionsToResults(data.nusc, t, dets.get(t) ?? []));
    if (final) {
      mkdirSync(join(spec.outDir, 'eval'), { recursive: true });
      writeResults(join(spec.outDir, 'eval', 'results.json'), { meta, results }); // the submission, for `bevzoo eval det --results`
    }
    const ev = evaluateDetection({ nusc: data.nusc, sampleTokens: data.val, results: { meta, results }, config: data.evalConfig, outDir: final ? join(spec.outDir, 'eval') : undefined, log: final ? log : () => {} });
    return ev.summary as unknown as Record<string, unknown> & { mean_ap: number; nd_score: number; tp_errors: Record<string, number> };
  };
  const curvePath = join(spec.outDir, 'evals.jsonl');
  // The curve a run starts with: the points up to the checkpoint it resumes from, none for a fresh run (so a rerun
  // into the same folder never mixes in stale points).
  const resumeFrom = train.checkpointEvery > 0 ? await latestCheckpoint(join(spec.outDir, 'checkpoints')) : null;
  const curve = keepJsonlUntil<CurvePoint>(curvePath, resumeFrom ? checkpointStep(resumeFrom)! : 0);
  let evalInTraining = 0;
  const addPoint = async (step: number, trainSeconds: number, s: { mean_ap: number; nd_score: number; tp_errors: Record<string, number> }) => {
    const point: CurvePoint = { step, train_seconds: round(trainSeconds, 1), mean_ap: s.mean_ap, nd_score: s.nd_score, tp_errors: s.tp_errors };
    curve.push(point);
    await appendFile(curvePath, `${JSON.stringify(point)}\n`);
    log(`${what}: step ${step} (${trainSeconds.toFixed(0)} s of training): val mAP ${s.mean_ap.toFixed(4)}, NDS ${s.nd_score.toFixed(4)}`);
  };
  let steps: number, trainSeconds: number;
  const checkpoint = packaged?.file ?? join(spec.outDir, 'model.safetensors');
  if (packaged) {
    await loadWeights(model, packaged.file);
    steps = Number(packaged.metadata.train_steps);
    trainSeconds = Number(packaged.metadata.train_seconds);
    firstLoss = Number(packaged.metadata.first_loss);
    lastLoss = Number(packaged.metadata.last_loss);
  } else {
    log(`${what}: training ${train.steps} steps, batch ${train.batchSize}, ${data.train.length} train samples, backend ${engine.backend}`);
    const t0 = performance.now();
    const res = await trainLoop<{ batch: Batch; teacher: ForwardOutput | null }>({
      model: trainable,
      batches: batches.source,
      steps: train.steps,
      seed: spec.seed,
      optimizer: { lr: train.lr, weightDecay: train.weightDecay },
      schedule: train.schedule === 'cosine' ? { type: 'cosine', warmup: { steps: Math.min(train.warmupSteps, Math.floor(train.steps / 4)) } } : { type: 'constant' },
      clip: train.clip > 0 ? train.clip : null,
      checkpoint: train.checkpointEvery > 0 ? { dir: join(spec.outDir, 'checkpoints'), every: train.checkpointEvery, keepLast: 1 } : undefined,
      resume: train.checkpointEvery > 0 ? 'latest' : undefined,
      log: logPath,
      config: { spec, config: plan.trained.config },
      lossFn: ({ batch, teacher: tOut }): LossOutput => {
        const out = model.forward(batch, { training: true });
        const task = model.loss(out, batch);
        if (!distiller || !tOut) return task;
        const dl = distiller.loss({ teacher: tOut, student: out, batch });
        return { total: tf.add(task.total, dl.total) as tf.Scalar, parts: { ...task.parts, ...dl.parts, 'loss.task': task.total, 'loss.distill': dl.total } };
      },
      onStep: async (r) => {
        if (Number.isNaN(firstLoss)) firstLoss = r.loss;
        lastLoss = r.loss;
        if (!Number.isFinite(r.loss)) throw new Error(`${what}: the loss became ${r.loss} at step ${r.step} (see ${logPath})`);
        if (train.evalEvery > 0 && r.step % train.evalEvery === 0 && r.step < train.steps) {
          const te = performance.now();
          const s = await evaluate(false);
          const spent = (performance.now() - te) / 1000;
          await addPoint(r.step, (te - t0) / 1000 - evalInTraining, s);
          evalInTraining += spent;
        }
      },
    });
    batches.release();
    steps = res.step;
    trainSeconds = (performance.now() - t0) / 1000 - evalInTraining;
    await writeSafetensors(checkpoint, model.stateDict(), {
      format: 'bevzoo-model', model: plan.trained.name, preset: plan.trained.preset, data: datasetId(data),
      config: JSON.stringify({ ...(plan.trained.config as Record<string, unknown>), train }), // with the steps run (--steps)
      train_steps: String(res.step), train_seconds: String(round(trainSeconds, 1)), first_loss: String(firstLoss), last_loss: String(lastLoss), backend: engine.backend,
    });
  }
  const t1 = performance.now();
  const s = await evaluate(true);
  const evalSeconds = (performance.now() - t1) / 1000;
  if (train.evalEvery > 0 && !packaged) await addPoint(steps, trainSeconds, s);
  const result: JobResult = {
    id: spec.id,
    role: spec.role,
    teacher: spec.teacher?.name ?? null,
    student: spec.role === 'teacher' ? null : (spec.student?.name ?? null),
    distiller: spec.role === 'distill' ? (spec.distiller?.name ?? null) : null,
    seed: spec.seed,
    presets: Object.fromEntries(
      [['trained', plan.trained.preset], ['teacher', plan.assembly?.teacher?.preset], ['distiller', plan.assembly?.distiller?.preset]].filter(([, v]) => v) as [string, string][],
    ),
    metrics: { mean_ap: s.mean_ap, nd_score: s.nd_score, tp_errors: s.tp_errors, label_aps: s.label_aps, mean_dist_aps: s.mean_dist_aps },
    train: {
      steps, seconds: round(trainSeconds, 1), steps_per_s: round(steps / trainSeconds, 3), samples_per_s: round((steps * train.batchSize) / trainSeconds, 3),
      first_loss: firstLoss, last_loss: lastLoss, backend: packaged?.metadata.backend ?? engine.backend,
      ...(packaged ? { packaged: { file: packaged.file, command: packaged.command } } : init ? { init } : {}),
    },
    eval: { samples: data.val.length, seconds: round(evalSeconds, 1) },
    ...(curve.length ? { curve } : {}),
    checkpoint,
    log: logPath,
    preview: preview ?? { sample_token: '', gt: [], pred: [] },
    finished_at: new Date().toISOString(),
  };
  model.dispose();
  teacher?.dispose();
  distiller?.dispose();
  await writeJsonAtomic(resultPath(spec.outDir), result);
  log(`${what}: mAP ${s.mean_ap.toFixed(4)}, NDS ${s.nd_score.toFixed(4)} (train ${trainSeconds.toFixed(0)} s, ${result.train.steps_per_s} steps/s; eval ${evalSeconds.toFixed(0)} s)`);
  return result;
}
