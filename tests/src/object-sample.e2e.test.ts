/**
 * GT-paste (`train.objectSample`) in runs: a LiDAR teacher run builds the database of the train split and trains
 * with it; a run whose batches carry camera images (or no points) refuses it and says why.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@bevzoo/teacher-centerpoint';
import '@bevzoo/student-bevdet';
import { prepareDataset, runJob } from '@bevzoo/runner';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-paste-'));
const choice = { synthPreset: 'tiny', dataDir: join(out, 'data') };
const quiet = () => {};

describe('GT-paste in runs', () => {
  it('a teacher run builds the database and trains with it; a camera run refuses it', async () => {
    const data = await prepareDataset(choice, quiet);
    const logs: string[] = [];
    const r = await runJob(
      { id: 't', role: 'teacher', teacher: { name: 'centerpoint', preset: 'tiny', overrides: { train: { objectSample: true, objectSampleUntil: 0.5 } } }, seed: 0, dataset: choice, outDir: join(out, 't'), steps: 4 },
      { log: (s) => logs.push(s), dataset: data },
    );
    const line = logs.find((l) => l.startsWith('GT-paste database:'));
    expect(line).toMatch(new RegExp(`^GT-paste database: [1-9]\\d* objects with ≥ 5 points from ${data.train.length} train samples in [\\d.]+ s \\(car \\d+, truck \\d+`));
    // 4 steps of 2 batches per epoch: half of them = epoch 0.
    expect(data.train.length).toBe(4);
    expect(logs).toContain('GT-paste in the first 1 epochs (steps 1–2), unaltered scenes after');
    expect(r.train.steps).toBe(4);
    expect(Number.isFinite(r.metrics.nd_score)).toBe(true);
    await expect(runJob(
      { id: 's', role: 'baseline', student: { name: 'bevdet', preset: 'tiny', overrides: { train: { objectSample: true } } }, seed: 0, dataset: choice, outDir: join(out, 's'), steps: 1 },
      { log: quiet, dataset: data },
    )).rejects.toThrow(/train\.objectSample of bevdet needs a LiDAR-only run .* this run's batches carry no points; set train\.objectSample=false/);
  });
});
