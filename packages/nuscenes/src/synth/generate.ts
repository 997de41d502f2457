/**
 * generateSynthetic: write a complete nuScenes-format dataset (tables, LiDAR, images, instance segments,
 * Occ3D labels, map masks, splits, eval config) for a preset and seed. Scenes are generated in parallel by a
 * piscina pool of worker threads (one task per scene) when the built worker file exists, else in-process; the
 * output is byte-identical either way. The dataset is written to `<out>.tmp-<pid>` and renamed into place; an existing
 * complete dataset of the same preset, seed and generator version is reused.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import Piscina from 'piscina';
import { BevzooError, makeDir } from '@bevzoo/core';
import { TABLE_NAMES, type TableName } from '../tables.js';
import { SYNTH_GENERATOR_VERSION, SYNTH_VERSION, VISIBILITY, attributeRecords, categoryRecords, detectionConfig, sensorRecords } from './meta.js';
import { resolvePreset, type SynthPreset, type SynthPresetName } from './presets.js';
import { generateScene, type SceneJob, type SceneRecords } from './scene.js';
import type { SceneTask } from './worker.js';

export interface SynthProgress {
  /** Keyframes generated so far (phase 'generate'); total = all keyframes of the dataset. */
  done: number;
  total: number;
  phase: 'generate' | 'tables' | 'done' | 'reused';
}

export interface GenerateSyntheticOptions {
  /** Preset name or a full preset object (default 'small'). */
  preset?: SynthPresetName | SynthPreset;
  /** Seed of all randomness (default 0). */
  seed?: number;
  /** Dataset root to create (holds `<version>/`, samples/, sweeps/, segments/, gts/, maps/). */
  out: string;
  /** Worker threads (default: available cores; 1 = in-process). */
  workers?: number;
  onProgress?: (p: SynthProgress) => void;
  /** Replace an existing different dataset at `out` (default false: that is an error). */
  overwrite?: boolean;
}

export interface GenerateSyntheticResult {
  out: string;
  version: string;
  scenes: number;
  samples: number;
  /** True when an existing complete dataset was reused. */
  reused: boolean;
}

/** Contents of `<version>/bevzoo_synth.json`. */
export interface SynthManifest {
  generator: '@bevzoo/nuscenes synth';
  generatorVersion: string;
  version: string;
  seed: number;
  preset: SynthPreset;
  scenes: number;
  samples: number;
  splits: Record<string, string[]>;
}

/** A synthetic-dataset problem: what was expected, what was found, where. */
export class SynthError extends BevzooError {
  constructor(message: string, readonly where: string) {
    super(`${where}: ${message}`, { where });
  }
}

/** JSON array with one record per line (stable key order from the record literals). */
function jsonTable(records: readonly unknown[]): string {
  return records.length === 0 ? '[]\n' : `[\n${records.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;
}

function readManifest(out: string): SynthManifest | null {
  const p = join(out, SYNTH_VERSION, 'bevzoo_synth.json');
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as SynthManifest;
  } catch {
    return null;
  }
}

/** The built worker next to this module (dist/synth/worker.js for the bundle), or null when running from TS. */
function workerFile(): URL | null {
  let here: string;
  try {
    here = fileURLToPath(import.meta.url);
  } catch {
    return null;
  }
  const ext = extname(here);
  if (ext !== '.js' && ext !== '.mjs' && ext !== '.cjs') return null;
  for (const cand of [join(dirname(here), 'synth', `worker${ext}`), join(dirname(here), `worker${ext}`)]) {
    if (existsSync(cand)) return pathToFileURL(cand);
  }
  return null;
}

async function runScenes(jobs: SceneJob[], workers: number, onSample: () => void): Promise<SceneRecords[]> {
  const url = workerFile();
  if (!url || workers <= 1 || jobs.length <= 1) {
    const results: SceneRecords[] = new Array(jobs.length);
    for (let i = 0; i < jobs.length; i++) {
      results[i] = generateScene(jobs[i]!, onSample);
      await new Promise((r) => setImmediate(r));
    }
    return results;
  }
  const threads = Math.min(workers, jobs.length);
  const pool = new Piscina<SceneTask, SceneRecords>({ filename: url.href, minThreads: threads, maxThreads: threads });
  try {
    return await Promise.all(
      jobs.map(async (job) => {
        const { port1, port2 } = new MessageChannel();
        port1.on('message', onSample);
        try {
          return await pool.run({ job, progress: port2 }, { transferList: [port2] });
        } catch (e) {
          const cause = e as Error; // the task's error, or piscina's when the worker died
          const err = new SynthError(`scene generation failed: ${cause.message}`, `scene ${job.sceneIndex}`);
          if (cause.stack) err.stack = cause.stack;
          throw err;
        } finally {
          while (receiveMessageOnPort(port1)) onSample(); // keyframes posted before the result but not yet delivered
          port1.close();
        }
      }),
    );
  } finally {
    await pool.destroy(); // on a failure, the scenes still queued or running are dropped
  }
}

export async function generateSynthetic(opts: GenerateSyntheticOptions): Promise<GenerateSyntheticResult> {
  const preset = resolvePreset(opts.preset ?? 'small');
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new SynthError(`seed must be an integer in [0, 2^32), found ${seed}`, 'generateSynthetic');
  const out = resolve(opts.out);
  const total = preset.scenes * preset.samplesPerScene;
  const progress = (done: number, phase: SynthProgress['phase']) => opts.onProgress?.({ done, total, phase });

  const existing = readManifest(out);
  if (existing && existing.generatorVersion === SYNTH_GENERATOR_VERSION && existing.seed === seed && JSON.stringify(existing.preset) === JSON.stringify(preset)) {
    progress(total, 'reused');
    return { out, version: SYNTH_VERSION, scenes: existing.scenes, samples: existing.samples, reused: true };
  }
  const outExists = existsSync(out) && readdirSync(out).length > 0;
  if (outExists && !opts.overwrite) {
    const found = existing ? `a synthetic dataset (preset ${existing.preset?.name}, seed ${existing.seed}, generator ${existing.generatorVersion})` : 'a non-empty folder';
    throw new SynthError(`expected no dataset or one of preset ${preset.name} seed ${seed} generator ${SYNTH_GENERATOR_VERSION}, found ${found}; pass overwrite to replace it`, out);
  }

  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  await makeDir(join(tmp, SYNTH_VERSION)); // a FileError naming the folder that cannot be created (read-only, say)
  try {
    const jobs: SceneJob[] = Array.from({ length: preset.scenes }, (_, i) => ({ preset, seed, sceneIndex: i, root: tmp }));
    let done = 0;
    progress(0, 'generate');
    const workers = Math.max(1, Math.floor(opts.workers ?? (typeof availableParallelism === 'function' ? availableParallelism() : cpus().length)));
    const perScene = await runScenes(jobs, workers, () => progress(++done, 'generate'));

    progress(total, 'tables');
    const tables: Record<TableName, unknown[]> = {
      category: categoryRecords(seed), attribute: attributeRecords(seed), visibility: [...VISIBILITY], sensor: sensorRecords(seed),
      calibrated_sensor: [], ego_pose: [], log: [], scene: [], sample: [], sample_data: [], sample_annotation: [], instance: [], map: [],
    };
    for (const r of perScene) {
      tables.log.push(r.log);
      tables.scene.push(r.scene);
      tables.map.push(r.map);
      for (const name of ['calibrated_sensor', 'ego_pose', 'sample', 'sample_data', 'sample_annotation', 'instance'] as const) {
        for (const rec of r[name]) tables[name].push(rec);
      }
    }
    const tdir = join(tmp, SYNTH_VERSION);
    for (const name of TABLE_NAMES) writeFileSync(join(tdir, `${name}.json`), jsonTable(tables[name]));
    const names = perScene.map((r) => r.scene.name);
    const nTrain = preset.scenes - preset.valScenes;
    const splits = { synth_train: names.slice(0, nTrain), synth_val: names.slice(nTrain) };
    writeFileSync(join(tdir, 'splits.json'), `${JSON.stringify(splits, null, 2)}\n`);
    writeFileSync(join(tdir, 'detection_config.json'), `${JSON.stringify(detectionConfig(preset.classRangeScale), null, 2)}\n`);
    const manifest: SynthManifest = {
      generator: '@bevzoo/nuscenes synth', generatorVersion: SYNTH_GENERATOR_VERSION, version: SYNTH_VERSION, seed, preset,
      scenes: preset.scenes, samples: total, splits,
    };
    writeFileSync(join(tdir, 'bevzoo_synth.json'), `${JSON.stringify(manifest, null, 2)}\n`);

    if (existsSync(out)) {
      const old = `${out}.old-${process.pid}`;
      renameSync(out, old);
      renameSync(tmp, out);
      rmSync(old, { recursive: true, force: true });
    } else {
      mkdirSync(dirname(out), { recursive: true });
      renameSync(tmp, out);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  progress(total, 'done');
  return { out, version: SYNTH_VERSION, scenes: preset.scenes, samples: total, reused: false };
}
