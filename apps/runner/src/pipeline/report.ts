/**
 * The matrix's outputs: results.json (one row per run), results.md and results.csv in the layout of the
 * DistillBEV paper's table (students as rows; baseline, then each teacher's distilled result with its Δ), and
 * report.html with the tables, loss curves and BEV pictures of predictions against ground truth.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { DETECTION_CLASSES } from '@bevzoo/nuscenes';
import type { JobResult, PreviewBox } from './job.js';

export interface ResultRow {
  teacher: string | null;
  student: string | null;
  distiller: string | null;
  seed: number;
  metrics: JobResult['metrics'];
  train: JobResult['train'];
  id: string;
}

export function toRows(results: JobResult[]): ResultRow[] {
  const order = { teacher: 0, baseline: 1, distill: 2 } as const;
  return [...results]
    .sort((a, b) => order[a.role] - order[b.role] || a.id.localeCompare(b.id))
    .map((r) => ({ teacher: r.teacher, student: r.student, distiller: r.distiller, seed: r.seed, metrics: r.metrics, train: r.train, id: r.id }));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pct = (v: number) => (100 * v).toFixed(1);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;

export interface CellSummary {
  mAP: number;
  NDS: number;
  mAPStd: number;
  NDSStd: number;
  seeds: number;
}

function summarise(rows: ResultRow[]): CellSummary | null {
  if (!rows.length) return null;
  const m = rows.map((r) => r.metrics.mean_ap), n = rows.map((r) => r.metrics.nd_score);
  return { mAP: mean(m), NDS: mean(n), mAPStd: std(m), NDSStd: std(n), seeds: rows.length };
}

/** The paper-layout table: per student, the baseline and each (teacher, distiller) column with Δ. */
export function paperTable(rows: ResultRow[]) {
  const students = [...new Set(rows.filter((r) => r.student).map((r) => r.student!))];
  const columns = [...new Set(rows.filter((r) => r.distiller).map((r) => `${r.teacher}|${r.distiller}`))].map((k) => {
    const [teacher, distiller] = k.split('|') as [string, string];
    return { teacher, distiller };
  });
  const body = students.map((s) => {
    const base = summarise(rows.filter((r) => r.student === s && !r.teacher));
    const cells = columns.map((c) => summarise(rows.filter((r) => r.student === s && r.teacher === c.teacher && r.distiller === c.distiller)));
    return { student: s, base, cells };
  });
  const teachers = [...new Set(rows.filter((r) => r.teacher && !r.student).map((r) => r.teacher!))].map((t) => {
    const own = rows.filter((r) => r.teacher === t && !r.student);
    return { teacher: t, packaged: own.some((r) => r.train.packaged), ...summarise(own)! };
  });
  return { columns, body, teachers };
}

export function resultsMarkdown(rows: ResultRow[]): string {
  const t = paperTable(rows);
  const fmt = (c: CellSummary | null) => (c ? `${pct(c.mAP)} / ${pct(c.NDS)}` : '—');
  const delta = (c: CellSummary | null, b: CellSummary | null) => (c && b ? `${signed(c.mAP - b.mAP)} / ${signed(c.NDS - b.NDS)}` : '—');
  const lines: string[] = [];
  lines.push('## Detection (synthetic val; mAP / NDS in %, mean over seeds; Δ against the baseline)', '');
  const head = ['student', 'baseline', ...t.columns.flatMap((c) => [`+ ${c.teacher} (${c.distiller})`, 'Δ'])];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const r of t.body) lines.push(`| ${[r.student, fmt(r.base), ...r.cells.flatMap((c) => [fmt(c), delta(c, r.base)])].join(' | ')} |`);
  if (t.teachers.length) {
    lines.push('', '| teacher | mAP / NDS |', '|---|---|');
    for (const x of t.teachers) lines.push(`| ${x.teacher}${x.packaged ? ' (packaged weights)' : ''} | ${pct(x.mAP)} / ${pct(x.NDS)} |`);
  }
  const seeds = Math.max(0, ...t.body.map((r) => r.base?.seeds ?? 0));
  if (seeds > 1) lines.push('', `Seeds per cell: ${seeds}; standard deviations are in results.csv.`);
  return lines.join('\n') + '\n';
}

export function resultsCsv(rows: ResultRow[]): string {
  const t = paperTable(rows);
  const out = ['student,teacher,distiller,seeds,mAP,NDS,mAP_std,NDS_std,delta_mAP,delta_NDS'];
  const num = (v: number | undefined) => (v === undefined ? '' : v.toFixed(6));
  for (const r of t.body) {
    if (r.base) out.push([r.student, '', '', r.base.seeds, num(r.base.mAP), num(r.base.NDS), num(r.base.mAPStd), num(r.base.NDSStd), '', ''].join(','));
    r.cells.forEach((c, i) => {
      if (!c) return;
      const col = t.columns[i]!;
      out.push([r.student, col.teacher, col.distiller, c.seeds, num(c.mAP), num(c.NDS), num(c.mAPStd), num(c.NDSStd), num(r.base ? c.mAP - r.base.mAP : undefined), num(r.base ? c.NDS - r.base.NDS : undefined)].join(','));
    });
  }
  for (const x of t.teachers) out.push([`(teacher)`, x.teacher, '', x.seeds, num(x.mAP), num(x.NDS), num(x.mAPStd), num(x.NDSStd), '', ''].join(','));
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
export function bevSvg(preview: JobResult['preview'], title: string, range = 51.2): string {
  const S = 300, sc = S / (2 * range);
  const toScreen = (x: number, y: number): [number, number] => [S / 2 - y * sc, S / 2 - x * sc];
  const poly = (b: PreviewBox, dashed: boolean) =>
    `<polygon points="${boxPolygon(b, toScreen)}" fill="none" stroke="${COLORS[b.label % 10]}" stroke-width="${dashed ? 1 : 1.6}"${dashed ? ' stroke-dasharray="3,2"' : ''}/>`;
  return `<figure><svg width="${S}" height="${S}" viewBox="0 0 ${S} ${S}"><rect width="${S}" height="${S}" fill="#111"/>
<circle cx="${S / 2}" cy="${S / 2}" r="3" fill="#fff"/>
${preview.gt.map((b) => poly(b, true)).join('\n')}
${preview.pred.map((b) => poly(b, false)).join('\n')}</svg><figcaption>${esc(title)} — dashed: ground truth, solid: predictions ≥ 0.3</figcaption></figure>`;
}

export function reportHtml(results: JobResult[], title: string, extra = ''): string {
  const rows = toRows(results);
  const md = resultsMarkdown(rows);
  // The markdown tables, block by block: header lines become <h2>, table blocks <table>, the rest <p>.
  const tableHtml = md
    .split(/\n\s*\n/)
    .map((block) => {
      const lines = block.split('\n').filter(Boolean);
      if (lines[0]?.startsWith('## ')) return `<h2>${esc(lines[0].slice(3))}</h2>`;
      if (!lines[0]?.startsWith('|')) return lines.length ? `<p>${esc(lines.join(' '))}</p>` : '';
      const rowsHtml = lines
        .filter((l) => !/^\|(\s*-+\s*\|)+$/.test(l))
        .map((l, k) => `<tr>${l.split('|').slice(1, -1).map((c) => `<t${k ? 'd' : 'h'}>${esc(c.trim())}</t${k ? 'd' : 'h'}>`).join('')}</tr>`);
      return `<table>${rowsHtml.join('\n')}</table>`;
    })
    .join('\n');
  const legend = `<p class="legend">${DETECTION_CLASSES.map((n, k) => `<span style="color:${COLORS[k]}">■ ${n}</span>`).join(' ')}</p>`;
  const runs = results
    .map((r) => {
      const name = r.role === 'teacher' ? `teacher ${r.teacher}` : r.role === 'baseline' ? `${r.student} baseline (seed ${r.seed})` : `${r.student} ← ${r.teacher} via ${r.distiller} (seed ${r.seed})`;
      return `<section><h3>${esc(name)}</h3><p>mAP ${pct(r.metrics.mean_ap)} · NDS ${pct(r.metrics.nd_score)} · ${r.train.steps} steps in ${r.train.seconds} s (${r.train.steps_per_s} steps/s, ${r.train.backend})</p>
<div class="figs">${lossCurveSvg(r.log, 'training loss')}${bevSvg(r.preview, `BEV ${r.preview.sample_token.slice(0, 8)}`)}</div></section>`;
    })
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4}.legend span{margin-right:10px;font-size:13px}.figs{display:flex;gap:16px;flex-wrap:wrap}figure{margin:0}figcaption{font-size:12px;color:#555}</style></head>
<body><h1>${esc(title)}</h1>${tableHtml}${extra}<h2>Runs</h2>${legend}${runs}</body></html>\n`;
}

async function atomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

/** Write results.json, results.md, results.csv and report.html into `dir`. */
export async function writeReports(dir: string, results: JobResult[], meta: Record<string, unknown>, title = 'bevzoo benchmark matrix'): Promise<void> {
  const rows = toRows(results);
  await atomic(join(dir, 'results.json'), JSON.stringify({ meta, rows }, null, 2) + '\n');
  await atomic(join(dir, 'results.md'), resultsMarkdown(rows));
  await atomic(join(dir, 'results.csv'), resultsCsv(rows));
  await atomic(join(dir, 'report.html'), reportHtml(results, title));
}
