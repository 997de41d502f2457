/**
 * Faults of the matrix process: a second matrix on the same --out, SIGKILL of the matrix (its runs notice and stop),
 * SIGTERM / SIGINT (it stops its runs, then exits 128 + n), and the stale lock a SIGKILL leaves.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { alive, bevzoo, childrenOf, faultSandbox, type Proc, waitFor } from './helpers.js';

const box = faultSandbox();

/** A tiny matrix whose teacher and baseline train long enough to be interrupted (the distillation waits for the teacher). */
const matrixArgs = (out: string) => ['matrix', '--preset', 'tiny', '--steps', '500', '--teachers', 'centerpoint', '--students', 'bevdet', '--distillers', 'distillbev', '--out', out, '--data-dir', box.dataDir];

/** Start a matrix and wait until both of its child runs are training; returns it and their pids. */
async function matrixTraining(out: string): Promise<{ m: Proc; runs: number[] }> {
  const m = bevzoo(matrixArgs(out));
  const training = () => {
    const dirs = existsSync(join(out, 'runs')) ? readdirSync(join(out, 'runs')) : [];
    return dirs.filter((d) => existsSync(join(out, 'runs', d, 'train.jsonl')) && statSync(join(out, 'runs', d, 'train.jsonl')).size > 0).length === 2;
  };
  await waitFor(() => training() && childrenOf(m.pid).length === 2, 120_000, 'two runs training', m);
  return { m, runs: childrenOf(m.pid) };
}

const lockPid = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
const gone = (pids: number[]) => () => pids.every((p) => !alive(p));
const locks = (out: string) => [join(out, 'bevzoo.lock'), ...readdirSync(join(out, 'runs')).map((d) => join(out, 'runs', d, 'bevzoo.lock'))].filter(existsSync);

describe('the matrix process', () => {
  it('refuses a second matrix on the same --out, naming the pid; kill -9 ends its runs; a rerun takes the stale lock over', async () => {
    const out = join(box.root, 'm-kill');
    const { m, runs } = await matrixTraining(out);

    const second = bevzoo(matrixArgs(out));
    const r2 = await second.exited;
    expect(r2.code).toBe(1);
    expect(second.stderr().trim().split('\n').at(-1)).toMatch(new RegExp(`^bevzoo matrix: ${out} is locked by bevzoo matrix \\(pid ${m.pid}, since [^)]+\\); wait for it to finish or stop it`));
    expect(runs.every(alive)).toBe(true); // the refused matrix touched nothing

    m.child.kill('SIGKILL');
    await m.exited;
    await waitFor(gone(runs), 5_000, `the runs ${runs.join(', ')} to end after their matrix was killed`);
    // What is left is stale: the matrix's lock and its runs' (nothing runs at SIGKILL), of processes that are gone.
    expect(locks(out).map(lockPid).filter(alive)).toEqual([]);

    const third = bevzoo(matrixArgs(out));
    await waitFor(() => third.stderr().includes('runs →'), 60_000, 'the rerun to start', third);
    expect(third.stderr()).toContain(`${out}: taking over the lock of bevzoo matrix (pid ${m.pid}), which no longer runs`);
  }, 240_000);

  // SIGHUP takes the same handler (not repeated here: each case starts a matrix).
  it.each(['SIGTERM', 'SIGINT'] as const)('%s stops its runs, releases the locks and exits 128 + the signal number', async (signal) => {
    const out = join(box.root, `m-${signal}`);
    const { m, runs } = await matrixTraining(out);
    m.child.kill(signal);
    const r = await Promise.race([m.exited, new Promise<null>((res) => setTimeout(() => res(null), 20_000))]);
    expect(r, `the matrix did not exit within 20 s of ${signal}; output:\n${m.output().slice(-2000)}`).toEqual({ code: 128 + constants.signals[signal], signal: null });
    expect(runs.filter(alive)).toEqual([]);
    expect(m.stderr()).toContain(`${signal}: stopping 2 run(s) (pid ${runs.join(', ')}); rerun the same command to resume`);
    expect(m.stderr()).not.toContain('FAILED');
    // The matrix released its lock; a run still busy in a training step after the grace period was killed and left
    // its folder's lock, stale (a rerun takes it over).
    expect(locks(out).filter((l) => l === join(out, 'bevzoo.lock') || alive(lockPid(l)))).toEqual([]);
  }, 180_000);
});
