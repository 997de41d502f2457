import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { get, list } from '@bevzoo/core';
import { type ParsedArgs, int, optStr, str, UsageError } from '../args.js';
import { describeDataset, prepareDataset } from '../pipeline/dataset.js';
import { runJob, type JobSpec } from '../pipeline/job.js';
import type { JobResult } from '../pipeline/results.js';
import { commonPlanOptions, overridesOf } from '../pipeline/options.js';
import { baselineJob, distillJob, presetFor, teacherJob, type PlanOptions } from '../pipeline/plan.js';
import { runScheduled } from '../pipeline/scheduler.js';
import { writeReports } from '../pipeline/report.js';
import { TASK_EVALUATORS } from '../pipeline/tasks.js';
import { lockFolder } from '../pipeline/lock.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

function printSummary(r: JobResult): void {
  process.stdout.write(`${TASK_EVALUATORS[r.task].summary(r)}\n`);
}

/** `bevzoo job --spec <file>`: run one job (the matrix starts these in child processes). */
export async function jobCommand(args: ParsedArgs): Promise<void> {
  const spec = JSON.parse(readFileSync(str(args, 'spec'), 'utf8')) as JobSpec;
  await runJob(spec, { log, queued: !!args.flags.queued });
}

function planOptions(args: ParsedArgs, defaultOut: string): PlanOptions {
  const preset = str(args, 'preset', 'small');
  return {
    preset,
    seeds: [int(args, 'seed', 0)],
    out: resolve(str(args, 'out', defaultOut)),
    ...commonPlanOptions(args, preset),
  };
}

/** `bevzoo train teacher|student <name> --preset <p> [--data <dir>]`: train one model and evaluate it on val. */
export async function trainCommand(args: ParsedArgs): Promise<void> {
  const kind = args.positionals[1];
  const name = args.positionals[2];
  if ((kind !== 'teacher' && kind !== 'student') || !name) throw new UsageError('usage: bevzoo train teacher|student <name> --preset <p> [--data <dir>] [--out <dir>] [--set k=v]');
  const plugin = get(kind, name);
  const o = planOptions(args, `runs/train-${kind}-${name}-${str(args, 'preset', 'small')}`);
  if (kind === 'teacher') o.teacherOverrides = { ...o.teacherOverrides, ...overridesOf(args, 'set') };
  else o.studentOverrides = { ...o.studentOverrides, ...overridesOf(args, 'set') };
  const job = kind === 'teacher' ? teacherJob(o, plugin as never) : baselineJob(o, plugin as never, o.seeds[0]!);
  job.spec.outDir = o.out;
  job.spec.seed = o.seeds[0]!; // the matrix trains one teacher (seed 0) for all its seeds; `train --seed` picks it
  job.spec.usePackaged = false; // `train` trains
  const dataset = await prepareDataset(o.dataset, log);
  const r = await runJob(job.spec, { log, dataset });
  printSummary(r);
  process.stdout.write(`weights: ${r.checkpoint}\ntraining: ${r.train.steps} steps in ${r.train.seconds} s (${r.train.steps_per_s} steps/s, ${r.train.samples_per_s} samples/s, backend ${r.train.backend})\n`);
}

/** `bevzoo distill --teacher <t> --student <s> --distiller <d> --preset <p>`: teacher (trained or loaded), baseline and distilled student side by side. */
export async function distillCommand(args: ParsedArgs): Promise<void> {
  const t = get('teacher', str(args, 'teacher'));
  const s = get('student', str(args, 'student'));
  const d = get('distiller', str(args, 'distiller', list('distiller').find((x) => x.task === s.task)?.name ?? ''));
  const o = planOptions(args, `runs/distill-${t.name}-${s.name}-${d.name}-${str(args, 'preset', 'small')}`);
  const tj = teacherJob(o, t);
  const ckpt = optStr(args, 'teacher-checkpoint');
  const cell = distillJob(o, t, s, d, o.seeds[0]!);
  const jobs = [cell, ...(args.flags['no-baseline'] ? [] : [baselineJob(o, s, o.seeds[0]!)])];
  if (ckpt) {
    cell.after = [];
    cell.spec.teacherCheckpoint = resolve(ckpt);
  } else jobs.unshift(tj);
  const lock = await lockFolder(o.out, 'bevzoo distill', log); // refused while another process works there
  const data = await prepareDataset(o.dataset, log); // generate once, before the child processes start
  const r = await runScheduled(jobs, { parallel: int(args, 'parallel', 2), log });
  const results = [...r.results.values()];
  await writeReports(o.out, results, { command: 'distill', dataset: describeDataset(data), preset: o.preset, teacher: t.name, student: s.name, distiller: d.name, presets: { teacher: presetFor(t, o.preset), student: presetFor(s, o.preset), distiller: presetFor(d, o.preset) } }, `bevzoo distill: ${t.name} → ${s.name} (${d.name})`);
  lock.release();
  process.stdout.write(readFileSync(join(o.out, 'results.md'), 'utf8'));
  if (r.failed.size) throw new Error(`${r.failed.size} run(s) failed: ${[...r.failed.keys()].join(', ')}`);
}
