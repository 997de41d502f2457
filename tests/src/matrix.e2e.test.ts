/**
 * End to end: the runner discovers the installed plugins, generates the tiny synthetic dataset, trains the
 * teacher, the baseline and the distilled student for a few steps, evaluates them with the nuScenes metrics and
 * writes the reports; a second run resumes from the finished runs; a removed result reruns only that run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-e2e-'));
const args = ['matrix', '--preset', 'tiny', '--seeds', '1', '--steps', '4', '--in-process', '--out', join(out, 'm'), '--data-dir', join(out, 'data'), '--distillers', 'distillbev'];

const run = runCli;

describe('bevzoo matrix (tiny)', () => {
  beforeAll(() => {
    process.env.BEVZOO_SOURCE = '1'; // load the installed plugin packages from their sources
  });

  it('runs every compatible combination and writes the reports', async () => {
    const r = await run(args);
    expect(r.code).toBe(0);
    const res = JSON.parse(readFileSync(join(out, 'm', 'results.json'), 'utf8'));
    const kinds = res.rows.map((x: { teacher: string | null; student: string | null; distiller: string | null }) => `${x.teacher}|${x.student}|${x.distiller}`);
    expect(kinds).toEqual(expect.arrayContaining(['centerpoint|null|null', 'null|bevdet|null', 'centerpoint|bevdet|distillbev', 'null|bevdet4d|null', 'centerpoint|bevdet4d|distillbev', 'null|bevdepth|null', 'centerpoint|bevdepth|distillbev', 'null|bevformer|null', 'centerpoint|bevformer|distillbev',
      // the multi-modal detection teacher's column (virtual points from the synthetic masks)
      'mvp|null|null', 'mvp|bevdet|distillbev', 'mvp|bevdet4d|distillbev', 'mvp|bevdepth|distillbev', 'mvp|bevformer|distillbev']));
    // The occupancy part (distillbev only here: no occupancy cells): the multi-modal teacher's row and the students'
    // baselines, scored with Occ3D mIoU.
    expect(res.rows.filter((x: { task: string }) => x.task === 'occ').map((x: { teacher: string | null; student: string | null }) => `${x.teacher}|${x.student}`).sort()).toEqual(['null|bevdet-occ', 'null|flashocc', 'occ-fusion|null']);
    for (const row of res.rows) {
      if (row.task === 'occ') {
        expect(row.metrics.miou).toBeGreaterThanOrEqual(0);
        expect(row.metrics.miou).toBeLessThanOrEqual(1);
      } else {
        expect(row.metrics.mean_ap).toBeGreaterThanOrEqual(0);
        expect(row.metrics.nd_score).toBeGreaterThanOrEqual(0);
        expect(row.metrics.nd_score).toBeLessThanOrEqual(1);
      }
      expect(row.train.steps).toBe(4);
      // Where the run's time went (bench:matrix prints it): phases ≥ 0 that fit in the wall time; a distilled run's
      // teacher forward and distiller loss are phases of their own.
      const t = row.timing;
      const phases = ['setup', 'data', 'teacher', 'forward', 'distill', 'backward', 'optimizer', 'train_other', 'eval'].map((k) => t[k] as number);
      for (const v of phases) expect(v).toBeGreaterThanOrEqual(0);
      expect(phases.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(t.wall + 0.05);
      expect(t.eval).toBeGreaterThan(0);
      if (!row.train.packaged) expect(t.forward).toBeGreaterThan(0);
      if (row.distiller) expect(Math.min(t.teacher, t.distill)).toBeGreaterThan(0);
      else expect(t.distill).toBe(0);
      // The training loader's frame cache: the first epoch (2 batches of the 4 samples) computes the frames, the
      // second reads them from memory.
      if (!row.train.packaged) {
        const c = row.train.data_cache;
        expect(c.misses, row.id).toBeGreaterThan(0);
        expect(c.memory_hits, row.id).toBeGreaterThan(0);
        expect(c.memory_limit).toBeGreaterThanOrEqual(1024 ** 3); // the runner's frameCacheBytes()
      }
    }
    // bench:matrix --from prints the split of this folder, one line per run and the totals.
    const bench = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'apps', 'runner', 'dist', 'bench-matrix.js'), '--from', join(out, 'm')], { encoding: 'utf8' });
    expect(bench.status).toBe(0);
    expect(bench.stdout).toMatch(/^run\s+wall s\s+setup\s+data\s+teacher\s+forward\s+distill\s+backward\s+optim/);
    expect(bench.stdout).toMatch(/\ndistill-distillbev-centerpoint-bevdet-seed0\s+[\d.]+/);
    expect(bench.stdout).toMatch(/\ntotal\s+[\d.]+/);
    expect(bench.stdout).toContain(`${res.rows.length} runs;`);
    const md = readFileSync(join(out, 'm', 'results.md'), 'utf8');
    expect(md).toMatch(/\| bevdet \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \| [+-][\d.]+ \/ [+-][\d.]+ \|/);
    expect(readFileSync(join(out, 'm', 'results.csv'), 'utf8').split('\n')[0]).toBe('task,student,teacher,distiller,seeds,metric,mean,std,delta');
    const html = readFileSync(join(out, 'm', 'report.html'), 'utf8');
    expect(html).toContain('<strong>Dataset:</strong> synthetic tiny, split synth_val');
    expect(html).toContain('<h3>bevdet</h3>'); // its curves: loss, mAP and NDS against step (tests/src/report.e2e.test.ts opens a report in Chromium)
    expect(html).toContain('bevdet: training loss');
    expect(html).toContain('id="det-per-class-ap"');
    expect(html).toContain('class="scale-bar"');
    expect(r.stdout).toContain('| student | baseline |');
    // Each run left its weights, log and the devkit's metric files.
    const run0 = join(out, 'm', 'runs', 'baseline-bevdet-seed0');
    for (const f of ['model.safetensors', 'train.jsonl', 'result.json', 'eval/results.json', 'eval/metrics_summary.json', 'eval/metrics_details.json']) expect(existsSync(join(run0, f))).toBe(true);
    expect(readFileSync(join(run0, 'train.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
  });

  it("evaluates a run's saved submission again through bevzoo eval det, to the same numbers", async () => {
    const run0 = join(out, 'm', 'runs', 'teacher-centerpoint');
    const data = join(out, 'data', 'synth-tiny-seed0');
    const r = await run(['eval', 'det', '--dataroot', data, '--version', 'v1.0-synth', '--split', 'synth_val', '--results', join(run0, 'eval', 'results.json'),
      '--eval-config', join(data, 'v1.0-synth', 'detection_config.json'), '--out', join(out, 'reeval')]);
    expect(r.code).toBe(0);
    const again = JSON.parse(readFileSync(join(out, 'reeval', 'metrics_summary.json'), 'utf8'));
    const first = JSON.parse(readFileSync(join(run0, 'eval', 'metrics_summary.json'), 'utf8'));
    expect(again.nd_score).toBe(first.nd_score);
    expect(again.mean_ap).toBe(first.mean_ap);
    expect(r.stdout).toMatch(/NDS: \d\.\d{4}/);
    expect(r.stdout).toContain('Per-class results:');
  });

  it('resumes: finished runs are kept, a missing one reruns', async () => {
    const teacherResult = join(out, 'm', 'runs', 'teacher-centerpoint', 'result.json');
    const before = statSync(teacherResult).mtimeMs;
    rmSync(join(out, 'm', 'runs', 'baseline-bevdet-seed0', 'result.json'));
    const r = await run(args);
    expect(r.code).toBe(0);
    expect(statSync(teacherResult).mtimeMs).toBe(before);
    expect(existsSync(join(out, 'm', 'runs', 'baseline-bevdet-seed0', 'result.json'))).toBe(true);
    // the three teachers (centerpoint, mvp, occ-fusion), baselines of bevdepth, bevdet, bevdet4d, bevformer, bevdet-occ, flashocc, the
    // eight distilled cells (two detection teachers × four camera students): all but the removed one kept.
    expect(r.stdout).toMatch(/: 17\/17 runs in [\d.]+ min \(16 resumed\)/);
  });
});
