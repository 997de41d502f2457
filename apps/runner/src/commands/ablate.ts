import { writeFile, rename, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { get, list } from '@bevzoo/core';
import { type ParsedArgs, int, optStr, str, UsageError } from '../args.js';
import { prepareDataset } from '../pipeline/dataset.js';
import { commonPlanOptions } from '../pipeline/options.js';
import { baselineJob, distillJob, teacherJob, type PlanOptions } from '../pipeline/plan.js';
import { runScheduled, type ScheduledJob } from '../pipeline/scheduler.js';
import type { JobResult } from '../pipeline/job.js';

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
  await mkdir(o.out, { recursive: true });
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
  const base = res(rows[0]!.jobs);
  const bm = base.length ? mean(base.map((x) => x.metrics.mean_ap)) : NaN, bn = base.length ? mean(base.map((x) => x.metrics.nd_score)) : NaN;
  const lines = [`## ${name} ablation: ${t.name} → ${s.name} (${preset}, ${nSeeds} seed(s)); mAP / NDS in %`, '', '| row | mAP | NDS | ΔmAP | ΔNDS |', '|---|---|---|---|---|'];
  for (const row of rows) {
    const x = res(row.jobs);
    if (!x.length) { lines.push(`| ${row.name} | failed | | | |`); continue; }
    const m = mean(x.map((y) => y.metrics.mean_ap)), n = mean(x.map((y) => y.metrics.nd_score));
    const sg = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
    lines.push(`| ${row.name} | ${(100 * m).toFixed(1)} | ${(100 * n).toFixed(1)} | ${row.name === 'baseline' ? '' : sg(m - bm)} | ${row.name === 'baseline' ? '' : sg(n - bn)} |`);
  }
  const md = lines.join('\n') + '\n';
  const tmp = join(o.out, `ablation.md.tmp-${process.pid}`);
  await writeFile(tmp, md);
  await rename(tmp, join(o.out, 'ablation.md'));
  process.stdout.write(md);
  if (r.failed.size) throw new Error(`${r.failed.size} run(s) failed: ${[...r.failed.keys()].join(', ')}`);
}
