import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../rng.js';
import { loadCheckpoint } from './checkpoint.js';
import { readSafetensors } from './safetensors.js';
import { Trainer, trainLoop, type StepContext, type StepRecord, type TrainOptions } from './trainer.js';
import type { TrainableModel } from './types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A linear layer with a step-counter buffer (like BatchNorm's num_batches_tracked). */
class Tiny implements TrainableModel {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  readonly count: tf.Variable;
  training = false;
  constructor(seed: number) {
    const rng = createRng(seed);
    this.w = tf.variable(tf.tensor2d(Array.from({ length: 6 }, () => rng.normal(0, 0.5)), [3, 2]), true);
    this.b = tf.variable(tf.tensor1d([rng.normal(), rng.normal()]), true);
    this.count = tf.variable(tf.scalar(0, 'int32'), false);
  }
  namedParameters(): [string, tf.Variable][] {
    return [['fc.weight', this.w], ['fc.bias', this.b]];
  }
  stateDict(): Record<string, tf.Tensor> {
    return { 'fc.weight': this.w, 'fc.bias': this.b, 'fc.count': this.count };
  }
  loadStateDict(d: Record<string, tf.Tensor>): void {
    for (const [k, v] of Object.entries(this.stateDict())) (v as tf.Variable).assign(d[k]!);
  }
  train(on = true): void {
    this.training = on;
  }
  dispose(): void {
    tf.dispose([this.w, this.b, this.count]);
  }
}

interface Batch {
  x: number[];
  y: number[];
}

const data: Batch[] = Array.from({ length: 3 }, (_, i) => {
  const rng = createRng(100 + i);
  return { x: Array.from({ length: 12 }, () => rng.normal()), y: Array.from({ length: 8 }, () => rng.normal()) };
});

function lossFor(model: Tiny) {
  return (batch: Batch, ctx: StepContext) => {
    const noise = 1 + 0.05 * ctx.rng.normal(); // per-step randomness must survive a resume
    model.count.assign(tf.add(model.count, tf.scalar(1, 'int32')));
    const pred = tf.add(tf.matMul(tf.tensor2d(batch.x, [4, 3]), model.w), model.b);
    const mse = tf.mul(tf.mean(tf.square(tf.sub(pred, tf.tensor2d(batch.y, [4, 2])))), noise) as tf.Scalar;
    const l2 = tf.mul(tf.sum(tf.square(model.w)), 1e-3) as tf.Scalar;
    return { total: tf.add(mse, l2) as tf.Scalar, parts: { mse, l2 } };
  };
}

function common(model: Tiny): TrainOptions<Batch> {
  return {
    model,
    lossFn: lossFor(model),
    batches: data,
    steps: 10,
    optimizer: { lr: 0.05, weightDecay: 0.05 },
    schedule: { type: 'cosine', warmup: { steps: 3 } },
    clip: 0.5,
    ema: { decay: 0.9 },
    seed: 7,
    config: { name: 'tiny' },
    progress: false,
  };
}

const values = (m: Tiny) => [Array.from(m.w.dataSync()), Array.from(m.b.dataSync()), Array.from(m.count.dataSync())];
const readLog = (f: string): StepRecord[] => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('trainLoop', () => {
  it('resumes bitwise: N steps straight = k steps, checkpoint, fresh model + trainer, N − k more', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bevzoo-train-'));
    const a = new Tiny(1);
    const straight = await trainLoop({ ...common(a), log: path.join(dir, 'a.jsonl') });
    expect(straight.step).toBe(10);

    const b = new Tiny(1); // same start as the straight run
    const ckdir = path.join(dir, 'ck');
    const first = await trainLoop({ ...common(b), until: 4, checkpoint: { dir: ckdir, every: 4 }, log: path.join(dir, 'b.jsonl') });
    expect(first.step).toBe(4);
    expect(first.checkpoints).toEqual([path.join(ckdir, 'step_0000004.safetensors')]);
    b.dispose();
    tf.dispose(Object.values(first.ema!));

    const timeAt4 = readLog(path.join(dir, 'b.jsonl')).find((r) => r.step === 4)!.time; // seconds trained up to the checkpoint
    const c = new Tiny(3); // different initial weights: everything must come from the checkpoint
    expect(values(c)).not.toEqual(values(a));
    // The interrupted run had logged a step after its checkpoint, and a line cut short: both are dropped on resume.
    appendFileSync(path.join(dir, 'b.jsonl'), '{"step":5,"loss":1}\n{"step":6,"lo');
    // It was killed while writing its next checkpoint: the temporary file of that dead process is removed.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(path.join(ckdir, `step_0000008.safetensors.tmp-${deadPid}-abc123`), 'half a checkpoint');
    const second = await trainLoop({ ...common(c), resume: 'latest', checkpoint: { dir: ckdir, every: 100, keepLast: 1 }, log: path.join(dir, 'b.jsonl') });
    expect(second.step).toBe(10);
    expect(second.epoch).toBe(3);
    // The run's statistics cover both sessions.
    expect(second.resumedFrom).toBe(4);
    expect([second.firstLoss, second.lastLoss]).toEqual([straight.firstLoss, straight.lastLoss]);
    expect(second.firstLoss).toBe(first.firstLoss);
    expect(second.seconds).toBeGreaterThan(timeAt4);
    expect(values(c)).toEqual(values(a)); // bitwise
    expect(Array.from(second.ema!['fc.weight']!.dataSync())).toEqual(Array.from(straight.ema!['fc.weight']!.dataSync()));
    expect(readdirSync(ckdir)).toEqual(['step_0000010.safetensors']);

    const la = readLog(path.join(dir, 'a.jsonl')), lb = readLog(path.join(dir, 'b.jsonl'));
    expect(lb.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(lb.map((r) => [r.loss, r.lr, r.grad_norm, r.epoch, r.losses])).toEqual(la.map((r) => [r.loss, r.lr, r.grad_norm, r.epoch, r.losses]));
    expect(Object.keys(la[0]!).sort()).toEqual(['epoch', 'grad_norm', 'loss', 'losses', 'lr', 'phases', 'step', 'step_time', 'time']);
    // The phases split the step: every one ≥ 0, and those inside the step add up to its time (to the rounding).
    for (const r of la) {
      const p = r.phases;
      expect(Object.keys(p)).toEqual(['data', 'teacher', 'forward', 'distill', 'backward', 'optimizer']);
      for (const v of Object.values(p)) expect(v).toBeGreaterThanOrEqual(0);
      expect(Math.abs(p.teacher + p.forward + p.distill + p.backward + p.optimizer - r.step_time)).toBeLessThan(1e-4);
      expect(p.forward).toBeGreaterThan(0);
      expect(p.distill).toBe(0); // no distiller here
    }
    expect(Object.keys(la[0]!.losses)).toEqual(['mse', 'l2']);
    expect(la[0]!.lr).toBeCloseTo(0.05 / 3, 10);
    expect(la.map((r) => r.epoch)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    // A fresh run into an old log starts the log afresh.
    const again = new Tiny(1);
    await trainLoop({ ...common(again), log: path.join(dir, 'a.jsonl') });
    expect(readLog(path.join(dir, 'a.jsonl')).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    again.dispose();

    // The checkpoint's contents: model, optimizer moments, EMA, metadata.
    const { tensors, metadata } = await readSafetensors(path.join(ckdir, 'step_0000010.safetensors'));
    expect(Object.keys(tensors).sort()).toEqual(['ema.fc.bias', 'ema.fc.weight', 'fc.bias', 'fc.count', 'fc.weight', 'optimizer.exp_avg.fc.bias', 'optimizer.exp_avg.fc.weight', 'optimizer.exp_avg_sq.fc.bias', 'optimizer.exp_avg_sq.fc.weight']);
    expect(JSON.parse(metadata.trainer!)).toMatchObject({ step: 10, epoch: 3, stepInEpoch: 1, seed: 7, rng: { seed: 7, step: 10 } });
    expect(JSON.parse(metadata.optimizer!)).toMatchObject({ type: 'AdamW', step: 10 });
    expect(JSON.parse(metadata.config!)).toEqual({ name: 'tiny' });
    tf.dispose(Object.values(tensors));
    const d = new Tiny(4);
    const meta = await loadCheckpoint(path.join(ckdir, 'step_0000010.safetensors'), { model: d });
    expect(values(d)).toEqual(values(a));
    expect(meta.trainer!.step).toBe(10);

    for (const r of [straight, second]) tf.dispose(Object.values(r.ema!));
    for (const m of [a, c, d]) m.dispose();
  });

  it('a training step does not grow tf.memory().numTensors', () => {
    const m = new Tiny(5);
    const trainer = new Trainer(common(m));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) trainer.trainStep(data[i]!);
    expect(tf.memory().numTensors).toBe(before);
    expect(trainer.step).toBe(3);
    trainer.dispose();
    m.dispose();
  });

  it('awaits an asynchronous prepare before each step (a teacher on onnxruntime, say), and leaks no tensor', async () => {
    /** A target whose targets come from an asynchronous "teacher": prepared before the step, freed after it. */
    class AsyncTarget extends Tiny {
      held: { batch: Batch; y: tf.Tensor2D } | null = null;
      calls: string[] = [];
      async prepare(batch: Batch): Promise<void> {
        await new Promise((res) => setTimeout(res, 5));
        this.calls.push('prepare');
        this.releaseBatch();
        this.held = { batch, y: tf.tensor2d(batch.y, [4, 2]) };
      }
      prepareBatch(batch: Batch): void {
        this.calls.push('prepareBatch');
        if (this.held?.batch !== batch) throw new Error('not prepared');
      }
      trainingLoss(batch: Batch) {
        if (this.held?.batch !== batch) throw new Error('not prepared');
        this.calls.push('loss');
        const pred = tf.add(tf.matMul(tf.tensor2d(batch.x, [4, 3]), this.w), this.b);
        const total = tf.mean(tf.square(tf.sub(pred, this.held.y))) as tf.Scalar;
        return { total, parts: {} };
      }
      releaseBatch(): void {
        this.held?.y.dispose();
        this.held = null;
      }
    }
    const m = new AsyncTarget(10);
    const counts: number[] = [];
    const before = tf.memory().numTensors;
    const opts = { ...common(m), lossFn: undefined, ema: undefined, steps: 4, onStep: () => void counts.push(tf.memory().numTensors) };
    const trainer = new Trainer<Batch>(opts);
    const r = await trainer.run();
    expect(r.step).toBe(4);
    expect(m.calls.slice(0, 6)).toEqual(['prepare', 'prepareBatch', 'loss', 'prepare', 'prepareBatch', 'loss']);
    expect(m.held).toBeNull();
    expect(new Set(counts).size).toBe(1); // the same number of tensors after every step
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // trainStep alone does not prepare: the target says so; trainStepAsync does.
    const t2 = new Trainer<Batch>({ ...opts, onStep: undefined });
    expect(() => t2.trainStep(data[0]!)).toThrow(/not prepared/);
    expect((await t2.trainStepAsync(data[1]!)).step).toBe(1);
    t2.dispose();
    m.dispose();
  });

  it('stops when a one-shot generator runs out; epoch functions get the epoch', async () => {
    const m = new Tiny(6);
    function* three() {
      yield* data;
    }
    const r = await trainLoop({ ...common(m), batches: three(), ema: undefined });
    expect(r).toMatchObject({ step: 3, exhausted: true });
    const seen: number[] = [];
    const r2 = await trainLoop({ ...common(m), ema: undefined, steps: 5, batches: (epoch) => { seen.push(epoch); return data.slice(0, 2); } });
    expect(r2).toMatchObject({ step: 5, epoch: 2, exhausted: false });
    expect(seen).toEqual([0, 1, 2]);
    m.dispose();
  });

  it('leaves the time spent in onStep (an evaluation, say) out of the training time', async () => {
    const m = new Tiny(9);
    const t0 = performance.now();
    const times: number[] = [];
    const r = await trainLoop({ ...common(m), ema: undefined, steps: 3, onStep: async (rec) => { times.push(rec.time); await new Promise((res) => setTimeout(res, 200)); } });
    const wall = (performance.now() - t0) / 1000;
    expect(r.seconds).toBeLessThan(wall - 0.5);
    expect(times[2]! - times[0]!).toBeLessThan(0.2);
    expect(r.firstLoss).toBeGreaterThan(0);
    m.dispose();
  });

  it('shows progress as plain lines when the stream is not a TTY', async () => {
    const m = new Tiny(8);
    const lines: string[] = [];
    await trainLoop({ ...common(m), ema: undefined, steps: 3, progress: { stream: { write: (s: string) => lines.push(s), isTTY: false }, intervalMs: 0 } });
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines.at(-1)).toMatch(/^train 3\/3 \(100%\).*steps\/s.*eta.* step 3\/3 loss \d/);
    m.dispose();
  });

  it('says what is wrong with a bad loss', () => {
    const m = new Tiny(7);
    const trainer = new Trainer({ ...common(m), lossFn: () => ({ total: tf.ones([2]) as unknown as tf.Scalar, parts: {} }) });
    expect(() => trainer.trainStep(data[0]!)).toThrow(/lossFn must return \{ total: scalar tensor \}, found a tensor of shape \[2\]/);
    trainer.dispose();
    m.dispose();
  });
});
