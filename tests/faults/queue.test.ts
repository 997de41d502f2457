/**
 * The matrix on a BullMQ queue (`bevzoo matrix --queue`, `bevzoo worker`), against a real Redis (tests/faults/redis.ts):
 * enqueueing again is a no-op; two workers, one killed with SIGKILL mid-run and Redis restarted mid-matrix, finish the
 * matrix with the local matrix's results (the killed run resumed from its checkpoint by the other worker, every result
 * written once); a run that keeps failing is retried a bounded number of times and reported with its error, and the
 * runs that need it are reported as skipped.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bevzoo, faultSandbox, waitFor, type Proc } from './helpers.js';
import { redisMissing, testRedis, type TestRedis } from './redis.js';

const box = faultSandbox();
const missing = redisMissing();
if (missing && process.env.BEVZOO_REQUIRE_REDIS) throw new Error(`BEVZOO_REQUIRE_REDIS is set, but ${missing}`);

let redis: TestRedis;
beforeAll(async () => {
  if (!missing) redis = await testRedis(box.root);
}, 60_000);
afterAll(() => redis?.stop());

interface Row { id: string; metrics: Record<string, unknown>; train: { resumed_from?: number; last_loss: number } }
const rows = (out: string) => (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { rows: Row[] }).rows;

/** The pid of the parent of a process (Linux /proc), null when it is gone. */
function parentOf(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  } catch {
    return null;
  }
}

// The teacher's runtime is given: `auto` times both runtimes on each matrix's first distillation, and on a loaded
// machine the two matrices compared below can choose differently (onnxruntime-node and the engine round differently,
// and sixteen tiny steps amplify that into other metrics), so the comparison would not be of the same specs.
const matrixArgs = (dataDir: string) => [
  'matrix', '--preset', 'tiny', '--seeds', '1', '--steps', '16', '--teachers', 'centerpoint', '--students', 'bevdet', '--distillers', 'distillbev',
  '--student-set', 'train.checkpointEvery=2', '--teacher-set', 'train.checkpointEvery=2', '--teacher-runtime', 'onnx', '--data-dir', dataDir,
];

describe.skipIf(!!missing)(`the matrix on BullMQ and Redis${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('two workers, one killed mid-run, Redis restarted: the results of the local matrix, each written once', async () => {
    const local = join(box.root, 'local');
    const l = bevzoo([...matrixArgs(box.dataDir), '--out', local]);
    expect((await l.exited).code, l.output()).toBe(0);

    const out = join(box.root, 'queued');
    const name = `test-${process.pid}-${Date.now()}`;
    const q = [...matrixArgs(box.dataDir), '--out', out, '--queue', redis.url, '--queue-name', name];
    // Enqueued, then the coordinator stopped and started again: its second enqueueing adds nothing.
    const first = bevzoo(q);
    await waitFor(() => first.output().includes('3 added, 0 queued already'), 60_000, 'the runs enqueued', first);
    first.child.kill('SIGTERM');
    await first.exited;
    const coord = bevzoo(q);
    await waitFor(() => coord.output().includes('0 added, 3 queued already'), 60_000, 'the coordinator to find its runs queued', coord);

    const worker = () => bevzoo(['worker', '--queue', redis.url, '--queue-name', name, '--lock-seconds', '3']);
    const workers = [worker(), worker()];
    // Kill the worker that runs the baseline once the run has a checkpoint; then restart Redis.
    const run = join(out, 'runs', 'baseline-bevdet-seed0');
    const hasCheckpoint = () => existsSync(join(run, 'checkpoints')) && readdirSync(join(run, 'checkpoints')).some((f) => f.endsWith('.safetensors'));
    await waitFor(hasCheckpoint, 120_000, 'a checkpoint of baseline-bevdet-seed0', coord);
    const runPid = (JSON.parse(readFileSync(join(run, 'bevzoo.lock'), 'utf8')) as { pid: number }).pid;
    const victim = workers.find((w) => w.pid === parentOf(runPid));
    expect(victim, `the run's process ${runPid} is a child of a worker`).toBeDefined();
    const survivor = workers.find((w) => w !== victim)!;
    victim!.child.kill('SIGKILL');
    await victim!.exited;
    await redis.restart(1500);

    const done = await coord.exited;
    expect(done.code, coord.output()).toBe(0);
    const log = coord.output();
    expect(log).toContain('coordinator: Redis unreachable');
    expect(log).toContain('coordinator: Redis is back');
    expect(log).toMatch(/matrix: 3\/3 runs in/);
    expect(survivor.output()).toMatch(/worker: Redis unreachable[\s\S]*worker: Redis is back/);
    // The killed run was taken over by the other worker and resumed from its checkpoint.
    expect(survivor.output()).toContain('baseline-bevdet-seed0: starting on');
    const byId = new Map(rows(out).map((r) => [r.id, r]));
    expect(byId.get('baseline-bevdet-seed0')!.train.resumed_from).toBeGreaterThan(0);
    // The local matrix's results, run for run (same specs, seeds and engine threads; a resume is bitwise).
    const want = rows(local);
    expect([...byId.keys()].sort()).toEqual(want.map((r) => r.id).sort());
    for (const r of want) {
      expect(byId.get(r.id)!.metrics, r.id).toEqual(r.metrics);
      expect(byId.get(r.id)!.train.last_loss, r.id).toBe(r.train.last_loss);
    }

    // Following the finished matrix again changes no result.
    const stamps = want.map((r) => statSync(join(out, 'runs', r.id, 'result.json')).mtimeMs);
    const again = bevzoo(q);
    expect((await again.exited).code, again.output()).toBe(0);
    expect(again.output()).toMatch(/matrix: 3\/3 runs in [\d.]+ min \(3 resumed\)/);
    expect(want.map((r) => statSync(join(out, 'runs', r.id, 'result.json')).mtimeMs)).toEqual(stamps);
  }, 420_000);

  it('a run that keeps failing is retried, then reported with its error; the runs that need it are skipped', async () => {
    const out = join(box.root, 'failing');
    const name = `test-fail-${process.pid}-${Date.now()}`;
    // A learning rate of 1e30 makes the teacher's loss NaN at its second step: the run fails every time.
    const coord = bevzoo([...matrixArgs(box.dataDir), '--teacher-set', 'train.lr=1e30', '--attempts', '2', '--out', out, '--queue', redis.url, '--queue-name', name]);
    const w: Proc = bevzoo(['worker', '--queue', redis.url, '--queue-name', name, '--lock-seconds', '3']);
    const done = await coord.exited;
    expect(done.code, coord.output()).toBe(1);
    const log = coord.output();
    expect(log).toMatch(/FAILED teacher-centerpoint after 2 attempt\(s\): exit 1: bevzoo job: .*the loss became NaN at step 2/);
    expect(log).toContain('skipped distill-distillbev-centerpoint-bevdet-seed0: it needs a run that failed: teacher-centerpoint');
    expect(log).toMatch(/run 1 of 3 done: baseline-bevdet-seed0 \(\d+ s\)/); // the only run that finishes
    expect(w.output()).toMatch(/teacher-centerpoint: failed \(attempt 1 of 2, retried later\): exit 1: bevzoo job: .*the loss became NaN/);
    expect(w.output()).toMatch(/teacher-centerpoint: failed \(attempt 2 of 2\): exit 1/);
    const { meta } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { meta: { failed: Record<string, string>; skipped: string[] } };
    expect(meta.failed['teacher-centerpoint']).toMatch(/the loss became NaN/);
    expect(meta.skipped).toEqual(['distill-distillbev-centerpoint-bevdet-seed0']);
  }, 240_000);
});
