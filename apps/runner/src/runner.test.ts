import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { list, unregister } from '@bevzoo/core';
import { findInstalledPlugins, loadPlugin, loadPlugins } from './discover.js';
import { listCommand } from './commands/list.js';
import { csvField, paperTable, resultsCsv, resultsMarkdown, reportHtml, toRows, writeReports } from './pipeline/report.js';
import { lineChartSvg, readLossLog, smoothLoss } from './pipeline/charts.js';
import type { JobResult } from './pipeline/results.js';

describe('plugin discovery', () => {
  it('finds packages that name themselves bevzoo plugins and loads a plugin by path', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bevzoo-disc-'));
    const pkg = join(root, 'node_modules', '@acme', 'student-x');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@acme/student-x', bevzoo: { kind: 'student' }, exports: { '.': { import: './index.mjs' } } }));
    writeFileSync(join(root, 'node_modules', 'not-a-plugin.json'), '{}');
    mkdirSync(join(root, 'node_modules', 'plain'), { recursive: true });
    writeFileSync(join(root, 'node_modules', 'plain', 'package.json'), JSON.stringify({ name: 'plain' }));
    // A plugin package that merely sits in node_modules, not a dependency of the project: never imported.
    mkdirSync(join(root, 'node_modules', 'stray-plugin'), { recursive: true });
    writeFileSync(join(root, 'node_modules', 'stray-plugin', 'package.json'), JSON.stringify({ name: 'stray-plugin', bevzoo: { kind: 'teacher' } }));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'my-project', dependencies: { '@acme/student-x': '1', plain: '1' }, devDependencies: { missing: '1' } }));
    mkdirSync(join(root, 'sub', 'dir'), { recursive: true });
    for (const from of [root, join(root, 'sub', 'dir')]) {
      const found = findInstalledPlugins([from]);
      expect(found.map((p) => [p.name, p.kind, p.from])).toEqual([['@acme/student-x', 'student', 'dependency of my-project']]);
    }

    const core = new URL('../../../packages/core/src/index.ts', import.meta.url).href;
    const file = join(root, 'my-student.mjs');
    // A plugin file as a user would write it (imports resolved by the test's module graph through a global hook).
    (globalThis as Record<string, unknown>).__bevzooCore = await import(core);
    (globalThis as Record<string, unknown>).__zod = await import('zod');
    writeFileSync(file, `const c = globalThis.__bevzooCore; const { z } = globalThis.__zod;
c.register(c.defineStudent({ name: 'disc-student', version: '0.0.1', task: 'det', package: 'my-student', description: 'a test student',
  configSchema: z.object({ w: z.number().default(1) }), presets: { tiny: {} }, provides: () => ({}), create: () => ({}) }));`);
    await expect(loadPlugin('./nope.mjs', root)).rejects.toThrow(/does not exist/);
    await loadPlugin('./my-student.mjs', root);
    expect(list('student').map((p) => p.name)).toContain('disc-student');
    await expect(loadPlugin('@nobody/none', root)).rejects.toThrow(/package not found/);

    // A plugin that throws on import is named with its error; the others still load, and `list` says where from.
    writeFileSync(join(pkg, 'index.mjs'), `throw new Error('broken on purpose');`);
    writeFileSync(join(root, 'other.mjs'), `const c = globalThis.__bevzooCore; const { z } = globalThis.__zod;
c.register(c.defineStudent({ name: 'other-student', version: '0.0.1', task: 'det', package: 'other', description: 'another test student',
  configSchema: z.object({ w: z.number().default(1) }), presets: { tiny: {} }, provides: () => ({}), create: () => ({}) }));`);
    const r = await loadPlugins(['./nope.mjs', './other.mjs'], { cwd: root, from: [root] });
    expect(r.failed.map((f) => [f.name, f.from])).toEqual([['@acme/student-x', 'dependency of my-project'], ['./nope.mjs', '--plugin']]);
    expect(r.failed[0]!.error).toBe('broken on purpose');
    expect(r.failed[0]!.dir).toBe(pkg);
    expect(r.loaded.map((l) => l.name)).toEqual(['./other.mjs']);
    expect(list('student').map((p) => p.name)).toContain('other-student');
    const text = listCommand({ plugins: [...r.loaded, ...r.failed] });
    expect(text).toContain('plugin packages (1 loaded, 2 failed):');
    expect(text).toContain(`FAILED @acme/student-x  ${pkg}  (dependency of my-project): broken on purpose`);
    expect(text).toContain(`./other.mjs  ${join(root, 'other.mjs')}  (--plugin)`);
  });
  it('lists registered plugins and says when there are none', () => {
    for (const p of list()) unregister(p.kind, p.name);
    expect(listCommand()).toMatch(/No plugins are registered/);
  });
});

const res = (role: JobResult['role'], student: string | null, teacher: string | null, seed: number, mAP: number, NDS: number): JobResult => ({
  id: `${role}-${teacher}-${student}-${seed}`, role, task: 'det', teacher, student, distiller: role === 'distill' ? 'dist-d' : null, seed, presets: {},
  metrics: { mean_ap: mAP, nd_score: NDS }, train: { steps: 10, seconds: 1, steps_per_s: 10, samples_per_s: 20, first_loss: 5, last_loss: 1, backend: 'wasm' },
  eval: { samples: 4, seconds: 1 }, checkpoint: '/nonexistent/model.safetensors', log: '/nonexistent/train.jsonl',
  preview: { sample_token: 'abcdef0123', gt: [{ x: 10, y: 2, w: 2, l: 4, yaw: 0.3, label: 0 }], pred: [{ x: 10.5, y: 2, w: 2, l: 4.2, yaw: 0.2, label: 0, score: 0.8 }] },
  finished_at: '2026-01-01T00:00:00Z',
});

describe('reports', () => {
  const results = [
    res('teacher', null, 'lidar-t', 0, 0.6, 0.62),
    res('baseline', 'cam-s', null, 0, 0.2, 0.3), res('baseline', 'cam-s', null, 1, 0.22, 0.32),
    res('distill', 'cam-s', 'lidar-t', 0, 0.25, 0.35), res('distill', 'cam-s', 'lidar-t', 1, 0.27, 0.37),
  ];
  it('lays out the paper table with means over seeds and deltas', () => {
    const t = paperTable(toRows(results), 'det');
    expect(t.columns).toEqual([{ teacher: 'lidar-t', distiller: 'dist-d' }]);
    expect(t.body[0]!.base!.mean[0]).toBeCloseTo(0.21, 12);
    expect(t.body[0]!.cells[0]!.mean[1]).toBeCloseTo(0.36, 12);
    const md = resultsMarkdown(toRows(results));
    expect(md).toContain('| cam-s | 21.0 / 31.0 | 26.0 / 36.0 | +5.0 / +5.0 |');
    expect(md).toContain('| lidar-t | 60.0 / 62.0 |');
    const csv = resultsCsv(toRows(results)).split('\n');
    expect(csv[0]).toBe('task,student,teacher,distiller,seeds,metric,mean,std,delta');
    expect(csv[3]).toBe('det,cam-s,lidar-t,dist-d,2,mAP,0.260000,0.014142,0.050000');
    expect(csv[4]).toBe('det,cam-s,lidar-t,dist-d,2,NDS,0.360000,0.014142,0.050000');
    const html = reportHtml(results, 'x');
    expect(html.match(/<table>/g)).toHaveLength(2); // the paper table and the teachers' table (no per-class metrics here)
    expect(html).toContain('<th>student</th><th>baseline</th>');
    expect(html).toContain('<td>cam-s</td><td>21.0 / 31.0</td>');
    expect(html.match(/<polygon points="[^"]*" fill="none"/g)).toHaveLength(10); // one GT and one predicted box per run
    expect(html).toContain('<strong>Dataset:</strong> not recorded');
    expect(html).toContain('No run left a training log or validation curve.');
  });
  it('writes results.json with one row per run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-rep-'));
    await writeReports(dir, results, { preset: 'tiny' });
    const j = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(j.rows).toHaveLength(5);
    expect(j.rows[0]).toMatchObject({ teacher: 'lidar-t', student: null, distiller: null, seed: 0 });
    expect(j.rows[1]).toMatchObject({ teacher: null, student: 'cam-s', distiller: null });
    expect(j.rows[4].metrics.mean_ap).toBe(0.27);
    expect(j.rows.every((r: { task: string }) => r.task === 'det')).toBe(true);
  });

  const occ = (role: JobResult['role'], student: string | null, seed: number, miou: number, car: number | null): JobResult => ({
    ...res(role, student, null, seed, 0, 0), id: `occ-${role}-${student}-${seed}`, task: 'occ', metrics: { miou, iou: { car, barrier: null }, frames: 4 }, preview: undefined,
  });

  it('gives each task its own table: detection by mAP / NDS, occupancy by mIoU with its per-class IoU', () => {
    const all = [...results, occ('baseline', 'occnet', 0, 0.3, 0.5), occ('baseline', 'occnet', 1, 0.34, 0.7)];
    const rows = toRows(all);
    expect(rows.map((r) => r.task)).toEqual(['det', 'det', 'det', 'det', 'det', 'occ', 'occ']);
    const md = resultsMarkdown(rows, 'synthetic small, split synth_val');
    expect(md).toContain('## Detection (synthetic small, split synth_val; mAP / NDS in %, mean over seeds; Δ against the baseline)');
    expect(md).toContain('## Occupancy (synthetic small, split synth_val; mIoU in %, mean over seeds; Δ against the baseline)\n\n| student | baseline |\n|---|---|\n| occnet | 32.0 |');
    // others, barrier (null), bicycle, bus: no value; car: the mean of 50 and 70.
    expect(md).toMatch(/\| occnet baseline \| 32\.0 \| — \| — \| — \| — \| 60\.0 \| — \|/);
    const csv = resultsCsv(rows);
    expect(csv).toContain('occ,occnet,,,2,mIoU,0.320000,0.028284,\n');
    const html = reportHtml(all, 'x', { dataset: 'synthetic small, split synth_val', preset: 'small', seeds: [0, 1], failed: { 'run-a': 'the loss became NaN at step 2' }, skipped: ['run-b'] });
    expect(html).toContain('<strong>Dataset:</strong> synthetic small, split synth_val · preset small · seeds 0, 1 · 7 runs');
    expect(html).toContain('<li>run-a failed: the loss became NaN at step 2</li><li>run-b skipped</li>');
    expect(html).toContain('<h3>Occupancy (synthetic small, split synth_val; mIoU in %');
    expect(html).toContain('<h3>occnet baseline (seed 1)</h3><p>mIoU 34.0 over 4 frames ·');
    expect(html).toMatch(/<div class="table" id="occ-per-class-iou"><h3>Occupancy per-class IoU \(%\)<\/h3>/);
  });

  it('tables the per-class AP and TP errors of detection runs, and each run as the devkit prints it', () => {
    const aps = (v: number) => ({ '0.5': v / 2, '1.0': v, '2.0': v, '4.0': 1.5 * v });
    const det = (seed: number, car: number): JobResult => ({
      ...res('baseline', 'cam-s', null, seed, car / 10, 0.3),
      metrics: {
        mean_ap: car / 10, nd_score: 0.3, tp_errors: { trans_err: 0.5, scale_err: 0.25, orient_err: 0.75, vel_err: 1, attr_err: seed ? null : 0.2 },
        label_aps: { car: aps(car), barrier: aps(0) }, mean_dist_aps: { car, barrier: 0 },
        label_tp_errors: { car: { trans_err: 0.4, scale_err: 0.2, orient_err: 0.1, vel_err: 0.9, attr_err: 0.3 }, barrier: { trans_err: 0.6, scale_err: 0.3, orient_err: 1.4, vel_err: null, attr_err: null } },
      },
    });
    const rows = toRows([det(0, 0.5), det(1, 0.7)]);
    const md = resultsMarkdown(rows);
    expect(md).toContain('## Detection per-class AP (%, mean over the distance thresholds)\n\n| run | mAP | car | truck |');
    expect(md).toMatch(/\| cam-s baseline \| 6\.0 \| 60\.0 \| — \|/); // truck: not in the metrics
    // attr_err: NaN (null) in one seed: the mean of the others.
    expect(md).toContain('| run | NDS (%) | mATE (m) | mASE (1−IoU) | mAOE (rad) | mAVE (m/s) | mAAE (1−acc) |\n|---|---|---|---|---|---|---|\n| cam-s baseline | 30.0 | 0.500 | 0.250 | 0.750 | 1.000 | 0.200 |');
    const html = reportHtml([det(0, 0.5)], 'x');
    expect(html).toContain('<th>class</th><th>AP</th><th>AP@0.5 m</th><th>AP@1.0 m</th><th>AP@2.0 m</th><th>AP@4.0 m</th><th>ATE</th>');
    expect(html).toContain('<tr><td>car</td><td>0.500</td><td>0.250</td><td>0.500</td><td>0.500</td><td>0.750</td><td>0.400</td><td>0.200</td><td>0.100</td><td>0.900</td><td>0.300</td></tr>');
    expect(html).toContain('<td>barrier</td><td>0.000</td><td>0.000</td><td>0.000</td><td>0.000</td><td>0.000</td><td>0.600</td><td>0.300</td><td>1.400</td><td>—</td><td>—</td></tr>');
    expect(html).toContain('mAP 0.050 · mATE 0.500 · mASE 0.250 · mAOE 0.750 · mAVE 1.000 · mAAE 0.200 · NDS 0.300');
  });

  it('charts the training loss and validation curves of each student, baseline and distilled runs overlaid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-curves-'));
    const withLog = (r: JobResult, losses: number[]): JobResult => {
      const log = join(dir, `${r.id}.jsonl`);
      writeFileSync(log, losses.map((loss, i) => JSON.stringify({ step: i + 1, loss })).join('\n') + '\n{"step": 9, "lo'); // a torn last line
      return { ...r, log, curve: [{ step: 2, train_seconds: 1, mean_ap: 0.1, nd_score: 0.2 }, { step: 4, train_seconds: 2, mean_ap: 0.2, nd_score: 0.3 }] };
    };
    const html = reportHtml([withLog(results[1]!, [5, 4, 3, 2]), withLog(results[3]!, [6, 5, 4, 3]), results[0]!], 'x');
    const curves = html.slice(html.indexOf('<section id="curves">'), html.indexOf('<section id="runs">'));
    expect(curves.match(/<svg /g)).toHaveLength(3); // cam-s: loss, mAP, NDS (the teacher has no log and no curve)
    for (const t of ['cam-s: training loss', 'cam-s: validation mAP', 'cam-s: validation NDS', '>step<', '>loss (moving average)<', '>mAP (%)<', '>NDS (%)<', '>baseline<', '>← lidar-t (dist-d)<'])
      expect(curves).toContain(t);
    expect(curves).not.toMatch(/<script|<image|href=/); // plain inline SVG: nothing to load
    expect(curves).not.toContain('No validation curve');
    const lossOnly = reportHtml([{ ...withLog(results[1]!, [5, 4]), curve: undefined }], 'x');
    expect(lossOnly.match(/<svg /g)).toHaveLength(2); // the loss chart and the BEV picture
    expect(lossOnly).toContain('No validation curve: a run records one with <code>--set train.evalEvery=&lt;steps&gt;</code>.');
  });

  it('reads and smooths loss logs; draws a chart with titled axes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-loss-'));
    const log = join(dir, 'train.jsonl');
    writeFileSync(log, ['{"step":1,"loss":4}', '', '{"step":2,"loss":null}', 'not json', '{"step":3,"loss":2}'].join('\n'));
    expect(readLossLog(log)).toEqual([{ step: 1, loss: 4 }, { step: 3, loss: 2 }]);
    expect(readLossLog(join(dir, 'missing.jsonl'))).toEqual([]);
    // 200 steps: a moving average over 4 steps, every step kept; 1000 steps: over 20 (fewer at the start), thinned to
    // every 4th step and the last.
    const pts = (n: number) => Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: i % 2 }));
    const s200 = smoothLoss(pts(200));
    expect(s200).toHaveLength(200);
    expect(s200[0]).toEqual([1, 0]);
    expect(s200[1]).toEqual([2, 0.5]);
    expect(s200[10]).toEqual([11, 0.5]);
    const s1000 = smoothLoss(pts(1000));
    expect(s1000).toHaveLength(251);
    expect(s1000[1]).toEqual([5, 0.4]);
    expect(s1000.at(-1)).toEqual([1000, 0.5]);
    const svg = lineChartSvg({ title: 'a <b> title', xName: 'step', yName: 'loss', series: [{ name: 'run & co', points: [[0, 1], [10, 0.5]] }] });
    expect(svg).toMatch(/^<svg [^>]*width="380"/);
    for (const t of ['>a &lt;b&gt; title<', '>step<', '>loss<', '>run &amp; co<']) expect(svg).toContain(t);
  });

  it('escapes what the formats need: | in markdown cells, RFC 4180 quoting in CSV, HTML entities', () => {
    const odd = [res('baseline', 'my|student,v2', null, 0, 0.1, 0.2), res('baseline', 'say "hi" <b>', null, 0, 0.1, 0.2)];
    const md = resultsMarkdown(toRows(odd));
    expect(md).toContain('| my\\|student,v2 | 10.0 / 20.0 |');
    const csv = resultsCsv(toRows(odd)).split('\n');
    expect(csv).toContain('det,"my|student,v2",,,1,mAP,0.100000,0.000000,');
    expect(csv).toContain('det,"say ""hi"" <b>",,,1,mAP,0.100000,0.000000,');
    expect(csvField('a\nb')).toBe('"a\nb"');
    expect(csvField('plain')).toBe('plain');
    const html = reportHtml(odd, 'x');
    expect(html).toContain('<td>say &quot;hi&quot; &lt;b&gt;</td>');
    expect(html).not.toContain('<b>');
  });
});
