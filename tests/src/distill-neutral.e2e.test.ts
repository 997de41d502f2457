/**
 * A distillation with every term at weight 0 (and DistillBEV's head inheritance off) must train its student to the
 * same bits as the student's baseline in the same folder: the distillation pipeline itself (the teacher's forward,
 * the distiller's data hooks, the batches, the random streams, the optimiser over the student's parameters) leaves
 * the student untouched, so any difference a cell shows comes from its losses.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRun, runCli } from './cli.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-distill-neutral-'));

/** The baseline and the zero-weight cell of `teacher` × `student` × `distiller`, tiny, 6 steps, in one folder. */
const pair = async (teacher: string, student: string, distiller: string, sets: string[]) => {
  const dir = join(out, distiller);
  const r = await runCli(['distill', '--teacher', teacher, '--student', student, '--distiller', distiller, '--preset', 'tiny', '--steps', '6',
    ...sets.flatMap((s) => ['--distiller-set', s]), '--data-dir', join(out, 'data'), '--out', dir]);
  expect(r.code).toBe(0);
  return { baseline: readRun(join(dir, 'runs', `baseline-${student}-seed0`)), distilled: readRun(join(dir, 'runs', `distill-${distiller}-${teacher}-${student}-seed0`)) };
};

describe('a distillation whose terms all weigh 0 trains the baseline', () => {
  beforeAll(() => {
    process.env.BEVZOO_SOURCE = '1';
  });

  it('DistillBEV (no head inheritance): the same losses and metrics as the baseline', async () => {
    const { baseline, distilled } = await pair('centerpoint', 'bevdet', 'distillbev', ['alpha=0', 'beta=0', 'gamma=0', 'wAtt=0', 'inheritHead=false']);
    expect(distilled.losses).toHaveLength(6);
    expect(distilled.losses).toEqual(baseline.losses);
    expect(distilled.result.metrics).toEqual(baseline.result.metrics);
  });

  it('RadOcc: the same losses and metrics as the baseline', async () => {
    const { baseline, distilled } = await pair('occ-fusion', 'flashocc', 'radocc', ['voxelKl.weight=0', 'rdc.weight=0', 'rsc.weight=0']);
    expect(distilled.losses).toHaveLength(6);
    expect(distilled.losses).toEqual(baseline.losses);
    expect(distilled.result.metrics).toEqual(baseline.result.metrics);
  });
});
