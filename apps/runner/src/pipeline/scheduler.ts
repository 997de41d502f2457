import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PARENT_PID_ENV, runJob, type JobSpec } from './job.js';
import { readResult, writeJsonAtomic, type JobResult } from './results.js';

export interface ScheduledJob {
  spec: JobSpec;
  /** Ids of jobs that must finish first (a distillation waits for its teacher). */
  after: string[];
}

export interface ScheduleOutcome {
  results: Map<string, JobResult>;
  failed: Map<string, string>;
  skipped: string[];
  resumed: string[];
}

/** The built CLI beside this module (dist/cli.js); absent when running from sources. */
export function builtCli(): string | null {
  const p = fileURLToPath(new URL('./cli.js', import.meta.url));
  return existsSync(p) ? p : null;
}

export interface ScheduleOptions {
  /** Runs at once (child processes; with `run`, concurrent calls). */
  parallel: number;
  log: (s: string) => void;
  /** Run every job in this process, one at a time (tests, debugging). */
  inProcess?: boolean;
  /** Run a job with this function instead of a child process (tests, other executors); `parallel` calls at once. */
  run?: (spec: JobSpec) => Promise<JobResult>;
  /** The engine threads of each child run (default: 1 when runs go side by side and BEVZOO_THREADS is unset). */
  threads?: number;
}

/**
 * The engine threads of each run of a schedule: the user's choice, else one per run when runs go side by side (they
 * already use the cores), else the engine's default (undefined). The thread count changes how sums are split, so
 * runs are bit-identical only with the same count (the queue gives each run the count its matrix planned).
 */
export function threadsPerRun(parallel: number, threads?: number): number | undefined {
  if (threads) return threads;
  if (process.env.BEVZOO_THREADS) return Number(process.env.BEVZOO_THREADS);
  return parallel > 1 ? 1 : undefined;
}

/** How long (ms) the runs get to end after SIGTERM before they are killed (SIGKILL). */
const STOP_GRACE_MS = 5000;

/**
 * While child runs go, SIGINT, SIGTERM and SIGHUP stop them (SIGTERM, then SIGKILL after a grace period) and then
 * end this process with 128 + the signal number (its exit handlers release its locks); a second signal kills them at
 * once. (SIGKILL of this process cannot be caught: the runs notice their parent is gone and stop themselves, see
 * `runJob`.) `stopping` says whether a signal came; `remove` removes the handlers.
 */
export function stopChildrenOnSignal(children: Set<ChildProcess>, log: (s: string) => void, after = 'rerun the same command to resume'): { stopping: () => boolean; remove: () => void } {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    const alive = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
    if (stopping) {
      for (const c of alive) c.kill('SIGKILL');
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    log(`${signal}: stopping ${alive.length} run(s)${alive.length ? ` (pid ${alive.map((c) => c.pid).join(', ')})` : ''}; ${after}`);
    for (const c of alive) c.kill('SIGTERM');
    const force = setTimeout(() => alive.forEach((c) => c.kill('SIGKILL')), STOP_GRACE_MS);
    void Promise.all(alive.map((c) => new Promise((res) => (c.exitCode !== null || c.signalCode !== null ? res(null) : c.once('exit', res))))).then(() => {
      clearTimeout(force);
      process.exit(128 + constants.signals[signal]);
    });
  };
  for (const s of signals) process.on(s, onSignal);
  return { stopping: () => stopping, remove: () => signals.forEach((s) => process.off(s, onSignal)) };
}

/**
 * The outcome a schedule starts from: the runs whose folder holds a result.json already are kept (resumed, logged)
 * and not run again; `open` are the ids of the others.
 */
export function keepFinished(jobs: readonly ScheduledJob[], log: (s: string) => void): { out: ScheduleOutcome; open: Set<string> } {
  const out: ScheduleOutcome = { results: new Map(), failed: new Map(), skipped: [], resumed: [] };
  const open = new Set<string>();
  for (const j of jobs) {
    const done = readResult(j.spec.outDir);
    if (!done) open.add(j.spec.id);
    else {
      out.results.set(j.spec.id, done);
      out.resumed.push(j.spec.id);
    }
  }
  if (out.resumed.length) log(`resuming: ${out.resumed.length} finished run(s) kept (${out.resumed.join(', ')})`);
  return { out, open };
}

/**
 * Run jobs with at most `parallel` at once, each in its own process (the wasm backend is single-threaded, so two
 * processes use both cores). Finished jobs (result.json present) are not run again: an interrupted matrix resumes.
 * A signal (SIGINT, SIGTERM, SIGHUP) stops the child runs before this process ends.
 */
export async function runScheduled(jobs: ScheduledJob[], opts: ScheduleOptions): Promise<ScheduleOutcome> {
  const { out, open } = keepFinished(jobs, opts.log);
  const pending = new Map(jobs.filter((j) => open.has(j.spec.id)).map((j) => [j.spec.id, j]));
  const cli = opts.inProcess || opts.run ? null : builtCli();
  const parallel = cli || opts.run ? Math.max(1, opts.parallel) : 1;
  const running = new Map<string, Promise<void>>();
  const children = new Set<ChildProcess>();
  const stop = cli ? stopChildrenOnSignal(children, opts.log) : null;
  const toRun = pending.size;
  let started = 0;
  const progress = runProgress(toRun);
  const ready = (j: ScheduledJob) => j.after.every((a) => out.results.has(a));
  const blocked = (j: ScheduledJob) => j.after.some((a) => out.failed.has(a) || out.skipped.includes(a));
  while (pending.size || running.size) {
    if (stop?.stopping()) await new Promise(() => {}); // start nothing more: the signal handler ends the process
    for (const [id, j] of pending) {
      if (blocked(j)) {
        pending.delete(id);
        out.skipped.push(id);
        progress.gone();
        opts.log(`skipped ${id}: it needs ${j.after.join(', ')}, which did not finish`);
      }
    }
    for (const [id, j] of pending) {
      if (running.size >= parallel) break;
      if (!ready(j)) continue;
      pending.delete(id);
      // Fill in dependency outputs (a teacher's checkpoint) now that they exist.
      for (const a of j.after) {
        const r = out.results.get(a)!;
        if (r.role === 'teacher' && j.spec.role === 'distill') j.spec.teacherCheckpoint = r.checkpoint;
      }
      opts.log(`starting ${id} (run ${++started} of ${toRun})`);
      const t1 = Date.now();
      const p = (cli ? runChild(cli, j.spec, { log: opts.log, threads: threadsPerRun(parallel, opts.threads), children }) : opts.run ? opts.run(j.spec) : runJob(j.spec, { log: (s) => opts.log(`[${id}] ${s}`) }))
        .then((r) => {
          out.results.set(id, r);
          opts.log(progress.done(id, (Date.now() - t1) / 1000, Boolean(r.train.packaged)));
        })
        .catch((e: Error) => {
          out.failed.set(id, e.message);
          if (!stop?.stopping()) opts.log(`FAILED ${id}: ${e.message}`);
          progress.gone();
        })
        .finally(() => running.delete(id));
      running.set(id, p);
    }
    if (!running.size) {
      if (pending.size) {
        // Nothing can start: unresolvable dependencies.
        for (const id of pending.keys()) out.skipped.push(id);
        pending.clear();
      }
      break;
    }
    await Promise.race(running.values());
  }
  stop?.remove();
  return out;
}

/** How `runChild` runs a job. */
export interface ChildOptions {
  log: (s: string) => void;
  /** BEVZOO_THREADS of the run (undefined: this process's environment decides). */
  threads?: number;
  /** The running children (the caller stops them on a signal). */
  children: Set<ChildProcess>;
  /** Extra arguments of `bevzoo job` (`--queued`). */
  args?: string[];
}

const minutes = (s: number) => (s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);

/**
 * Progress over the runs a schedule starts (finished ones it resumed left out): `done` gives the line for a run that
 * finished — `run i of N done: id (its time); k to go, about T left` — with T the wall time so far per finished run
 * times the runs left (runs going side by side count once: it is wall time); `gone` counts a run that failed or was
 * skipped as no longer to go. A run that trained nothing (`loaded`: a teacher's packaged weights) does not count
 * towards the rate: it takes seconds where a training takes minutes. Until a run that trained finishes, no T is given.
 */
export function runProgress(total: number, now: () => number = Date.now): { done(id: string, seconds: number, loaded?: boolean): string; gone(): void } {
  const t0 = now();
  let finished = 0, trained = 0, gone = 0;
  return {
    done(id, seconds, loaded = false) {
      finished++;
      if (!loaded) trained++;
      const left = total - finished - gone;
      const eta = trained ? `, about ${minutes(((now() - t0) / 1000 / trained) * left)} left` : '';
      return `run ${finished} of ${total} done: ${id} (${minutes(seconds)}); ${left ? `${left} to go${eta}` : 'none to go'}`;
    },
    gone() {
      gone++;
    },
  };
}

/**
 * Run one job in a child process (`bevzoo job --spec <file>`, in `children` while it runs); its output lines are
 * prefixed with the job id. The child stops by itself if this process dies (it gets our pid in BEVZOO_PARENT_PID).
 */
export async function runChild(cli: string, spec: JobSpec, o: ChildOptions): Promise<JobResult> {
  const { log, children } = o;
  const specFile = join(spec.outDir, 'spec.json');
  await writeJsonAtomic(specFile, spec);
  return new Promise((resolve, reject) => {
    const plugins = (spec.plugins ?? []).flatMap((p) => ['--plugin', p]);
    const threads = o.threads ? { BEVZOO_THREADS: String(o.threads) } : {};
    const env = { ...process.env, ...threads, [PARENT_PID_ENV]: String(process.pid) };
    const child = spawn(process.execPath, [cli, 'job', '--spec', specFile, ...(o.args ?? []), ...plugins], { stdio: ['ignore', 'pipe', 'pipe'], env });
    children.add(child);
    let tail: string[] = [];
    const pipe = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split(/\r|\n/)) {
        const l = line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').trim();
        if (!l) continue;
        tail = [...tail.slice(-20), l];
        log(`[${spec.id}] ${l}`);
      }
    };
    child.stdout.on('data', pipe);
    child.stderr.on('data', pipe);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      const r = readResult(spec.outDir);
      if (code === 0 && r) resolve(r);
      else {
        const why = tail.findLast((l) => l.startsWith('bevzoo ')); // the CLI's error line (`bevzoo job: ...`)
        reject(new Error(`exit ${code ?? signal}${why ? `: ${why}` : ''}; last lines:\n    ${tail.slice(-8).join('\n    ')}`));
      }
    });
  });
}
