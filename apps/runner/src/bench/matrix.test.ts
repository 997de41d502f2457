import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobResult, RunTiming } from '../pipeline/results.js';
import { formatTimings, timedRuns } from './matrix.js';

const timing = (over: Partial<RunTiming>): RunTiming => ({ wall: 0, setup: 0, data: 0, teacher: 0, forward: 0, distill: 0, backward: 0, optimizer: 0, train_other: 0, eval: 0, ...over });
const result = (id: string, steps: number, t: RunTiming | undefined, packaged = false) =>
  ({ id, role: 'baseline', train: { steps, ...(packaged ? { packaged: { file: 'x', command: 'y' } } : {}) }, ...(t ? { timing: t } : {}) }) as unknown as JobResult;

const dir = mkdtempSync(join(tmpdir(), 'bevzoo-bench-matrix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench:matrix', () => {
  it('prints each run, the totals and each phase\'s share of the runs\' wall time', () => {
    const a = result('baseline-a-seed0', 10, timing({ wall: 20, setup: 2, data: 3, forward: 5, backward: 6, optimizer: 1, train_other: 0.5, eval: 2 }));
    const b = result('distill-x-a-seed0', 10, timing({ wall: 30, setup: 3, data: 3, teacher: 4, forward: 5, distill: 2, backward: 7, optimizer: 1, train_other: 1, eval: 3 }));
    const c = result('teacher-t', 4000, timing({ wall: 5, setup: 1, eval: 4 }), true);
    const text = formatTimings([a, b, c], 40);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^run\s+wall s\s+setup\s+data\s+teacher\s+forward\s+distill\s+backward\s+optim\s+train rest\s+eval\s+steps\s+ms\/step$/);
    // ms per step = (teacher + forward + distill + backward + optimiser) / steps; a packaged teacher trains nothing.
    expect(lines[1]).toMatch(/^baseline-a-seed0\s+20\.0\s+2\.0\s+3\.0\s+0\.0\s+5\.0\s+0\.0\s+6\.0\s+1\.0\s+0\.5\s+2\.0\s+10\s+1200$/);
    expect(lines[2]).toMatch(/^distill-x-a-seed0\s+30\.0\s+.*\s+10\s+1900$/);
    expect(lines[3]).toMatch(/^teacher-t\s+5\.0\s+.*\s+0\s+—$/);
    expect(lines[4]).toMatch(/^total\s+55\.0\s+6\.0\s+6\.0\s+4\.0\s+10\.0\s+2\.0\s+13\.0\s+2\.0\s+1\.5\s+9\.0/);
    expect(lines[5]).toMatch(/^share of the runs' wall\s+100 %\s+10\.9 %\s+10\.9 %\s+7\.3 %\s+18\.2 %\s+3\.6 %\s+23\.6 %\s+3\.6 %\s+2\.7 %\s+16\.4 %/);
    expect(text).toContain('3 runs; 1.5 s of their wall time is in none of the phases');
    expect(text).toContain('matrix wall time 40.0 s (dataset and teacher preparation included); the runs\' wall times add up to 55.0 s, 1.38× it');
  });

  it('reads the runs of a matrix folder that have a timing, and names a folder that is not one', () => {
    for (const [id, t] of [['baseline-a-seed0', timing({ wall: 1 })], ['old-run', undefined]] as const) {
      mkdirSync(join(dir, 'runs', id), { recursive: true });
      writeFileSync(join(dir, 'runs', id, 'result.json'), JSON.stringify(result(id, 1, t)));
    }
    expect(timedRuns(dir).map((r) => r.id)).toEqual(['baseline-a-seed0']);
    expect(() => timedRuns(join(dir, 'runs'))).toThrow(`${join(dir, 'runs', 'runs')} does not exist: not a matrix folder`);
  });
});
