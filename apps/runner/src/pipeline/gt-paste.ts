/** GT-paste (mmdet3d ObjectSample) for a run that trains with `train.objectSample`: the database of the training split. */
import { createProgress, type DataSettings, type TrainSettings } from '@bevzoo/core';
import { buildObjectDatabase, objectDatabaseSummary, type ObjectDatabase } from '@bevzoo/nuscenes';
import type { Dataset } from './dataset.js';
import type { JobSpec } from './job.js';

/** Build the database of the training split for a run whose batches carry no images; refuse one that feeds cameras. */
export async function objectDatabase(spec: JobSpec, name: string, need: DataSettings, data: Dataset, log: (s: string) => void): Promise<ObjectDatabase> {
  if (!need.points || need.images)
    throw new Error(`job ${spec.id}: train.objectSample of ${name} needs a LiDAR-only run (GT-paste adds objects to the points, not to `
      + `camera images), but ${spec.role === 'distill' ? 'a distillation run feeds camera images to the student' : `this run's batches carry ${need.points ? 'camera images' : 'no points'}`}; set train.objectSample=false`);
  const t0 = performance.now();
  const bar = createProgress({ total: data.train.length, label: 'GT-paste database', unit: 'samples' });
  const db = await buildObjectDatabase(data.nusc, data.train, { sweeps: need.sweeps, virtualPoints: need.virtualPoints, onProgress: () => bar.tick(1) }).finally(() => bar.done());
  log(`GT-paste database: ${db.byLabel.reduce((a, e) => a + e.length, 0)} objects with ≥ ${db.minPoints} points${db.pointFeatures ? ` (${db.pointFeatures} values each, virtual points included)` : ''} from ${db.samples} train samples in ${((performance.now() - t0) / 1000).toFixed(1)} s (${objectDatabaseSummary(db)})`);
  return db;
}

/** The loader's `objectSample` option for a run (undefined when it does not paste), and a log line on the fade. */
export async function objectSampleOption(spec: JobSpec, name: string, train: TrainSettings, need: DataSettings, data: Dataset, log: (s: string) => void): Promise<{ database: ObjectDatabase; epochs: number } | undefined> {
  if (!train.augment || !train.objectSample) return undefined;
  const batchesPerEpoch = Math.floor(data.train.length / train.batchSize); // the training loader drops the last partial batch
  const epochs = Math.ceil((train.objectSampleUntil * train.steps) / batchesPerEpoch);
  const database = await objectDatabase(spec, name, need, data, log);
  if (train.objectSampleUntil < 1) log(`GT-paste in the first ${epochs} epochs (steps 1–${Math.min(train.steps, epochs * batchesPerEpoch)}), unaltered scenes after`);
  return { database, epochs };
}
