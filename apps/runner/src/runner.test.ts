import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { list, unregister } from '@bevzoo/core';
import { findInstalledPlugins, loadPlugin, loadPlugins } from './discover.js';
import { listCommand } from './commands/list.js';
import { csvField, paperTable, resultsCsv, resultsMarkdown, reportHtml, toRows, writeReports } from './pipeline/report.js';
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
    expect(html.match(/<table>/g)).toHaveLength(2); // the paper table and the teachers' table
    expect(html).toContain('<th>student</th><th>baseline</th>');
    expect(html).toContain('<td>cam-s</td><td>21.0 / 31.0</td>');
    expect(html.match(/<polygon/g)).toHaveLength(10);
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
    const html = reportHtml(all, 'x', 'synthetic small, split synth_val');
    expect(html).toContain('<h2>Occupancy (synthetic small, split synth_val; mIoU in %');
    expect(html).toContain('<h3>occnet baseline (seed 1)</h3><p>mIoU 34.0 ·');
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
