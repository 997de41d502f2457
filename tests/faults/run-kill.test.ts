/**
 * Fault: a run killed with SIGKILL mid-training (no handler runs). A rerun into the same folder takes the dead run's
 * lock over, removes the temporary file a kill during a checkpoint write leaves, resumes from the last checkpoint and
 * finishes; result.json's training figures cover both sessions.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bevzoo, faultSandbox, waitFor } from './helpers.js';

const box = faultSandbox();

const readJsonl = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; time: number });

describe('kill -9 of a run mid-training', () => {
  it('a rerun resumes from the last checkpoint and finishes; nothing the kill left trips it; the statistics cover both sessions', async () => {
    const out = join(box.root, 'run');
    const args = ['train', 'student', 'bevdet', '--preset', 'tiny', '--steps', '10', '--set', 'train.checkpointEvery=2', '--out', out, '--data-dir', box.dataDir];
    const first = bevzoo(args);
    const ckpt4 = join(out, 'checkpoints', 'step_0000004.safetensors');
    await waitFor(() => existsSync(ckpt4), 90_000, 'the checkpoint of step 4', first);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'result.json'))).toBe(false);
    // What the kill left: its lock (pid of the dead process) and, as a kill during a checkpoint write leaves it, a
    // temporary checkpoint file named by the dead writer's pid.
    expect(JSON.parse(readFileSync(join(out, 'bevzoo.lock'), 'utf8')).pid).toBe(first.pid);
    const temp = join(out, 'checkpoints', `step_0000006.safetensors.tmp-${first.pid}-x1y2z3`);
    writeFileSync(temp, readFileSync(ckpt4).subarray(0, 4096));
    const killedAt = readdirSync(join(out, 'checkpoints')).filter((n) => n.endsWith('.safetensors')).sort().at(-1)!;
    const resumeStep = Number(/step_(\d+)/.exec(killedAt)![1]);
    const firstSession = readJsonl(join(out, 'train.jsonl')).filter((r) => r.step <= resumeStep);

    const second = bevzoo(args);
    const done = await second.exited;
    expect(done.code, second.output()).toBe(0);
    const log = second.stderr();
    expect(log).toContain(`${out}: taking over the lock of bevzoo run baseline-bevdet-seed0 (pid ${first.pid}), which no longer runs`);
    expect(log).toContain(`removed 1 temporary file(s) an interrupted run left (${temp})`);
    expect(log).toContain(`resuming from step ${resumeStep}`);

    // Nothing stale remains: no lock, no temporary file; the last checkpoint only.
    expect(readdirSync(out).sort()).toEqual(['checkpoints', 'eval', 'model.safetensors', 'result.json', 'train.jsonl']);
    expect(readdirSync(join(out, 'checkpoints'))).toEqual(['step_0000010.safetensors']);
    // train.jsonl holds every step once, the first session's lines unchanged.
    const steps = readJsonl(join(out, 'train.jsonl'));
    expect(steps.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(steps.slice(0, resumeStep)).toEqual(firstSession);
    // result.json's training figures are those of the whole run, not of the last session.
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    expect(result.train).toMatchObject({ steps: 10, resumed_from: resumeStep, first_loss: steps[0]!.loss, last_loss: steps[9]!.loss });
    expect(result.train.seconds).toBeGreaterThanOrEqual(Math.floor(steps[9]!.time * 10) / 10);
    expect(result.train.seconds).toBeGreaterThan(firstSession.at(-1)!.time);
    expect(result.train.steps_per_s).toBeCloseTo(10 / result.train.seconds, 1);
  }, 180_000);
});
