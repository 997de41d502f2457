/**
 * The matrix across machines, on BullMQ over Redis. The coordinator (`bevzoo matrix --queue`) plans the runs as the
 * local matrix does and enqueues each as a job whose id is a hash of its run spec (enqueueing it again is a no-op);
 * workers (`bevzoo worker --queue`) on any machine that sees the same data and output folders run them, each in a
 * child process, which resumes from the run's checkpoints.
 *
 * - Dependencies: a distillation needs its teacher's run. One teacher run feeds many cells, and a BullMQ flow gives a
 *   job a single parent, so the dependency is kept by the worker: a job whose teacher has not finished goes back to
 *   the delayed set for a few seconds (BullMQ's `moveToDelayed` + `DelayedError`, which costs no attempt); teachers
 *   have the highest priority, so they are taken first. A teacher that failed for good fails its cells at once
 *   (`UnrecoverableError`), which the coordinator reports as skipped.
 * - Faults: a worker that dies (SIGKILL) stops renewing its job's lock; after `lockSeconds` another worker's stalled
 *   check puts the job back and a worker resumes the run from its last checkpoint. A run's result.json is written once:
 *   a job whose run has one returns it without running. Failed runs are retried `attempts` times with exponential
 *   backoff, then reported with their error. Redis going away: every connection retries until it is back (commands
 *   wait meanwhile), and a job Redis lost is enqueued again by the coordinator.
 * - Results equal the local matrix's: the same specs and seeds, and each run gets the engine threads the matrix
 *   planned (the thread count changes how sums are split, so it is part of the job and of its id).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { constants, hostname } from 'node:os';
import { basename, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { get, getModelPlugin, resolveConfig, runSettings, type TeacherPlugin } from '@bevzoo/core';
import { UsageError } from '../args.js';
import type { JobSpec } from './job.js';
import { trainedComponent } from './models.js';
import { readResult, type JobResult } from './results.js';
import { builtCli, keepFinished, runChild, runProgress, stopChildrenOnSignal, type ScheduledJob, type ScheduleOutcome } from './scheduler.js';

/** The queue's default name (`--queue-name`): one queue can serve one matrix at a time per name. */
export const DEFAULT_QUEUE_NAME = 'bevzoo-matrix';

/** What a queued job carries: the run, the runs it needs (their folders and job ids), its engine threads. */
export interface QueuedRun {
  spec: JobSpec;
  needs: { id: string; jobId: string; outDir: string }[];
  threads: number;
}

/** What a finished job returns (the result itself is the run's result.json on the shared file system). */
export interface QueuedReturn {
  id: string;
  host: string;
  /** False when the run had finished already (its result.json was there) and was not run again. */
  ran: boolean;
}

/** The prefix of the error of a job whose dependency failed for good (the coordinator counts it as skipped). */
export const DEPENDENCY_FAILED = 'needs a run that failed: ';

/** Jobs a worker takes first: teachers (the cells wait for them), then baselines, then cells. */
const PRIORITY: Record<JobSpec['role'], number> = { teacher: 1, baseline: 2, distill: 3 };

/** How long a job whose dependency has not finished waits before a worker looks again (ms). */
const DEPENDENCY_POLL_MS = 3000;

/**
 * The connection options of a `redis://[user:password@]host[:port][/db]` (or `rediss://`, TLS) URL. Every connection
 * retries forever (BullMQ's workers need `maxRetriesPerRequest: null`): while Redis is away commands wait, and all
 * continue when it is back.
 */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--queue ${JSON.stringify(url)} is not a URL; give redis://host:port (optionally redis://user:password@host:port/db)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UsageError(`--queue ${url}: the scheme must be redis:// or rediss:// (TLS), not ${u.protocol}//`);
  if (!u.hostname) throw new UsageError(`--queue ${url}: no host`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new UsageError(`--queue ${url}: the database must be a number (redis://host:port/0), not ${u.pathname.slice(1)}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}

/** JSON with object keys sorted (the same value always gives the same text). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * The job id of a run: its id (readable in Redis tools) and a hash of its spec and threads. The teacher checkpoint is
 * left out: the worker fills it in from the teacher's result when the run starts.
 */
export function queueJobId(spec: JobSpec, threads: number): string {
  const { teacherCheckpoint: _, ...planned } = spec;
  return `${spec.id}.${createHash('sha256').update(canonical({ spec: planned, threads })).digest('hex').slice(0, 20)}`;
}

/** The weights of a finished teacher run as this machine sees them: the run's file on the shared file system, or the teacher package's own copy of packaged weights. */
export function teacherCheckpointHere(r: JobResult): string {
  if (existsSync(r.checkpoint)) return r.checkpoint;
  if (r.train.packaged && r.teacher) {
    const own = (get('teacher', r.teacher) as TeacherPlugin).checkpoints?.find((c) => basename(c.file) === basename(r.checkpoint));
    if (own && existsSync(own.file)) return own.file;
  }
  throw new Error(`the weights of ${r.id} (${r.checkpoint}) are not on this machine: the output folder must be on a file system every worker sees, at the same path`);
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Report a connection's errors once per outage (they repeat on every reconnection attempt). */
function outageLog(what: string, log: (s: string) => void): { onError: (e: unknown) => void; ok: () => void } {
  let down = false;
  return {
    onError: (e) => {
      if (!down) log(`${what}: Redis unreachable (${errorText(e)}); retrying until it is back`);
      down = true;
    },
    ok: () => {
      if (down) log(`${what}: Redis is back`);
      down = false;
    },
  };
}

export interface CoordinatorOptions {
  url: string;
  queueName: string;
  /** The engine threads of every run (the local matrix gives each run 1 when two go at a time). */
  threads: number;
  /** Tries of a run that fails before it is reported (BullMQ `attempts`). */
  attempts: number;
  log: (s: string) => void;
  /** How often the coordinator looks at the runs (ms). */
  pollMs?: number;
}

/** The last step a run's train.jsonl records (progress of a running run), 0 when none. */
function stepOf(outDir: string): number {
  const f = join(outDir, 'train.jsonl');
  try {
    if (!statSync(f).size) return 0;
    const lines = readFileSync(f, 'utf8').trimEnd().split('\n');
    return (JSON.parse(lines.at(-1)!) as { step?: number }).step ?? 0;
  } catch {
    return 0;
  }
}

/** The training steps a run plans (`--steps`, else its trained model's config), undefined where they cannot be told. */
function plannedSteps(spec: JobSpec): number | undefined {
  if (spec.steps) return spec.steps;
  try {
    const c = trainedComponent(spec);
    return runSettings(resolveConfig(getModelPlugin(c.name, c.kind), { preset: c.preset, overrides: c.overrides }).config).train.steps;
  } catch {
    return undefined; // a plugin this process has not loaded: the step alone is shown
  }
}

/**
 * Enqueue the planned runs and follow them until each has finished or failed for good; a run whose result.json is
 * there already is kept. Returns what `runScheduled` returns, so the matrix writes the same reports. Rerunning the
 * coordinator is safe: jobs already queued are not added again, and a run that failed for good is retried.
 */
export async function runQueued(jobs: ScheduledJob[], o: CoordinatorOptions): Promise<ScheduleOutcome> {
  const log = o.log;
  const { out, open } = keepFinished(jobs, log);
  // Each run's job id, and its planned steps (for the progress line).
  const planned = new Map(jobs.map((j) => [j.spec.id, { job: j, jobId: queueJobId(j.spec, o.threads), steps: plannedSteps(j.spec) }]));
  const queue = new Queue<QueuedRun, QueuedReturn>(o.queueName, { connection: redisConnection(o.url) });
  const outage = outageLog('coordinator', log);
  queue.on('error', outage.onError);
  // Stopping the coordinator stops nothing else: the runs stay queued and the workers go on; rerunning it follows them again.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: the coordinator stops following; the runs stay on the queue and the workers go on (rerun the same command to follow them and write the reports)`);
    process.exit(128 + constants.signals[signal]);
  };
  for (const sig of signals) process.on(sig, onSignal);
  try {
    /** Put run `id` on the queue: 'added', 'queued' (there already: a no-op), or 'retried' (it had failed for good). */
    const enqueue = async (id: string, again = false): Promise<'added' | 'queued' | 'retried'> => {
      const { job, jobId } = planned.get(id)!;
      const needs = job.after.map((a) => {
        const dep = planned.get(a);
        if (!dep) throw new Error(`run ${id} needs ${a}, which is not part of this matrix`);
        return { id: a, jobId: dep.jobId, outDir: dep.job.spec.outDir };
      });
      const existing = await queue.getJob(jobId);
      if (existing && (await existing.getState()) === 'failed') {
        log(`${id}: it failed for good in an earlier matrix (${existing.failedReason}); retrying it`);
        await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        return 'retried';
      }
      if (existing) return 'queued'; // queued, running, waiting or done: adding it again would be a no-op anyway
      await queue.add(id, { spec: job.spec, needs, threads: o.threads }, {
        jobId, priority: PRIORITY[job.spec.role], attempts: o.attempts, backoff: { type: 'exponential', delay: 10_000 }, removeOnComplete: false, removeOnFail: false,
      });
      if (again) log(`${id}: its job was gone from the queue (did Redis lose its data?): enqueued again`);
      return 'added';
    };

    const how = { added: 0, queued: 0, retried: 0 };
    for (const id of open) how[await enqueue(id)]++;
    outage.ok();
    const total = planned.size;
    log(`queue ${o.queueName} at ${o.url}: ${open.size} run(s) to go (${how.added} added, ${how.queued} queued already, ${how.retried} retried; ${o.threads} engine thread(s) each); start workers with: bevzoo worker --queue ${o.url}${o.queueName === DEFAULT_QUEUE_NAME ? '' : ` --queue-name ${o.queueName}`}`);

    const progress = runProgress(open.size);
    let lastStatus = '';
    let lastPrint = 0;
    while (open.size) {
      const running: string[] = [];
      let waiting = 0;
      for (const id of [...open]) {
        const { job, jobId, steps } = planned.get(id)!;
        const r = readResult(job.spec.outDir);
        if (r) {
          out.results.set(id, r);
          open.delete(id);
          log(progress.done(id, r.timing?.wall ?? r.train.seconds + r.eval.seconds, Boolean(r.train.packaged)));
          continue;
        }
        const q = await queue.getJob(jobId);
        const state = q ? await q.getState() : 'unknown';
        if (state === 'unknown') await enqueue(id, true);
        else if (state === 'failed') {
          open.delete(id);
          const reason = q!.failedReason ?? 'no reason recorded';
          progress.gone();
          if (reason.startsWith(DEPENDENCY_FAILED)) {
            out.skipped.push(id);
            log(`skipped ${id}: it ${reason}`);
          } else {
            out.failed.set(id, `${reason} (after ${q!.attemptsMade} attempt(s))`);
            log(`FAILED ${id} after ${q!.attemptsMade} attempt(s): ${reason}`);
          }
        } else if (state === 'completed') {
          open.delete(id); // completed without a result: cannot happen (the worker returns after the run wrote it)
          out.failed.set(id, `its job completed but ${join(job.spec.outDir, 'result.json')} is missing`);
        } else if (state === 'active') running.push(`${id} step ${stepOf(job.spec.outDir)}${steps ? `/${steps}` : ''}`);
        else waiting++;
      }
      outage.ok();
      if (!open.size) break;
      const status = `${out.results.size} of ${total} done, ${running.length} running${running.length ? ` (${running.join(', ')})` : ''}, ${waiting} waiting`;
      const now = Date.now();
      if (status.replace(/ step \d+/g, '') !== lastStatus.replace(/ step \d+/g, '') || now - lastPrint > 60_000) {
        log(status);
        [lastStatus, lastPrint] = [status, now];
      }
      await new Promise((r) => setTimeout(r, o.pollMs ?? 2000));
    }
    return out;
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
    await queue.close().catch(() => {});
  }
}

export interface WorkerOptions {
  url: string;
  queueName: string;
  /** Runs at once (each a child process). */
  concurrency: number;
  /** Seconds a job's lock lasts without renewal: a dead worker's run is taken over after about this long (and as often checked). */
  lockSeconds: number;
  log: (s: string) => void;
}

/**
 * Take runs from the queue until stopped (SIGINT, SIGTERM: the runs stop, and their jobs go back to the queue after
 * `lockSeconds`, to resume from their checkpoints on some worker). Returns the worker's `close` (tests).
 */
export async function runWorker(o: WorkerOptions): Promise<{ close: () => Promise<void> }> {
  const cli = builtCli();
  if (!cli) throw new Error('bevzoo worker runs each job in a child process of the built CLI (dist/cli.js): build @bevzoo/runner first');
  const log = o.log;
  const host = hostname();
  const children = new Set<ChildProcess>();
  const connection = redisConnection(o.url);
  const deps = new Queue<QueuedRun, QueuedReturn>(o.queueName, { connection });
  const outage = outageLog('worker', log);
  deps.on('error', outage.onError);
  const told = new Set<string>();
  const stop = stopChildrenOnSignal(children, log, `their jobs go back to the queue after about ${o.lockSeconds} s, to resume from their checkpoints on a worker`);

  const processRun = async (job: Job<QueuedRun, QueuedReturn>, token?: string): Promise<QueuedReturn> => {
    const { spec, needs, threads } = job.data;
    outage.ok();
    const done = readResult(spec.outDir);
    if (done) {
      log(`${spec.id}: finished already (${done.finished_at}); its result is kept, not run again`);
      return { id: spec.id, host, ran: false };
    }
    for (const n of needs) {
      const r = readResult(n.outDir);
      if (r) {
        spec.teacherCheckpoint = teacherCheckpointHere(r);
        continue;
      }
      const dep = await deps.getJob(n.jobId);
      if (dep && (await dep.getState()) === 'failed') throw new UnrecoverableError(`${DEPENDENCY_FAILED}${n.id} (${dep.failedReason})`);
      if (!told.has(spec.id)) log(`${spec.id}: waits for ${n.id}`);
      told.add(spec.id);
      await job.moveToDelayed(Date.now() + DEPENDENCY_POLL_MS, token);
      throw new DelayedError();
    }
    const attempt = `attempt ${job.attemptsMade + 1} of ${job.opts.attempts ?? 1}`;
    log(`${spec.id}: starting on ${host} (${attempt}, ${threads} engine thread(s))`);
    try {
      await runChild(cli, spec, { log, threads, children, args: ['--queued'] });
    } catch (e) {
      if (stop.stopping()) await new Promise(() => {}); // stopped by a signal: the handler ends this process; the job returns to the queue
      throw e;
    }
    log(`${spec.id}: finished on ${host}`);
    return { id: spec.id, host, ran: true };
  };

  const worker = new Worker<QueuedRun, QueuedReturn>(o.queueName, processRun, {
    connection, concurrency: o.concurrency, lockDuration: o.lockSeconds * 1000, stalledInterval: o.lockSeconds * 1000, maxStalledCount: 3,
  });
  worker.on('error', outage.onError);
  worker.on('failed', (job, e) => {
    if (!job || e instanceof DelayedError || e.name === 'DelayedError') return;
    const left = (job.opts.attempts ?? 1) - job.attemptsMade;
    log(`${job.name}: failed (attempt ${job.attemptsMade} of ${job.opts.attempts ?? 1}${left > 0 && !(e instanceof UnrecoverableError) ? ', retried later' : ''}): ${e.message.split('\n')[0]}`);
  });
  worker.on('stalled', (id) => log(`job ${id}: its worker stopped renewing its lock; it goes back to the queue`));
  await worker.waitUntilReady();
  log(`bevzoo worker on ${host}: queue ${o.queueName} at ${o.url}, ${o.concurrency} run(s) at once; a dead worker's runs are taken over after ${o.lockSeconds} s`);
  return {
    close: async () => {
      stop.remove();
      await worker.close();
      await deps.close();
    },
  };
}
