/**
 * The two camera occupancy students, installed beside the runner (devDependencies of @bevzoo/runner), train through
 * `bevzoo train` on the tiny synthetic dataset and are evaluated with Occ3D mIoU on the camera mask: their
 * predictions on their coarse grids come back on the 200×200×16 Occ3D grid.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-occ-students-'));
const data = ['--data-preset', 'tiny', '--data-dir', join(out, 'data')];

describe('the occupancy students through the runner', () => {
  beforeAll(() => {
    process.env.BEVZOO_SOURCE = '1';
  });

  for (const name of ['flashocc', 'bevdet-occ']) {
    it(`${name} trains at the tiny preset: the loss falls, the result has task occ and an Occ3D mIoU, one prediction per val sample`, async () => {
      const dir = join(out, name);
      const r = await runCli(['train', 'student', name, '--preset', 'tiny', '--steps', '8', ...data, '--out', dir]);
      expect(r.code).toBe(0);
      const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
      expect(result).toMatchObject({ task: 'occ', student: name, teacher: null, train: { steps: 8 } });
      expect(result.metrics.miou).toBeGreaterThanOrEqual(0);
      expect(result.metrics.miou).toBeLessThanOrEqual(1);
      expect(Object.keys(result.metrics.iou)).toHaveLength(17);
      expect(r.stdout).toMatch(/===> mIoU of \d+ samples: \d+\.\d\d/);
      const losses = readFileSync(join(dir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).losses['occ.ce'] as number);
      expect(losses).toHaveLength(8);
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      expect(readdirSync(join(dir, 'eval', 'occ'))).toHaveLength(result.eval.samples);
    });
  }
});
