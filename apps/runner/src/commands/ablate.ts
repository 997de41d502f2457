import { join, resolve } from 'node:path';
import { get, list, writeFileAtomic } from '@bevzoo/core';
import { type ParsedArgs, int, optStr, str, UsageError } from '../args.js';
import { prepareDataset } from '../pipeline/dataset.js';
import { commonPlanOptions } from '../pipeline/options.js';
import { baselineJob, distillJob, teacherJob, type PlanOptions } from '../pipeline/plan.js';
import { runScheduled, type ScheduledJob } from '../pipeline/scheduler.js';
import type { JobResult } from '../pipeline/results.js';
import { TASK_METRICS } from '../pipeline/report.js';
import { lockFolder } from '../pipeline/lock.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** `bevzoo ablate <distiller> [--teacher t] [--student s] [--preset p] [--seeds n]`: the distiller's component ablation on one cell. */
export async function ablateCommand(args: ParsedArgs): Promise<void> {
  const name = args.positionals[1];
  if (!name) throw new UsageError('usage: bevzoo ablate <distiller> [--teacher <t>] [--student <s>] [--preset <p>] [--seeds n] [--out dir]');
  const d = get('distiller', name);
  if (!d.ablation?.length) throw new UsageError(`distiller "${name}" declares no ablation rows`);
  const t = get('teacher', str(args, 'teacher', list('teacher').find((x) => x.task === d.task)?.name ?? ''));
  const s = get('student', str(args, 'student', list('student').find((x) => x.task === d.task)?.name ?? ''));
  const preset = str(args, 'preset', 'small');
  const nSeeds = int(args, 'seeds', 1);
  const o: PlanOptions = {
    preset, seeds: Array.from({ length: nSeeds }, (_, i) => i), out: resolve(str(args, 'out', `runs/ablate-${name}-${t.name}-${s.name}-${preset}`)),
    ...commonPlanOptions(args, preset),
  };
  const lock = await lockFolder(o.out, 'bevzoo ablate', log); // refused while another process works there
  const rows: { name: string; jobs: ScheduledJob[] }[] = [{ name: 'baseline', jobs: o.seeds.map((seed) => baselineJob(o, s, seed)) }];
  for (const row of d.ablation) {
    const dist = row.distiller ? get('distiller', row.distiller) : d;
    const slug = row.name.replace(/[^a-z0-9]+/gi, '_').replace(/^_|_$/g, '').toLowerCase();
    rows.push({ name: row.name, jobs: o.seeds.map((seed) => distillJob(o, t, s, dist, seed, { name: slug, overrides: row.overrides })) });
  }
  const ckpt = optStr(args, 'teacher-checkpoint');
  const all = rows.flatMap((r) => r.jobs);
  if (ckpt) for (const j of all) if (j.spec.role === 'distill') { j.after = []; j.spec.teacherCheckpoint = resolve(ckpt); }
  await prepareDataset(o.dataset, log);
  const r = await runScheduled(ckpt ? all : [teacherJob(o, t), ...all], { parallel: int(args, 'parallel', 2), log });
  const res = (jobs: ScheduledJob[]) => jobs.map((j) => r.results.get(j.spec.id)).filter((x): x is JobResult => !!x);
  const metrics = TASK_METRICS[d.task].metrics;
  const means = (xs: JobResult[]) => metrics.map((m) => mean(xs.map((y) => y.metrics[m.key] as number)));
  const base = res(rows[0]!.jobs);
  const b = base.length ? means(base) : metrics.map(() => NaN);
  const sg = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
  const header = ['row', ...metrics.map((m) => m.label), ...metrics.map((m) => `Δ${m.label}`)];
  const lines = [`## ${name} ablation: ${t.name} → ${s.name} (${preset}, ${nSeeds} seed(s)); ${metrics.map((m) => m.label).join(' / ')} in %`, '', `| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) {
    const x = res(row.jobs);
    if (!x.length) { lines.push(`| ${row.name} | failed |${' |'.repeat(header.length - 2)}`); continue; }
    const v = means(x);
    lines.push(`| ${[row.name, ...v.map((y) => (100 * y).toFixed(1)), ...v.map((y, i) => (row.name === 'baseline' ? '' : sg(y - b[i]!)))].join(' | ')} |`);
  }
  const md = lines.join('\n') + '\n';
  await writeFileAtomic(join(o.out, 'ablation.md'), md);
  lock.release();
  process.stdout.write(md);
  if (r.failed.size) throw new Error(`${r.failed.size} run(s) failed: ${[...r.failed.keys()].join(', ')}`);
}
