/**
 * Packaged teacher weights and evaluation during training: a teacher trained once records its config and data in
 * its checkpoint; a teacher plugin shipping that file is then loaded instead of trained (same metrics, no new
 * weights), and trained again as soon as the config differs. `train.evalEvery` writes the validation curve.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { get, register, parseSafetensors } from '@bevzoo/core';
import { centerPointTeacher } from '@bevzoo/teacher-centerpoint';
import { bevdetStudent } from '@bevzoo/student-bevdet';
import { datasetId, prepareDataset, runJob, type JobSpec } from '@bevzoo/runner';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-packaged-'));
const choice = { synthPreset: 'tiny', dataDir: join(out, 'data') };
const quiet = () => {};

describe('packaged teacher weights', () => {
  it('records config and data in a trained checkpoint, with the validation curve', async () => {
    const data = await prepareDataset(choice, quiet);
    const spec: JobSpec = { id: 't', role: 'teacher', teacher: { name: 'centerpoint', preset: 'tiny', overrides: { train: { evalEvery: 2 } } }, seed: 0, dataset: choice, outDir: join(out, 't'), steps: 4 };
    const r = await runJob(spec, { log: quiet, dataset: data });
    const meta = parseSafetensors(readFileSync(r.checkpoint), r.checkpoint).metadata;
    expect(meta.data).toBe(datasetId(data));
    expect(meta.data).toContain('synthetic tiny seed 0');
    expect(meta.train_steps).toBe('4');
    expect(JSON.parse(meta.config!).train.evalEvery).toBe(2);
    // Evaluations at steps 2 and 4 (the final one), in the result and in evals.jsonl.
    expect(r.curve?.map((p) => p.step)).toEqual([2, 4]);
    expect(r.curve![1]!.nd_score).toBe(r.metrics.nd_score);
    expect(readFileSync(join(out, 't', 'evals.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);

    // Again into the same folder: fresh logs, not appended to the old ones.
    await runJob(spec, { log: quiet, dataset: data });
    expect(readFileSync(join(out, 't', 'evals.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([2, 4]);
    expect(readFileSync(join(out, 't', 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([1, 2, 3, 4]);
  });

  it('loads matching packaged weights instead of training, and trains when the config differs', async () => {
    const data = await prepareDataset(choice, quiet);
    const trained = await runJob(
      { id: 'a', role: 'teacher', teacher: { name: 'centerpoint', preset: 'tiny' }, seed: 0, dataset: choice, outDir: join(out, 'a') },
      { log: quiet, dataset: data },
    );
    if (!existsSync(join(out, 'a', 'model.safetensors'))) throw new Error('no checkpoint');
    const name = 'centerpoint-zoo-test';
    try {
      get('teacher', name);
    } catch {
      register({ ...centerPointTeacher, name, checkpoints: [{ preset: 'tiny', file: trained.checkpoint, command: 'bevzoo train teacher centerpoint --preset tiny' }] });
    }
    const logs: string[] = [];
    const loaded = await runJob(
      // `--steps` (a matrix's quick look) shortens the runs that train: the matching packaged teacher is still loaded.
      { id: 'b', role: 'teacher', teacher: { name, preset: 'tiny' }, seed: 0, dataset: choice, outDir: join(out, 'b'), usePackaged: true, steps: 3 },
      { log: (s) => logs.push(s), dataset: data },
    );
    expect(loaded.train.packaged?.file).toBe(trained.checkpoint);
    expect(loaded.checkpoint).toBe(trained.checkpoint);
    expect(existsSync(join(out, 'b', 'model.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'b', 'train.jsonl'))).toBe(false);
    expect(loaded.train.steps).toBe(trained.train.steps);
    expect(loaded.metrics.nd_score).toBe(trained.metrics.nd_score);
    expect(loaded.metrics.mean_ap).toBe(trained.metrics.mean_ap);
    expect(logs.join('\n')).toContain('loading it instead of training');

    logs.length = 0;
    const retrained = await runJob(
      { id: 'c', role: 'teacher', teacher: { name, preset: 'tiny', overrides: { head: { decode: { scoreThreshold: 0.2 } } } }, seed: 0, dataset: choice, outDir: join(out, 'c'), usePackaged: true },
      { log: (s) => logs.push(s), dataset: data },
    );
    expect(retrained.train.packaged).toBeUndefined();
    expect(existsSync(join(out, 'c', 'model.safetensors'))).toBe(true);
    expect(logs.join('\n')).toContain('trained with another config');
  });

  it("loads a student's starting weights (initWeights) before training, unless --scratch", async () => {
    const data = await prepareDataset(choice, quiet);
    const first = await runJob({ id: 's0', role: 'baseline', student: { name: 'bevdet', preset: 'tiny' }, seed: 0, dataset: choice, outDir: join(out, 's0'), steps: 2 }, { log: quiet, dataset: data });
    const name = 'bevdet-init-test';
    try {
      get('student', name);
    } catch {
      register({ ...bevdetStudent, name, initWeights: [{ preset: 'tiny', file: first.checkpoint, prefixes: ['img_backbone.'], description: 'a 2-step baseline' }] });
    }
    const logs: string[] = [];
    const r = await runJob({ id: 's1', role: 'baseline', student: { name, preset: 'tiny' }, seed: 0, dataset: choice, outDir: join(out, 's1'), steps: 1 }, { log: (s) => logs.push(s), dataset: data });
    const nBackbone = Object.keys(parseSafetensors(readFileSync(first.checkpoint), first.checkpoint).tensors).filter((k) => k.startsWith('img_backbone.')).length;
    expect(nBackbone).toBeGreaterThan(0);
    expect(r.train.init).toEqual({ file: first.checkpoint, tensors: nBackbone, description: 'a 2-step baseline' });
    expect(logs.join('\n')).toContain('img_backbone. start from');
    const scratch = await runJob({ id: 's2', role: 'baseline', student: { name, preset: 'tiny' }, seed: 0, dataset: choice, outDir: join(out, 's2'), steps: 1, scratch: true }, { log: quiet, dataset: data });
    expect(scratch.train.init).toBeUndefined();
    // Another config (wider context) cannot take the weights' shapes of the view transform: trains from scratch, says why.
    logs.length = 0;
    register({ ...bevdetStudent, name: `${name}-vt`, initWeights: [{ preset: 'tiny', file: first.checkpoint, prefixes: ['img_view_transformer.'], description: 'x' }] });
    const other = await runJob({ id: 's3', role: 'baseline', student: { name: `${name}-vt`, preset: 'tiny', overrides: { viewTransform: { contextChannels: 12 } } }, seed: 0, dataset: choice, outDir: join(out, 's3'), steps: 1 }, { log: (s) => logs.push(s), dataset: data });
    expect(other.train.init).toBeUndefined();
    expect(logs.join('\n')).toContain('do not fit this config');
  });
});
