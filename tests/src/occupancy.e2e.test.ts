/**
 * One runner for both tasks: an occupancy student that the runner has never heard of (a plugin file, loaded with
 * --plugin) trains through `bevzoo train`, is evaluated with Occ3D mIoU (its prediction files evaluate to the same
 * figure through `bevzoo eval occ`), and appears with its mIoU in `bevzoo matrix` beside a detection cell.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-occ-'));
const plugin = fileURLToPath(new URL('./fixtures/occ-lite.ts', import.meta.url));
const data = ['--data-preset', 'tiny', '--data-dir', join(out, 'data')];

const run = runCli;

describe('an occupancy student through the runner', () => {
  beforeAll(() => {
    process.env.BEVZOO_SOURCE = '1';
  });

  it('trains through bevzoo train: the loss falls, the result carries task occ and its mIoU, the predictions evaluate to it', async () => {
    const dir = join(out, 'train');
    const r = await run(['train', 'student', 'occ-lite', '--preset', 'tiny', '--plugin', plugin, ...data, '--out', dir]);
    expect(r.code).toBe(0);
    const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
    expect(result.task).toBe('occ');
    expect(result.train.steps).toBe(40);
    expect(result.metrics.miou).toBeGreaterThan(0);
    expect(result.metrics.miou).toBeLessThanOrEqual(1);
    expect(Object.keys(result.metrics.iou)).toHaveLength(17);
    expect(result.metrics.frames).toBe(result.eval.samples);
    expect(r.stdout).toMatch(/===> mIoU of \d+ samples: \d+\.\d\d/);
    const losses = readFileSync(join(dir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).losses['occ.ce'] as number);
    expect(losses.at(-1)!).toBeLessThan(0.7 * losses[0]!);
    const preds = readdirSync(join(dir, 'eval', 'occ'));
    expect(preds).toHaveLength(result.eval.samples);

    const again = await run(['eval', 'occ', '--dataroot', join(out, 'data', 'synth-tiny-seed0'), '--version', 'v1.0-synth', '--split', 'synth_val',
      '--gts', join(out, 'data', 'synth-tiny-seed0', 'gts'), '--predictions', join(dir, 'eval', 'occ')]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`mIoU of ${result.eval.samples} samples: ${(100 * result.metrics.miou).toFixed(2)}`);
  });

  it('appears in bevzoo matrix with its mIoU, in an occupancy table beside the detection table', async () => {
    const m = join(out, 'matrix');
    const r = await run(['matrix', '--preset', 'tiny', '--plugin', plugin, '--students', 'occ-lite,bevdet', '--teachers', 'centerpoint', '--distillers', 'distillbev',
      '--steps', '3', '--in-process', ...data, '--out', m]);
    expect(r.code).toBe(0);
    const res = JSON.parse(readFileSync(join(m, 'results.json'), 'utf8'));
    const occ = res.rows.filter((x: { task: string }) => x.task === 'occ');
    expect(occ).toHaveLength(1);
    expect(occ[0]).toMatchObject({ student: 'occ-lite', teacher: null, distiller: null });
    expect(occ[0].metrics.miou).toBeGreaterThan(0);
    expect(res.rows.filter((x: { task: string }) => x.task === 'det').map((x: { student: string | null; teacher: string | null }) => `${x.teacher}|${x.student}`).sort())
      .toEqual(['centerpoint|bevdet', 'centerpoint|null', 'null|bevdet']);
    expect(res.meta.dataset).toBe('synthetic tiny, split synth_val');
    const md = readFileSync(join(m, 'results.md'), 'utf8');
    expect(md).toContain('## Detection (synthetic tiny, split synth_val; mAP / NDS in %');
    expect(md).toContain('## Occupancy (synthetic tiny, split synth_val; mIoU in %');
    expect(md).toContain(`| occ-lite | ${(100 * occ[0].metrics.miou).toFixed(1)} |`);
    expect(md).toMatch(/## Occupancy per-class IoU \(%\)\n\n\| run \| mIoU \| others \| barrier \|/);
    const csv = readFileSync(join(m, 'results.csv'), 'utf8');
    expect(csv).toContain(`occ,occ-lite,,,1,mIoU,${occ[0].metrics.miou.toFixed(6)},0.000000,`);
    const html = readFileSync(join(m, 'report.html'), 'utf8');
    expect(html).toContain('<h3>Occupancy (synthetic tiny, split synth_val; mIoU in %, mean over seeds; Δ against the baseline)</h3>');
    expect(html).toContain('id="occ-per-class-iou"');
    expect(html).toContain('occ-lite baseline (seed 0)');
    expect(existsSync(join(m, 'runs', 'baseline-occ-lite-seed0', 'eval', 'occ'))).toBe(true);
  });
});
