import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJob, type JobSpec } from './job.js';
import { readResult, type JobResult } from './results.js';

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
}

/**
 * Run jobs with at most `parallel` at once, each in its own process (the wasm backend is single-threaded, so two
 * processes use both cores). Finished jobs (result.json present) are not run again: an interrupted matrix resumes.
 */
export async function runScheduled(jobs: ScheduledJob[], opts: ScheduleOptions): Promise<ScheduleOutcome> {
  const out: ScheduleOutcome = { results: new Map(), failed: new Map(), skipped: [], resumed: [] };
  const pending = new Map(jobs.map((j) => [j.spec.id, j]));
  for (const j of jobs) {
    const done = readResult(j.spec.outDir);
    if (done) {
      out.results.set(j.spec.id, done);
      out.resumed.push(j.spec.id);
      pending.delete(j.spec.id);
    }
  }
  if (out.resumed.length) opts.log(`resuming: ${out.resumed.length} finished run(s) kept (${out.resumed.join(', ')})`);
  const cli = opts.inProcess || opts.run ? null : builtCli();
  const parallel = cli || opts.run ? Math.max(1, opts.parallel) : 1;
  const running = new Map<string, Promise<void>>();
  const ready = (j: ScheduledJob) => j.after.every((a) => out.results.has(a));
  const blocked = (j: ScheduledJob) => j.after.some((a) => out.failed.has(a) || out.skipped.includes(a));
  while (pending.size || running.size) {
    for (const [id, j] of pending) {
      if (blocked(j)) {
        pending.delete(id);
        out.skipped.push(id);
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
      const p = (cli ? runChild(cli, j.spec, opts.log, parallel) : opts.run ? opts.run(j.spec) : runJob(j.spec, { log: (s) => opts.log(`[${id}] ${s}`) }))
        .then((r) => void out.results.set(id, r))
        .catch((e: Error) => {
          out.failed.set(id, e.message);
          opts.log(`FAILED ${id}: ${e.message}`);
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
  return out;
}

/** Run one job in a child process (`bevzoo job --spec <file>`); its output lines are prefixed with the job id. */
function runChild(cli: string, spec: JobSpec, log: (s: string) => void, parallel: number): Promise<JobResult> {
  mkdirSync(spec.outDir, { recursive: true });
  const specFile = join(spec.outDir, 'spec.json');
  writeFileSync(specFile, JSON.stringify(spec, null, 2));
  return new Promise((resolve, reject) => {
    const plugins = (spec.plugins ?? []).flatMap((p) => ['--plugin', p]);
    // Runs side by side already use the cores: each run then keeps the engine to one thread (unless the user said otherwise).
    const env = parallel > 1 && !process.env.BEVZOO_THREADS ? { ...process.env, BEVZOO_THREADS: '1' } : process.env;
    const child = spawn(process.execPath, [cli, 'job', '--spec', specFile, ...plugins], { stdio: ['ignore', 'pipe', 'pipe'], env });
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
      const r = readResult(spec.outDir);
      if (code === 0 && r) resolve(r);
      else reject(new Error(`exit ${code ?? signal}; last lines:\n    ${tail.slice(-8).join('\n    ')}`));
    });
  });
}
