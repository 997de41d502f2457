/**
 * `pnpm bench:step`: milliseconds per training step of each registered student and teacher at a preset, on each
 * kernel path of the engine (`BEVZOO_KERNELS=native|wasm`), split into forward(+loss), backward (with gradient
 * clipping) and optimiser, next to a PyTorch CPU twin of the same model with the same shapes and threads, run twice:
 * with glibc malloc as installed and with its thresholds raised (@bevzoo/engine's TORCH_ALLOCATORS).
 *
 * Each (model, path) runs in its own child process (this file with `--child`), one after the other, so that no two
 * measured things overlap. A child builds the model and its batches exactly as the runner's job does
 * (`buildJobModels`, `trainingSetup`, the trainer's AdamW and clipping), loads the batches it needs, and times
 * warm-up + timed steps:
 *   (a) forward + loss alone (no gradient tape), read back;
 *   (b) `tf.variableGrads` of the loss + `clipGradNorm`, read back — backward = (b) − (a);
 *   (c) the AdamW update, one value read back.
 * It prints one JSON line. The first available path also records one forward(+loss) at the kernel level
 * (bench/record.ts) and writes the PyTorch twin (bench/twin.ts); the parent runs it with python + torch.
 *
 *   node apps/runner/dist/bench-step.js [--models a,b] [--preset small] [--steps 5] [--warmup 2]
 *     [--paths native,wasm] [--threads 2] [--skip-torch] [--profile] [--data-dir .bevzoo/data] [--plugin <pkg or path>]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clipGradNorm, createRng, defaultLossFn, get, list, Trainer, type TrainableModel } from '@bevzoo/core';
import { findTorchPython, initEngine, type Engine } from '@bevzoo/engine';
import type { Batch } from '@bevzoo/nuscenes';
import { loadPlugins } from '../discover.js';
import { datasetId, prepareDataset, type DatasetChoice } from '../pipeline/dataset.js';
import { trainerOptions, trainingSetup } from '../pipeline/job.js';
import { buildJobModels } from '../pipeline/models.js';
import { baselineJob, teacherJob, type PlanOptions } from '../pipeline/plan.js';
import { kernelCounts, recordForward, type Tensor, type TF } from './record.js';
import { formatReport, kernelTimes, type ChildResult, type ModelReport } from './report.js';
import { runForJson } from './child.js';
import { runTwin, writeTwin } from './twin.js';

const PATHS = ['native', 'wasm'] as const;
type KernelPath = (typeof PATHS)[number];

const OPTIONS = {
  models: { type: 'string' },
  preset: { type: 'string', default: 'small' },
  steps: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '2' },
  paths: { type: 'string', default: PATHS.join(',') },
  threads: { type: 'string' },
  'skip-torch': { type: 'boolean', default: false },
  profile: { type: 'boolean', default: false },
  'data-dir': { type: 'string' },
  plugin: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h', default: false },
  // Hidden: one (model, path) measurement in this process.
  child: { type: 'boolean', default: false },
  model: { type: 'string' },
  path: { type: 'string' },
  record: { type: 'string' },
} as const;

const USAGE = `usage: node apps/runner/dist/bench-step.js [options]   (pnpm bench:step [options])
  --models a,b        students and teachers to time (default: every registered one)
  --preset <p>        preset of each model (default small)
  --steps <n>         timed steps (default 5); medians are reported
  --warmup <n>        untimed steps first (default 2)
  --paths a,b         kernel paths of the engine, BEVZOO_KERNELS (default native,wasm)
  --threads <n>       threads of the engine's kernels and of PyTorch (default: the engine's, BEVZOO_THREADS or 2)
  --skip-torch        no PyTorch twin
  --profile           after the timed steps, one forward(+loss) and one more step (gradients, clip, AdamW) under
                      tf.profile: the kernels that took the most time, per path (the profiler's own cost inflates the
                      many small kernels)
  --data-dir <dir>    where the synthetic dataset is kept (default .bevzoo/data)
  --plugin <p>        extra plugin package or path (repeatable)
`;

class UsageError extends Error {}

function positiveInt(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} expects an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

const splitList = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const log = (s: string) => process.stderr.write(`${s}\n`);
const loadAvg = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** The kernel path an engine took (`kernels`, set by BEVZOO_KERNELS) and why; an engine without the choice has wasm's. */
function kernelsOf(engine: Engine): { kernels: string; reason: string } {
  const e = engine as Omit<Engine, 'kernels' | 'kernelsReason'> & { kernels?: string | null; kernelsReason?: string };
  return { kernels: e.kernels ?? (engine.backend === 'wasm' ? 'wasm' : engine.backend), reason: e.kernelsReason ?? engine.reason };
}

/** The job spec the runner makes for `bevzoo train <kind> <name> --preset <p>`, in a folder that is never written. */
function jobSpec(name: string, preset: string, dataset: DatasetChoice) {
  const o: PlanOptions = { preset, seeds: [0], out: join(tmpdir(), 'bevzoo-bench-step'), dataset, backend: 'auto' };
  const kind = list('teacher').some((t) => t.name === name) ? 'teacher' : 'student';
  const job = kind === 'teacher' ? teacherJob(o, get('teacher', name)) : baselineJob(o, get('student', name), 0);
  job.spec.usePackaged = false; // the bench trains
  return { kind, spec: job.spec };
}

/** One (model, path) measurement: runs in a child process, prints one JSON line on stdout. */
async function child(v: ParsedValues): Promise<void> {
  const path = v.path as KernelPath;
  const name = v.model!;
  const steps = positiveInt('steps', v.steps, 1)!;
  const warmup = positiveInt('warmup', v.warmup, 0)!;
  const threads = positiveInt('threads', v.threads, 1);
  let engine: Engine;
  try {
    engine = await initEngine({ backend: 'auto', threads: threads ?? 'auto', log: () => {} });
  } catch (e) {
    // e.g. BEVZOO_KERNELS=native without the addon: the path is unavailable, and the engine says why.
    const result: ChildResult = { model: name, path, kernels: 'none', kernelsReason: (e as Error).message, backend: '?', threads: 0, unavailable: true };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const { kernels, reason } = kernelsOf(engine);
  const base = { model: name, path, kernels, kernelsReason: reason, backend: engine.backend, threads: engine.threads };
  if (kernels !== path) {
    process.stdout.write(`${JSON.stringify({ ...base, unavailable: true } satisfies ChildResult)}\n`);
    return;
  }
  const tf = engine.tf as TF;
  const { failed } = await loadPlugins(v.plugin ?? []);
  for (const f of failed) log(`bench:step: warning: plugin ${f.name} (${f.from}) failed to load and is left out: ${f.error}`);
  const choice: DatasetChoice = { synthPreset: v.preset, synthSeed: 0, dataDir: v['data-dir'] };
  const data = await prepareDataset(choice, log);
  const { spec } = jobSpec(name, v.preset!, choice);
  const m = await buildJobModels(spec, createRng(spec.seed), datasetId(data), log);
  const setup = await trainingSetup(spec, data, m, log);
  const trainer = new Trainer<Batch>({ model: m.trainable, batches: [], steps: setup.train.steps, seed: spec.seed, ...trainerOptions(setup.train), progress: false });
  const lossFn = defaultLossFn<Batch>(m.trainable);
  const target = m.trainable as TrainableModel & { prepareBatch?(b: Batch): void; releaseBatch?(): void };
  const clip = trainerOptions(setup.train).clip;
  const vars = trainer.params.map(([, p]) => p);
  /** The gradients by parameter name, clipped as the trainer clips them; `made`: the clipped tensors, the caller's to dispose. */
  const clippedGrads = (grads: Record<string, unknown>): { grads: Map<string, Tensor>; made: Tensor[] } => {
    const byName = new Map<string, Tensor>();
    for (const [n, p] of trainer.params) {
      const gr = grads[p.name];
      if (gr) byName.set(n, gr as Tensor);
    }
    if (clip === null) return { grads: byName, made: [] };
    const c = clipGradNorm(byName, clip).grads as Map<string, Tensor>;
    return { grads: c, made: [...c.values()] };
  };
  try {
    // The batches first (loading is not timed, and nothing runs beside the steps).
    const batches: Batch[] = [];
    for (let e = 0; batches.length < warmup + steps; e++) {
      let got = 0;
      for await (const b of setup.loader.epoch(e)) {
        batches.push(b);
        got++;
        if (batches.length >= warmup + steps) break;
      }
      if (got === 0) throw new Error(`${name}: the training loader gives no batch (batch size ${setup.train.batchSize}, ${data.train.length} train samples)`);
    }
    m.trainable.train(true);

    let record: ChildResult['record'];
    if (v.record) {
      // The twin's recording: one forward(+loss) of the first batch with the initial weights.
      const named: [string, Parameters<typeof recordForward>[2][number][1]][] = [...m.trainable.namedParameters()];
      for (const [k, t] of Object.entries(m.trainable.stateDict())) if (t instanceof tf.Variable && !named.some(([, p]) => p === t)) named.push([k, t]);
      target.prepareBatch?.(batches[0]!);
      try {
        const g = recordForward(tf, () => lossFn(batches[0]!).total as unknown as Tensor, named);
        const opt = trainer.optimizer;
        const w = writeTwin(g, v.record, { model: name, lr: opt.lr, betas: opt.betas, eps: opt.eps, weightDecay: opt.weightDecay, clip });
        const made = g.leaves.filter((l) => l.madeInPass).sort((a, b) => b.values.length - a.values.length);
        record = {
          dir: v.record, loss: g.loss, calls: g.calls.length, recordedCalls: g.recordedCalls, leaves: g.leaves.length, kernels: kernelCounts(g), unmapped: w.unmapped,
          madeInPass: { count: made.length, values: made.reduce((s, l) => s + l.values.length, 0), largest: made.slice(0, 3).map((l) => l.shape) },
        };
      } finally {
        target.releaseBatch?.();
      }
    }

    const fwd: number[] = [];
    const fwdBwd: number[] = [];
    const opt: number[] = [];
    const losses: number[] = [];
    for (let i = 0; i < warmup + steps; i++) {
      const batch = batches[i]!;
      const lr = trainer.currentLr();
      target.prepareBatch?.(batch);
      let clipped: Map<string, Tensor> | undefined;
      const toDispose: Tensor[] = [];
      try {
        // (a) forward + loss, no tape
        let t0 = performance.now();
        tf.tidy(() => {
          lossFn(batch).total.dataSync();
        });
        const a = performance.now() - t0;
        // (b) forward + loss + backward + clip
        t0 = performance.now();
        const { value, grads } = tf.variableGrads(() => lossFn(batch).total, vars);
        toDispose.push(value, ...(Object.values(grads) as Tensor[]));
        const loss = value.dataSync()[0]!;
        const g = clippedGrads(grads); // reads the norm back
        toDispose.push(...g.made);
        clipped = g.grads;
        const last = [...clipped.values()].at(-1);
        if (last) readOne(tf, last);
        const b = performance.now() - t0;
        // (c) the optimiser
        t0 = performance.now();
        trainer.optimizer.step(clipped, lr);
        readOne(tf, trainer.params.at(-1)![1] as unknown as Tensor);
        const c = performance.now() - t0;
        trainer.step++;
        if (i >= warmup) {
          fwd.push(a);
          fwdBwd.push(b);
          opt.push(c);
          losses.push(loss);
        }
      } finally {
        for (const t of toDispose) t.dispose();
        target.releaseBatch?.();
      }
    }
    let profile: ChildResult['profile'];
    let profileForward: ChildResult['profileForward'];
    if (v.profile) {
      /** `run` on the first timed batch under tf.profile: its wall time and every kernel's. */
      const profiled = async (run: (batch: Batch) => void): Promise<NonNullable<ChildResult['profile']>> => {
        const batch = batches[warmup]!;
        target.prepareBatch?.(batch);
        try {
          const t0 = performance.now();
          const info = await tf.profile(() => run(batch));
          return { wallMs: performance.now() - t0, kernels: kernelTimes(info.kernels) };
        } finally {
          target.releaseBatch?.();
        }
      };
      // One forward(+loss) without a tape, as (a) times it; then one more step: gradients, clip and the update.
      profileForward = await profiled((batch) => tf.tidy(() => void lossFn(batch).total.dataSync()));
      profile = await profiled((batch) => {
        const { value, grads } = tf.variableGrads(() => lossFn(batch).total, vars);
        const g = clippedGrads(grads);
        trainer.optimizer.step(g.grads, trainer.currentLr());
        readOne(tf, trainer.params.at(-1)![1] as unknown as Tensor);
        tf.dispose([value, ...(Object.values(grads) as Tensor[]), ...g.made]);
      });
    }
    const result: ChildResult = {
      ...base, unavailable: false, batchSize: setup.train.batchSize, params: vars.reduce((s, p) => s + p.size, 0), preset: m.trained.preset,
      fwd, fwdBwd, opt, losses, clip, record, profile, profileForward,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    trainer.dispose();
    m.dispose();
  }
}

/** Read one value of a tensor back, so that everything that makes it has finished. */
function readOne(tf: TF, t: Tensor): void {
  tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]).dataSync());
}

type ParsedValues = ReturnType<typeof parse>['values'];
function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
}

/** Run this file as a child for one (model, path); resolves with its JSON line (or why there is none). */
function runChild(args: string[], path: KernelPath): Promise<ChildResult | { error: string }> {
  return runForJson<ChildResult>(process.execPath, [fileURLToPath(import.meta.url), '--child', ...args], {
    env: { ...process.env, BEVZOO_KERNELS: path },
    stderr: 'inherit',
    failed: (exit, _stderr, printed) => `the child process for path ${path} ended with ${exit}${printed ? '' : ' and printed no result'}`,
  });
}

async function parent(v: ParsedValues): Promise<number> {
  const steps = positiveInt('steps', v.steps, 1)!;
  const warmup = positiveInt('warmup', v.warmup, 0)!;
  const threads = positiveInt('threads', v.threads, 1);
  const paths = splitList(v.paths!) as KernelPath[];
  for (const p of paths) if (!PATHS.includes(p)) throw new UsageError(`--paths: unknown kernel path ${JSON.stringify(p)}; paths: ${PATHS.join(', ')}`);
  const { failed } = await loadPlugins(v.plugin ?? []);
  for (const f of failed) log(`bench:step: warning: plugin ${f.name} (${f.from}) failed to load and is left out: ${f.error}`);
  const known = [...list('student'), ...list('teacher')].map((p) => p.name);
  const models = v.models ? splitList(v.models) : known;
  for (const m of models) if (!known.includes(m)) throw new UsageError(`--models: ${JSON.stringify(m)} is not a registered student or teacher; registered: ${known.join(', ')}`);
  const dataDir = v['data-dir'] ? resolve(v['data-dir']) : undefined;
  // Generate the synthetic dataset once, before any child starts.
  await prepareDataset({ synthPreset: v.preset, synthSeed: 0, dataDir }, log);
  const python = v['skip-torch'] ? { why: '--skip-torch' } : findTorchPython();
  const startLoad = loadAvg();
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`bench:step — preset ${v.preset}, ${warmup} warm-up + ${steps} timed steps (medians), ${cpus().length} cores; load average at start: ${startLoad}`);
  const busy = loadavg()[0]! > 0.5 * cpus().length;
  if (busy) out(`warning: the machine is busy (load ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores): timings, PyTorch's OpenMP threads especially, are unreliable`);
  out('python' in python ? `PyTorch twin: ${python.python} (torch ${python.torch})` : `PyTorch row skipped: ${python.why}`);
  const common = ['--preset', v.preset!, '--steps', String(steps), '--warmup', String(warmup), ...(v.profile ? ['--profile'] : []), ...(threads ? ['--threads', String(threads)] : []), ...(dataDir ? ['--data-dir', dataDir] : []), ...(v.plugin ?? []).flatMap((p) => ['--plugin', p.startsWith('.') ? resolve(p) : p])];
  let failures = 0;
  for (const model of models) {
    const report: ModelReport = { model, rows: [], notes: [] };
    const recordDir = 'python' in python ? mkdtempSync(join(tmpdir(), `bevzoo-twin-${model}-`)) : undefined;
    let recorded = false;
    for (const path of paths) {
      const r = await runChild([...common, '--model', model, '--path', path, ...(recordDir && !recorded ? ['--record', recordDir] : [])], path);
      if ('error' in r) {
        report.notes.push(`${path}: failed — ${r.error}`);
        failures++;
        continue;
      }
      if (r.unavailable) {
        report.notes.push(`${path}: unavailable — ${r.kernels === 'none' ? r.kernelsReason : `the engine took the ${r.kernels} kernels (${r.kernelsReason})`}; row skipped`);
        continue;
      }
      if (r.record) recorded = true;
      report.rows.push(r);
      report.notes.push(`${path}: ${r.kernelsReason}, ${r.threads} thread${r.threads === 1 ? '' : 's'}; losses ${r.losses?.map((l) => l.toFixed(3)).join(', ')}`);
    }
    const rec = report.rows.find((r) => r.record)?.record;
    if (rec?.unmapped) {
      report.notes.push(`PyTorch twin not made: ${rec.unmapped}`);
      failures++;
    } else if (rec && 'python' in python) {
      const threadsUsed = report.rows[0]!.threads;
      const t = await runTwin(python.python, rec.dir, { threads: threadsUsed, steps, warmup });
      // The same twin with glibc malloc's thresholds raised (TORCH_ALLOCATORS): PyTorch as a user can tune it.
      const tuned = 'error' in t ? t : await runTwin(python.python, rec.dir, { threads: threadsUsed, steps, warmup, allocator: 'tuned' });
      if ('error' in t || 'error' in tuned) {
        report.notes.push(`PyTorch twin failed: ${'error' in t ? t.error : (tuned as { error: string }).error}`);
        failures++;
      } else {
        report.torch = t;
        report.torchTuned = tuned;
        const rel = Math.abs(t.firstLoss - rec.loss) / Math.max(Math.abs(rec.loss), 1e-12);
        report.notes.push(`twin check: PyTorch's first loss ${t.firstLoss.toPrecision(7)} vs tfjs ${rec.loss.toPrecision(7)} on the recorded batch (relative difference ${rel.toExponential(1)}): ${rel <= 1e-3 ? 'the same model' : 'MISMATCH (> 1e-3): the PyTorch figures are not comparable'}`);
        report.twinOk = rel <= 1e-3;
        if (!report.twinOk) failures++;
      }
    } else if (!('python' in python)) report.notes.push(`PyTorch: skipped (${python.why})`);
    // Tensors made from host values during the pass are data to the twin: the batch's arrays and index tables; a large
    // one computed from the model's variables would be work the twin skips (record.ts), so they are listed.
    if (rec?.madeInPass.count) report.notes.push(`twin: ${rec.madeInPass.count} tensors (${rec.madeInPass.values} values; largest ${rec.madeInPass.largest.map((s) => `[${s}]`).join(', ')}) were made from host values during the forward (batch arrays, index tables): data to the twin`);
    if (rec) report.notes.push(`twin: ${rec.calls} kernel calls (${rec.recordedCalls} recorded, the rest do not feed the loss), ${rec.leaves} leaves; kernels: ${rec.kernels.map(([k, n]) => `${k}×${n}`).join(' ')}`);
    out('');
    out(formatReport(report));
    if (recordDir && !process.env.BEVZOO_KEEP_TWIN) rmSync(recordDir, { recursive: true, force: true });
    else if (recordDir) out(`(twin kept in ${recordDir})`);
  }
  out('');
  out(`load average at end: ${loadAvg()} (at start: ${startLoad})`);
  return failures ? 1 : 0;
}

async function main(): Promise<number> {
  let v: ParsedValues;
  try {
    v = parse(process.argv.slice(2)).values;
    if (v.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (v.child) {
      await child(v);
      return 0;
    }
    return await parent(v);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`bench:step: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`bench:step: ${(e as Error)?.stack ?? e}\n`);
    return 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});

