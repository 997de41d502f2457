import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { list } from '@bevzoo/core';
import { type ParsedArgs, int, optStr, str } from '../args.js';
import { describeDataset, prepareDataset } from '../pipeline/dataset.js';
import { commonPlanOptions } from '../pipeline/options.js';
import { defaultMatrixDistillers, matrixJobs, type PlanOptions } from '../pipeline/plan.js';
import { runScheduled, threadsPerRun } from '../pipeline/scheduler.js';
import { availableParallelism } from 'node:os';
import { writeReports } from '../pipeline/report.js';
import { lockFolder } from '../pipeline/lock.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const names = (v?: string) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/** The default number of seeds per cell of the main job (the targets are means over them). */
export const DEFAULT_SEEDS = 1;

/**
 * `bevzoo matrix [--preset p] [--seeds n] [--out dir]`: every compatible registered combination on the synthetic
 * dataset (or --dataroot), two runs at a time; resumes an interrupted matrix from its finished runs. With
 * `--queue redis://host:port` the runs go to a BullMQ queue for `bevzoo worker`s on any machine (pipeline/queue.ts).
 */
export async function matrixCommand(args: ParsedArgs): Promise<void> {
  const url = optStr(args, 'queue');
  const queue = url ? await import('../pipeline/queue.js') : null; // BullMQ loads only for --queue
  if (url) queue!.redisConnection(url); // a malformed URL is a usage error before anything starts
  if (!list('student').length) {
    process.stdout.write(
      `bevzoo matrix: no model is registered yet (teachers: ${list('teacher').length}, students: ${list('student').length}, distillers: ${list('distiller').length}).\n` +
        'Install teacher, student and distiller packages beside @bevzoo/runner, or pass --plugin <package or path>.\n',
    );
    return;
  }
  const preset = str(args, 'preset', 'small');
  const nSeeds = int(args, 'seeds', DEFAULT_SEEDS);
  const o: PlanOptions = {
    preset,
    seeds: Array.from({ length: nSeeds }, (_, i) => int(args, 'first-seed', 0) + i),
    out: resolve(str(args, 'out', `runs/matrix-${preset}`)),
    ...commonPlanOptions(args, preset),
    teachers: names(optStr(args, 'teachers')),
    students: names(optStr(args, 'students')),
    distillers: optStr(args, 'distillers') === 'all' ? list('distiller').map((d) => d.name) : (names(optStr(args, 'distillers')) ?? defaultMatrixDistillers()),
  };
  const lock = await lockFolder(o.out, 'bevzoo matrix', log); // refused while another process runs a matrix there
  const { jobs, incompatible } = matrixJobs(o);
  for (const i of incompatible) log(`not compatible, skipped: ${i}`);
  log(`bevzoo matrix (${preset}, ${nSeeds} seed(s)): ${jobs.length} runs → ${o.out}`);
  const t0 = Date.now();
  const data = await prepareDataset(o.dataset, log); // generate once, before the child processes start
  const parallel = int(args, 'parallel', 2);
  const threads = args.flags.threads !== undefined ? int(args, 'threads', 1) : undefined;
  const r = queue && url
    ? await queue.runQueued(jobs, {
        url, queueName: str(args, 'queue-name', queue.DEFAULT_QUEUE_NAME), threads: threadsPerRun(parallel, threads) ?? availableParallelism(), attempts: int(args, 'attempts', 3), log,
      })
    : await runScheduled(jobs, { parallel, threads, log, inProcess: !!args.flags['in-process'] });
  const results = jobs.map((j) => r.results.get(j.spec.id)).filter((x) => x !== undefined);
  const seconds = (Date.now() - t0) / 1000;
  await writeReports(o.out, results, { command: 'matrix', dataset: describeDataset(data), preset, seeds: o.seeds, wall_seconds: Math.round(seconds), failed: Object.fromEntries(r.failed), skipped: r.skipped, resumed: r.resumed });
  lock.release();
  process.stdout.write(readFileSync(join(o.out, 'results.md'), 'utf8'));
  process.stdout.write(`\nmatrix: ${results.length}/${jobs.length} runs in ${(seconds / 60).toFixed(1)} min (${r.resumed.length} resumed); reports in ${o.out}${url ? ` (runs on the queue at ${url})` : ''} (results.json, results.md, results.csv, report.html)\n`);
  if (r.failed.size || r.skipped.length) throw new Error(`${r.failed.size} run(s) failed and ${r.skipped.length} skipped: ${[...r.failed.keys(), ...r.skipped].join(', ')}`);
}
