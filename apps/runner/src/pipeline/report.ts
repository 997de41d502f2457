/**
 * The matrix's outputs: results.json (one row per run, with its task), results.md and results.csv with one table
 * per task in the layout of the papers' tables (students as rows; baseline, then each teacher's distilled result
 * with its Δ) and the per-class and per-distance tables, and report.html: the dataset, the tables, training-loss and validation
 * curves (charts.ts), and per run the devkit-style per-class figures and a BEV picture of predictions against
 * ground truth. report.html is one self-contained file (inline SVG and CSS, no script): it opens offline.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic, type Task } from '@bevzoo/core';
import { DETECTION_CLASSES, OCC_CLASSES } from '@bevzoo/nuscenes';
import { lineChartSvg, readLossLog, smoothLoss, type LineSeries } from './charts.js';
import type { JobResult, PreviewBox } from './results.js';

export interface ResultRow {
  task: Task;
  teacher: string | null;
  student: string | null;
  distiller: string | null;
  seed: number;
  metrics: JobResult['metrics'];
  train: JobResult['train'];
  /** Where the run's time went (`JobResult.timing`). */
  timing?: JobResult['timing'];
  id: string;
}

/** The headline metrics of each task, in table order. */
export const TASK_METRICS: Record<Task, { title: string; metrics: { key: string; label: string }[] }> = {
  det: { title: 'Detection', metrics: [{ key: 'mean_ap', label: 'mAP' }, { key: 'nd_score', label: 'NDS' }] },
  occ: { title: 'Occupancy', metrics: [{ key: 'miou', label: 'mIoU' }] },
};
const TASKS = Object.keys(TASK_METRICS) as Task[];

/** Runs in table order: by task, then teachers, baselines, distilled runs, then by id. */
function sortResults(results: JobResult[]): JobResult[] {
  const order = { teacher: 0, baseline: 1, distill: 2 } as const;
  return [...results].sort((a, b) => TASKS.indexOf(a.task) - TASKS.indexOf(b.task) || order[a.role] - order[b.role] || a.id.localeCompare(b.id));
}

export function toRows(results: JobResult[]): ResultRow[] {
  return sortResults(results).map((r) => ({ task: r.task, teacher: r.teacher, student: r.student, distiller: r.distiller, seed: r.seed, metrics: r.metrics, train: r.train, ...(r.timing ? { timing: r.timing } : {}), id: r.id }));
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
interface Table { id: string; title: string; header: string[]; rows: string[][]; note?: string; perClass?: boolean }

/** The tables of results.md and report.html: per task, the paper table, the teachers, and the per-class tables. */
export function resultTables(rows: ResultRow[], dataset?: string): Table[] {
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
      id: `${task}-paper`,
      title: `${spec.title} (${dataset ? `${dataset}; ` : ''}${units} in %, mean over seeds; Δ against the baseline)`,
      header: ['student', 'baseline', ...t.columns.flatMap((c) => [`+ ${c.teacher} (${c.distiller})`, 'Δ'])],
      rows: t.body.map((r) => [r.student, fmt(r.base), ...r.cells.flatMap((c) => [fmt(c), delta(c, r.base)])]),
      note: seeds > 1 ? `Seeds per cell: ${seeds}; standard deviations are in results.csv.` : undefined,
    });
    if (t.teachers.length)
      tables.push({ id: `${task}-teachers`, title: `${spec.title} teachers`, header: ['teacher', units], rows: t.teachers.map((x) => [`${x.teacher}${x.packaged ? ' (packaged weights)' : ''}`, fmt(x)]) });
    const own = rows.filter((r) => r.task === task);
    if (task === 'occ') tables.push(occPerClassTable(own));
    if (task === 'det' && own.some((r) => r.metrics.mean_dist_aps)) tables.push(...detPerClassTables(own));
    if (task === 'det' && own.some((r) => r.metrics.mean_ap_by_distance)) tables.push(...detDistanceTables(own));
  }
  return tables;
}

/** A run group's name in the per-class tables (seeds of one group are averaged). */
const groupName = (r: Pick<ResultRow, 'student' | 'teacher' | 'distiller'>) =>
  r.student ? (r.distiller ? `${r.student} ← ${r.teacher} (${r.distiller})` : `${r.student} baseline`) : `teacher ${r.teacher}`;

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const x of xs) groups.set(key(x), [...(groups.get(key(x)) ?? []), x]);
  return groups;
}

/** The mean over runs of a metric that may be missing or NaN (null in JSON) in some of them; undefined when none has it. */
function meanOf(rs: ResultRow[], get: (m: Record<string, unknown>) => unknown): number | undefined {
  const v = rs.map((r) => get(r.metrics)).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? mean(v) : undefined;
}
const pctOr = (v: number | undefined) => (v === undefined ? '—' : pct(v));
const fixedOr = (v: number | undefined, d = 3) => (v === undefined ? '—' : v.toFixed(d));
const field = (key: string, sub: string) => (m: Record<string, unknown>) => (m[key] as Record<string, unknown> | undefined)?.[sub];

/** Per-class IoU (%) of each occupancy run group (student or teacher, teacher, distiller), mean over seeds. */
function occPerClassTable(rows: ResultRow[]): Table {
  const classes = OCC_CLASSES.slice(0, OCC_CLASSES.length - 1);
  return {
    id: 'occ-per-class-iou', title: 'Occupancy per-class IoU (%)', perClass: true, header: ['run', 'mIoU', ...classes],
    rows: [...groupBy(rows, groupName)].map(([name, rs]) => [name, pctOr(meanOf(rs, (m) => m.miou)), ...classes.map((c) => pctOr(meanOf(rs, field('iou', c))))]),
  };
}

/** The devkit's true-positive errors: metric key, table label, unit. */
const TP_ERRORS = [
  ['trans_err', 'ATE', 'm'], ['scale_err', 'ASE', '1−IoU'], ['orient_err', 'AOE', 'rad'], ['vel_err', 'AVE', 'm/s'], ['attr_err', 'AAE', '1−acc'],
] as const;

/** Per-class AP (%) and the mean TP errors of each detection run group, mean over seeds. */
function detPerClassTables(rows: ResultRow[]): Table[] {
  const groups = [...groupBy(rows, groupName)];
  return [
    {
      id: 'det-per-class-ap', title: 'Detection per-class AP (%, mean over the distance thresholds)', perClass: true, header: ['run', 'mAP', ...DETECTION_CLASSES],
      rows: groups.map(([name, rs]) => [name, pctOr(meanOf(rs, (m) => m.mean_ap)), ...DETECTION_CLASSES.map((c) => pctOr(meanOf(rs, field('mean_dist_aps', c))))]),
    },
    {
      id: 'det-tp-errors', title: 'Detection true-positive errors (mean over classes; lower is better)', perClass: true,
      header: ['run', 'NDS (%)', ...TP_ERRORS.map(([, label, unit]) => `m${label} (${unit})`)],
      rows: groups.map(([name, rs]) => [name, pctOr(meanOf(rs, (m) => m.nd_score)), ...TP_ERRORS.map(([key]) => fixedOr(meanOf(rs, field('tp_errors', key))))]),
    },
  ];
}

/** Band keys ("0-20", …, "40+") in the order the runs list them. */
function bandKeys(rows: readonly { metrics: Record<string, unknown> }[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys((r.metrics.mean_ap_by_distance as Record<string, unknown> | undefined) ?? {})))];
}

/**
 * AP by ego distance (@bevzoo/eval, distance.ts) of each detection run group, mean over seeds: the band mAP, and per
 * class the APs of the bands in one cell ("—": no GT of the class in the band, or runs evaluated before bands existed).
 */
function detDistanceTables(rows: ResultRow[]): Table[] {
  const groups = [...groupBy(rows, groupName)];
  const bands = bandKeys(rows);
  const note = 'A band holds the GT and the predictions whose BEV centre lies at that distance from the ego; its mAP is the mean over the classes with GT in it.';
  return [
    {
      id: 'det-map-by-distance', title: 'Detection mAP by ego distance (%)', perClass: true, header: ['run', 'mAP', ...bands.map((b) => `${b} m`)], note,
      rows: groups.map(([name, rs]) => [name, pctOr(meanOf(rs, (m) => m.mean_ap)), ...bands.map((b) => pctOr(meanOf(rs, field('mean_ap_by_distance', b))))]),
    },
    {
      id: 'det-ap-by-distance', title: `Detection per-class AP by ego distance (%; ${bands.join(' / ')} m)`, perClass: true, header: ['run', ...DETECTION_CLASSES],
      rows: groups.map(([name, rs]) => [name, ...DETECTION_CLASSES.map((c) => bands.map((b) => pctOr(meanOf(rs, (m) => (m.ap_by_distance as Record<string, Record<string, unknown>> | undefined)?.[c]?.[b]))).join(' / '))]),
    },
  ];
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
/** BEV colours by DETECTION_CLASSES index (bright on the dark picture). */
const CLASS_COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45', '#9a6324', '#ffe119'];
/** Chart colours of the runs of one curve group (the same run has the same colour in each of the group's charts). */
const RUN_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function boxPolygon(b: PreviewBox, toScreen: (x: number, y: number) => [number, number]): string {
  const c = Math.cos(b.yaw), s = Math.sin(b.yaw);
  return [[b.l / 2, b.w / 2], [-b.l / 2, b.w / 2], [-b.l / 2, -b.w / 2], [b.l / 2, -b.w / 2]]
    .map(([u, v]) => toScreen(b.x + c * u! - s * v!, b.y + s * u! + c * v!).map((n) => n.toFixed(1)).join(','))
    .join(' ');
}

/**
 * BEV picture (ego at the centre, x forward = up, y left = left): ground truth dashed, predictions (score ≥ 0.3)
 * solid, colour by class; a 10 m scale bar, and a legend of the classes, line styles and ego marker beside it.
 */
export function bevSvg(preview: NonNullable<JobResult['preview']>, title: string, range = 51.2): string {
  const S = 300, L = 190, sc = S / (2 * range), c = S / 2;
  const toScreen = (x: number, y: number): [number, number] => [c - y * sc, c - x * sc];
  const poly = (b: PreviewBox, dashed: boolean) =>
    `<polygon points="${boxPolygon(b, toScreen)}" fill="none" stroke="${CLASS_COLORS[b.label % CLASS_COLORS.length]}" stroke-width="${dashed ? 1 : 1.6}"${dashed ? ' stroke-dasharray="3,2"' : ''}/>`;
  const ego = (x: number, y: number, fill: string) => `<polygon points="${x},${y - 6} ${x - 4.5},${y + 5} ${x + 4.5},${y + 5}" fill="${fill}"/>`;
  const bar = 10 * sc, bx = 14, by = S - 16;
  const scale = `<g class="scale-bar" stroke="#fff" stroke-width="1.5"><line x1="${bx}" y1="${by}" x2="${(bx + bar).toFixed(1)}" y2="${by}"/>` +
    `<line x1="${bx}" y1="${by - 4}" x2="${bx}" y2="${by + 4}"/><line x1="${(bx + bar).toFixed(1)}" y1="${by - 4}" x2="${(bx + bar).toFixed(1)}" y2="${by + 4}"/>` +
    `<text x="${(bx + bar / 2).toFixed(1)}" y="${by - 7}" fill="#fff" stroke="none" font-size="11" text-anchor="middle">10 m</text></g>`;
  const row = (i: number) => 18 + 17 * i;
  const item = (i: number, mark: string, label: string) => `${mark}<text x="${S + 40}" y="${row(i) + 4}">${esc(label)}</text>`;
  const line = (i: number, color: string, dashed: boolean) =>
    `<line x1="${S + 12}" y1="${row(i)}" x2="${S + 32}" y2="${row(i)}" stroke="${color}" stroke-width="${dashed ? 1.2 : 2}"${dashed ? ' stroke-dasharray="3,2"' : ''}/>`;
  const legend = [
    ...DETECTION_CLASSES.map((n, k) => item(k, line(k, CLASS_COLORS[k]!, false), n)),
    item(DETECTION_CLASSES.length, line(DETECTION_CLASSES.length, '#444', true), 'ground truth'),
    item(DETECTION_CLASSES.length + 1, line(DETECTION_CLASSES.length + 1, '#444', false), 'prediction (score ≥ 0.3)'),
    item(DETECTION_CLASSES.length + 2, ego(S + 22, row(DETECTION_CLASSES.length + 2), '#444'), 'ego vehicle (heading up)'),
  ].join('');
  return `<figure class="bev"><svg width="${S + L}" height="${S}" viewBox="0 0 ${S + L} ${S}" role="img" aria-label="${esc(title)}">
<rect width="${S}" height="${S}" fill="#111"/>${ego(c, c, '#fff')}
${preview.gt.map((b) => poly(b, true)).join('\n')}
${preview.pred.map((b) => poly(b, false)).join('\n')}
${scale}<text x="${S - 8}" y="16" fill="#bbb" font-size="10" text-anchor="end">±${range} m</text>
<g class="legend" font-size="11" fill="#222">${legend}</g></svg><figcaption>${esc(title)}</figcaption></figure>`;
}

function tableHtml(t: Table, heading = 'h3'): string {
  const head = `<tr>${t.header.map((c) => `<th>${esc(c).replace(/_/g, '_<wbr>')}</th>`).join('')}</tr>`; // long class names may break
  const body = t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<div class="table" id="${t.id}">${heading ? `<${heading}>${esc(t.title)}</${heading}>` : ''}<div class="scroll"><table>${head}\n${body}</table></div>${t.note ? `<p>${esc(t.note)}</p>` : ''}</div>`;
}

function runName(r: JobResult): string {
  return r.role === 'teacher' ? `teacher ${r.teacher}` : r.role === 'baseline' ? `${r.student} baseline (seed ${r.seed})` : `${r.student} ← ${r.teacher} via ${r.distiller} (seed ${r.seed})`;
}

/** An id for HTML from a run id. */
const slug = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '-');
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A detection run's per-class TP errors: in its metrics, or (results written before they were) in its eval/metrics_summary.json. */
function labelTpErrors(r: JobResult): Record<string, Record<string, unknown>> {
  if (r.metrics.label_tp_errors) return r.metrics.label_tp_errors as Record<string, Record<string, unknown>>;
  const file = join(dirname(r.log), 'eval', 'metrics_summary.json');
  try {
    return existsSync(file) ? ((JSON.parse(readFileSync(file, 'utf8')) as { label_tp_errors?: Record<string, Record<string, unknown>> }).label_tp_errors ?? {}) : {};
  } catch {
    return {};
  }
}

/** A detection run's figures as the nuScenes devkit's summary prints them: the means, then AP (also per distance threshold) and TP errors per class. */
function devkitSummaryHtml(r: JobResult): string {
  const m = r.metrics as { mean_ap?: number; nd_score?: number; tp_errors?: Record<string, unknown>; mean_dist_aps?: Record<string, unknown>; label_aps?: Record<string, Record<string, unknown>> };
  if (!m.mean_dist_aps) return '';
  const tp = labelTpErrors(r);
  const f = (v: unknown) => fixedOr(num(v));
  const classes = Object.keys(m.mean_dist_aps);
  const ths = Object.keys(m.label_aps?.[classes[0]!] ?? {}).sort((a, b) => Number(a) - Number(b));
  const means = [`mAP ${f(m.mean_ap)}`, ...TP_ERRORS.map(([key, label]) => `m${label} ${f(m.tp_errors?.[key])}`), `NDS ${f(m.nd_score)}`].join(' · ');
  const table: Table = {
    id: `run-${slug(r.id)}-per-class`, title: 'Per-class results (nuScenes devkit summary)',
    header: ['class', 'AP', ...ths.map((t) => `AP@${t} m`), ...TP_ERRORS.map(([, label]) => label)],
    rows: classes.map((c) => [c, f(m.mean_dist_aps![c]), ...ths.map((t) => f(m.label_aps?.[c]?.[t])), ...TP_ERRORS.map(([key]) => f(tp[c]?.[key]))]),
  };
  return `<div class="devkit"><h4>Per-class results (nuScenes devkit summary)</h4><p class="means">${esc(means)}</p>${tableHtml(table, '')}</div>${distanceHtml(r)}`;
}

/** A detection run's AP by ego distance: per class and band the AP with its GT count, then the band mAP. */
function distanceHtml(r: JobResult): string {
  const m = r.metrics as { mean_ap_by_distance?: Record<string, unknown>; ap_by_distance?: Record<string, Record<string, unknown>>; gt_by_distance?: Record<string, Record<string, unknown>> };
  if (!m.mean_ap_by_distance || !m.ap_by_distance) return '';
  const bands = Object.keys(m.mean_ap_by_distance);
  const cell = (c: string, b: string) => {
    const n = num(m.gt_by_distance?.[c]?.[b]);
    return n === 0 ? '—' : `${fixedOr(num(m.ap_by_distance![c]?.[b]))}${n === undefined ? '' : ` (${n})`}`;
  };
  const table: Table = {
    id: `run-${slug(r.id)}-by-distance`, title: 'AP by ego distance', header: ['class', ...bands.map((b) => `${b} m`)],
    rows: [...Object.keys(m.ap_by_distance).map((c) => [c, ...bands.map((b) => cell(c, b))]), ['mAP', ...bands.map((b) => fixedOr(num(m.mean_ap_by_distance![b])))]],
  };
  return `<div class="devkit"><h4>AP by ego distance</h4><p class="means">GT boxes in brackets; — no GT in the band</p>${tableHtml(table, '')}</div>`;
}

/**
 * Training-loss and validation curves, one group per student (its baseline and distilled runs overlaid; every seed a
 * line) and one for each task's teachers: loss against step, and each headline metric against step.
 */
function curvesHtml(results: JobResult[]): string {
  const groups = groupBy(sortResults(results), (r) => `${r.task}|${r.student ?? ''}`);
  const out: string[] = [];
  for (const rs of groups.values()) {
    const task = rs[0]!.task;
    const title = rs[0]!.student ?? `${TASK_METRICS[task].title.toLowerCase()} teachers`;
    const seeds = new Set(rs.map((r) => r.seed)).size > 1;
    const name = (r: JobResult) => (r.role === 'teacher' ? r.teacher! : r.role === 'baseline' ? 'baseline' : `← ${r.teacher} (${r.distiller})`) + (seeds ? `, seed ${r.seed}` : '');
    const series = (points: (r: JobResult) => [number, number][]): LineSeries[] =>
      rs.map((r, i) => ({ name: name(r), color: RUN_COLORS[i % RUN_COLORS.length], points: points(r) })).filter((s) => s.points.length);
    const charts: string[] = [];
    const loss = series((r) => smoothLoss(readLossLog(r.log)));
    if (loss.length) charts.push(lineChartSvg({ title: `${title}: training loss`, xName: 'step', yName: 'loss (moving average)', series: loss }));
    for (const m of TASK_METRICS[task].metrics) {
      const val = series((r) => (r.curve ?? []).filter((p) => num(p[m.key]) !== undefined).map((p) => [p.step, 100 * (p[m.key] as number)]));
      if (val.length) charts.push(lineChartSvg({ title: `${title}: validation ${m.label}`, xName: 'step', yName: `${m.label} (%)`, series: val }));
    }
    const note = rs.some((r) => r.curve?.length) ? '' : '<p class="note">No validation curve: a run records one with <code>--set train.evalEvery=&lt;steps&gt;</code>.</p>';
    if (charts.length) out.push(`<div class="group"><h3>${esc(title)}</h3>${note}<div class="figs">${charts.map((c) => `<figure class="chart">${c}</figure>`).join('')}</div></div>`);
  }
  return out.length ? out.join('\n') : '<p>No run left a training log or validation curve.</p>';
}

function runHtml(r: JobResult): string {
  const figures = TASK_METRICS[r.task].metrics.map((m) => `${m.label} ${pctOr(num(r.metrics[m.key]))}`).join(' · ');
  const frames = r.task === 'occ' && num(r.metrics.frames) !== undefined ? ` over ${r.metrics.frames} frames` : '';
  const bev = r.preview ? bevSvg(r.preview, `BEV of validation sample ${r.preview.sample_token.slice(0, 8)}: ground truth and predictions`) : '';
  const train = r.train.packaged ? 'packaged weights' : `${r.train.steps} steps in ${r.train.seconds} s (${r.train.steps_per_s} steps/s, ${r.train.backend})`;
  return `<section class="run" id="run-${slug(r.id)}"><h3>${esc(runName(r))}</h3><p>${figures}${frames} · ${esc(train)}</p>
<div class="figs">${r.task === 'det' ? devkitSummaryHtml(r) : ''}${bev}</div></section>`;
}

/** What report.html says about the matrix above its tables: the dataset as it is, and the run's settings and failures. */
export interface ReportMeta {
  dataset?: string;
  [key: string]: unknown;
}

function headerHtml(title: string, meta: ReportMeta, runs: number): string {
  const facts = [`<strong>Dataset:</strong> ${esc(meta.dataset ?? 'not recorded')}`];
  if (typeof meta.preset === 'string') facts.push(`preset ${esc(meta.preset)}`);
  if (Array.isArray(meta.seeds)) facts.push(`seeds ${esc(meta.seeds.join(', '))}`);
  facts.push(`${runs} run${runs === 1 ? '' : 's'}`);
  if (typeof meta.wall_seconds === 'number') facts.push(`wall time ${(meta.wall_seconds / 60).toFixed(1)} min`);
  const failed = Object.entries((meta.failed ?? {}) as Record<string, unknown>);
  const skipped = Array.isArray(meta.skipped) ? (meta.skipped as unknown[]) : [];
  const problems = [...failed.map(([id, e]) => `${id} failed: ${String(e)}`), ...skipped.map((id) => `${String(id)} skipped`)];
  return `<header id="summary"><h1>${esc(title)}</h1><p class="meta">${facts.join(' · ')}</p>${problems.length ? `<ul class="problems">${problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : ''}</header>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:24px;max-width:1240px;color:#222}
table{border-collapse:collapse;margin:6px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}td:first-child{white-space:nowrap}th{background:#f4f4f4}.scroll{overflow-x:auto}
#per-class table,.devkit table{font-size:12px}#per-class td,#per-class th,.devkit td,.devkit th{padding:2px 5px}
#occ-per-class-iou table{font-size:11px}#per-class td:first-child{white-space:normal;min-width:11em}.means{font-size:13px;margin:2px 0}.note{font-size:13px;color:#555}
.meta{font-size:15px}.problems{color:#a00}nav a{margin-right:14px}.run{border-top:1px solid #ddd;margin-top:12px}h4{margin:8px 0 2px}
.figs{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}figure{margin:0}figcaption{font-size:12px;color:#555}`;

export function reportHtml(results: JobResult[], title: string, meta: ReportMeta = {}): string {
  const tables = resultTables(toRows(results), meta.dataset);
  const section = (id: string, heading: string, body: string) => `<section id="${id}"><h2>${heading}</h2>\n${body}\n</section>`;
  const perClass = tables.filter((t) => t.perClass);
  const sections = [
    section('results', 'Results', tables.filter((t) => !t.perClass).map((t) => tableHtml(t)).join('\n') || '<p>No finished runs.</p>'),
    ...(perClass.length ? [section('per-class', 'Per-class results', perClass.map((t) => tableHtml(t)).join('\n'))] : []),
    section('curves', 'Training and validation curves', curvesHtml(results)),
    section('runs', 'Runs', sortResults(results).map(runHtml).join('\n')),
  ];
  const nav = `<nav>${[['results', 'Results'], ...(perClass.length ? [['per-class', 'Per-class results']] : []), ['curves', 'Curves'], ['runs', 'Runs']].map(([id, t]) => `<a href="#${id}">${t}</a>`).join('')}</nav>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body>${headerHtml(title, meta, results.length)}${nav}
${sections.join('\n')}
</body></html>\n`;
}

/** Write results.json, results.md, results.csv and report.html into `dir` (each atomically). */
export async function writeReports(dir: string, results: JobResult[], meta: ReportMeta, title = 'bevzoo benchmark matrix'): Promise<void> {
  const rows = toRows(results);
  await writeFileAtomic(join(dir, 'results.json'), JSON.stringify({ meta, rows }, null, 2) + '\n');
  await writeFileAtomic(join(dir, 'results.md'), resultsMarkdown(rows, meta.dataset));
  await writeFileAtomic(join(dir, 'results.csv'), resultsCsv(rows));
  await writeFileAtomic(join(dir, 'report.html'), reportHtml(results, title, meta));
}
