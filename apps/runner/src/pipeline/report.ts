/**
 * The matrix's outputs: results.json (one row per run, with its task), results.md and results.csv with one table
 * per task in the layout of the papers' tables (students as rows; baseline, then each teacher's distilled result
 * with its Δ), and report.html with the tables, loss curves and BEV pictures of predictions against ground truth.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, type Task } from '@bevzoo/core';
import { DETECTION_CLASSES, OCC_CLASSES } from '@bevzoo/nuscenes';
import type { JobResult, PreviewBox } from './results.js';

export interface ResultRow {
  task: Task;
  teacher: string | null;
  student: string | null;
  distiller: string | null;
  seed: number;
  metrics: JobResult['metrics'];
  train: JobResult['train'];
  id: string;
}

/** The headline metrics of each task, in table order. */
export const TASK_METRICS: Record<Task, { title: string; metrics: { key: string; label: string }[] }> = {
  det: { title: 'Detection', metrics: [{ key: 'mean_ap', label: 'mAP' }, { key: 'nd_score', label: 'NDS' }] },
  occ: { title: 'Occupancy', metrics: [{ key: 'miou', label: 'mIoU' }] },
};
const TASKS = Object.keys(TASK_METRICS) as Task[];

export function toRows(results: JobResult[]): ResultRow[] {
  const order = { teacher: 0, baseline: 1, distill: 2 } as const;
  return [...results]
    .sort((a, b) => TASKS.indexOf(a.task) - TASKS.indexOf(b.task) || order[a.role] - order[b.role] || a.id.localeCompare(b.id))
    .map((r) => ({ task: r.task, teacher: r.teacher, student: r.student, distiller: r.distiller, seed: r.seed, metrics: r.metrics, train: r.train, id: r.id }));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pct = (v: number) => (100 * v).toFixed(1);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
const metricOf = (r: ResultRow, key: string) => r.metrics[key] as number;

/** Mean and standard deviation over seeds of each headline metric of the task. */
export interface CellSummary {
  mean: number[];
  std: number[];
  seeds: number;
}

function summarise(rows: ResultRow[], task: Task): CellSummary | null {
  if (!rows.length) return null;
  const per = TASK_METRICS[task].metrics.map((m) => rows.map((r) => metricOf(r, m.key)));
  return { mean: per.map(mean), std: per.map(std), seeds: rows.length };
}

/** The paper-layout table of one task: per student, the baseline and each (teacher, distiller) column. */
export function paperTable(all: ResultRow[], task: Task) {
  const rows = all.filter((r) => r.task === task);
  const students = [...new Set(rows.filter((r) => r.student).map((r) => r.student!))];
  const keys = [...new Set(rows.filter((r) => r.distiller).map((r) => JSON.stringify([r.teacher, r.distiller])))];
  const columns = keys.map((k) => {
    const [teacher, distiller] = JSON.parse(k) as [string, string];
    return { teacher, distiller };
  });
  const body = students.map((s) => ({
    student: s,
    base: summarise(rows.filter((r) => r.student === s && !r.teacher), task),
    cells: columns.map((c) => summarise(rows.filter((r) => r.student === s && r.teacher === c.teacher && r.distiller === c.distiller), task)),
  }));
  const teachers = [...new Set(rows.filter((r) => r.teacher && !r.student).map((r) => r.teacher!))].map((t) => {
    const own = rows.filter((r) => r.teacher === t && !r.student);
    return { teacher: t, packaged: own.some((r) => r.train.packaged), ...summarise(own, task)! };
  });
  return { columns, body, teachers };
}

/** A table: a title, a header and rows of cells (plain text; each output format escapes what it must). */
interface Table { title: string; header: string[]; rows: string[][]; note?: string }

/** The tables of results.md and report.html: per task, the paper table, the teachers, and the per-class table. */
export function resultTables(rows: ResultRow[], dataset = 'val'): Table[] {
  const tables: Table[] = [];
  for (const task of TASKS) {
    if (!rows.some((r) => r.task === task)) continue;
    const spec = TASK_METRICS[task];
    const units = spec.metrics.map((m) => m.label).join(' / ');
    const t = paperTable(rows, task);
    const fmt = (c: CellSummary | null) => (c ? c.mean.map(pct).join(' / ') : '—');
    const delta = (c: CellSummary | null, b: CellSummary | null) => (c && b ? c.mean.map((v, i) => signed(v - b.mean[i]!)).join(' / ') : '—');
    const seeds = Math.max(0, ...t.body.map((r) => r.base?.seeds ?? 0));
    tables.push({
      title: `${spec.title} (${dataset}; ${units} in %, mean over seeds; Δ against the baseline)`,
      header: ['student', 'baseline', ...t.columns.flatMap((c) => [`+ ${c.teacher} (${c.distiller})`, 'Δ'])],
      rows: t.body.map((r) => [r.student, fmt(r.base), ...r.cells.flatMap((c) => [fmt(c), delta(c, r.base)])]),
      note: seeds > 1 ? `Seeds per cell: ${seeds}; standard deviations are in results.csv.` : undefined,
    });
    if (t.teachers.length)
      tables.push({ title: `${spec.title} teachers`, header: ['teacher', units], rows: t.teachers.map((x) => [`${x.teacher}${x.packaged ? ' (packaged weights)' : ''}`, fmt(x)]) });
    if (task === 'occ') tables.push(occPerClassTable(rows.filter((r) => r.task === 'occ')));
  }
  return tables;
}

/** Per-class IoU (%) of each occupancy run group (student or teacher, teacher, distiller), mean over seeds. */
function occPerClassTable(rows: ResultRow[]): Table {
  const classes = OCC_CLASSES.slice(0, OCC_CLASSES.length - 1);
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const name = r.student ? (r.distiller ? `${r.student} ← ${r.teacher} (${r.distiller})` : `${r.student} baseline`) : `teacher ${r.teacher}`;
    groups.set(name, [...(groups.get(name) ?? []), r]);
  }
  const cell = (rs: ResultRow[], c: string) => {
    const v = rs.map((r) => (r.metrics.iou as Record<string, number | null> | undefined)?.[c]).filter((x): x is number => typeof x === 'number');
    return v.length ? pct(mean(v)) : '—';
  };
  return { title: 'Occupancy per-class IoU (%)', header: ['run', 'mIoU', ...classes], rows: [...groups].map(([name, rs]) => [name, pct(mean(rs.map((r) => metricOf(r, 'miou')))), ...classes.map((c) => cell(rs, c))]) };
}

const mdCell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

export function resultsMarkdown(rows: ResultRow[], dataset?: string): string {
  const lines: string[] = [];
  for (const t of resultTables(rows, dataset)) {
    if (lines.length) lines.push('');
    lines.push(`## ${t.title}`, '', `| ${t.header.map(mdCell).join(' | ')} |`, `|${t.header.map(() => '---').join('|')}|`);
    for (const r of t.rows) lines.push(`| ${r.map(mdCell).join(' | ')} |`);
    if (t.note) lines.push('', t.note);
  }
  return lines.join('\n') + '\n';
}

/** A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; quotes doubled. */
export function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One line per (cell, metric): task, student, teacher, distiller, seeds, metric, mean, std, delta against the baseline. */
export function resultsCsv(rows: ResultRow[]): string {
  const out = ['task,student,teacher,distiller,seeds,metric,mean,std,delta'];
  const num = (v: number | undefined) => (v === undefined ? '' : v.toFixed(6));
  const push = (task: Task, who: (string | null)[], c: CellSummary, base: CellSummary | null) =>
    TASK_METRICS[task].metrics.forEach((m, i) =>
      out.push([task, ...who.map((x) => x ?? ''), c.seeds, m.label, num(c.mean[i]), num(c.std[i]), num(base ? c.mean[i]! - base.mean[i]! : undefined)].map(csvField).join(',')));
  for (const task of TASKS) {
    const t = paperTable(rows, task);
    for (const r of t.body) {
      if (r.base) push(task, [r.student, null, null], r.base, null);
      r.cells.forEach((c, i) => c && push(task, [r.student, t.columns[i]!.teacher, t.columns[i]!.distiller], c, r.base));
    }
    for (const x of t.teachers) push(task, ['(teacher)', x.teacher, null], x, null);
  }
  return out.join('\n') + '\n';
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45', '#9a6324', '#808000'];

/** Loss curve (total loss per step, smoothed) from a train.jsonl log, as an SVG polyline. */
export function lossCurveSvg(logFile: string, title: string): string {
  if (!existsSync(logFile)) return '';
  const pts = readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; loss: number }).filter((r) => Number.isFinite(r.loss));
  if (pts.length < 2) return '';
  const k = Math.max(1, Math.floor(pts.length / 50));
  const sm = pts.map((_, i) => ({ step: pts[i]!.step, loss: mean(pts.slice(Math.max(0, i - k + 1), i + 1).map((p) => p.loss)) }));
  const W = 360, H = 160, pad = 30;
  const maxS = sm[sm.length - 1]!.step, lo = Math.min(...sm.map((p) => p.loss)), hi = Math.max(...sm.map((p) => p.loss));
  const x = (s: number) => pad + ((W - pad - 5) * s) / maxS, y = (v: number) => H - pad + ((v - lo) / (hi - lo || 1)) * -(H - pad - 10);
  const poly = sm.filter((_, i) => i % Math.max(1, Math.floor(sm.length / 300)) === 0).map((p) => `${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join(' ');
  return `<figure><svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="#fff" stroke="#ccc"/>
<polyline fill="none" stroke="#4363d8" stroke-width="1.5" points="${poly}"/>
<text x="${pad}" y="12" font-size="10">${hi.toFixed(3)}</text><text x="${pad}" y="${H - pad + 12}" font-size="10">${lo.toFixed(3)}</text>
<text x="${W - 60}" y="${H - 8}" font-size="10">step ${maxS}</text></svg><figcaption>${esc(title)}</figcaption></figure>`;
}

function boxPolygon(b: PreviewBox, toScreen: (x: number, y: number) => [number, number]): string {
  const c = Math.cos(b.yaw), s = Math.sin(b.yaw);
  return [[b.l / 2, b.w / 2], [-b.l / 2, b.w / 2], [-b.l / 2, -b.w / 2], [b.l / 2, -b.w / 2]]
    .map(([u, v]) => toScreen(b.x + c * u! - s * v!, b.y + s * u! + c * v!).map((n) => n.toFixed(1)).join(','))
    .join(' ');
}

/** BEV picture (ego at the centre, x forward = up, y left = left): ground truth dashed, predictions (score ≥ 0.3) solid, colour by class. */
export function bevSvg(preview: NonNullable<JobResult['preview']>, title: string, range = 51.2): string {
  const S = 300, sc = S / (2 * range);
  const toScreen = (x: number, y: number): [number, number] => [S / 2 - y * sc, S / 2 - x * sc];
  const poly = (b: PreviewBox, dashed: boolean) =>
    `<polygon points="${boxPolygon(b, toScreen)}" fill="none" stroke="${COLORS[b.label % 10]}" stroke-width="${dashed ? 1 : 1.6}"${dashed ? ' stroke-dasharray="3,2"' : ''}/>`;
  return `<figure><svg width="${S}" height="${S}" viewBox="0 0 ${S} ${S}"><rect width="${S}" height="${S}" fill="#111"/>
<circle cx="${S / 2}" cy="${S / 2}" r="3" fill="#fff"/>
${preview.gt.map((b) => poly(b, true)).join('\n')}
${preview.pred.map((b) => poly(b, false)).join('\n')}</svg><figcaption>${esc(title)} — dashed: ground truth, solid: predictions ≥ 0.3</figcaption></figure>`;
}

function tableHtml(t: Table): string {
  const head = `<tr>${t.header.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>${esc(t.title)}</h2><table>${head}\n${body}</table>${t.note ? `<p>${esc(t.note)}</p>` : ''}`;
}

function runName(r: JobResult): string {
  return r.role === 'teacher' ? `teacher ${r.teacher}` : r.role === 'baseline' ? `${r.student} baseline (seed ${r.seed})` : `${r.student} ← ${r.teacher} via ${r.distiller} (seed ${r.seed})`;
}

export function reportHtml(results: JobResult[], title: string, dataset?: string): string {
  const rows = toRows(results);
  const tables = resultTables(rows, dataset).map(tableHtml).join('\n');
  const legend = `<p class="legend">${DETECTION_CLASSES.map((n, k) => `<span style="color:${COLORS[k]}">■ ${n}</span>`).join(' ')}</p>`;
  const runs = results
    .map((r) => {
      const figures = TASK_METRICS[r.task].metrics.map((m) => `${m.label} ${pct(r.metrics[m.key] as number)}`).join(' · ');
      const bev = r.preview ? bevSvg(r.preview, `BEV ${r.preview.sample_token.slice(0, 8)}`) : '';
      return `<section><h3>${esc(runName(r))}</h3><p>${figures} · ${r.train.steps} steps in ${r.train.seconds} s (${r.train.steps_per_s} steps/s, ${r.train.backend})</p>
<div class="figs">${lossCurveSvg(r.log, 'training loss')}${bev}</div></section>`;
    })
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4}.legend span{margin-right:10px;font-size:13px}.figs{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}figcaption{font-size:12px;color:#555}</style></head>
<body><h1>${esc(title)}</h1>${tables}<h2>Runs</h2>${legend}${runs}</body></html>\n`;
}

/** Write results.json, results.md, results.csv and report.html into `dir` (each atomically). */
export async function writeReports(dir: string, results: JobResult[], meta: Record<string, unknown> & { dataset?: string }, title = 'bevzoo benchmark matrix'): Promise<void> {
  const rows = toRows(results);
  await writeFileAtomic(join(dir, 'results.json'), JSON.stringify({ meta, rows }, null, 2) + '\n');
  await writeFileAtomic(join(dir, 'results.md'), resultsMarkdown(rows, meta.dataset));
  await writeFileAtomic(join(dir, 'results.csv'), resultsCsv(rows));
  await writeFileAtomic(join(dir, 'report.html'), reportHtml(results, title, meta.dataset));
}
