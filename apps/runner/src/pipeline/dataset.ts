import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createProgress } from '@bevzoo/core';
import {
  generateSynthetic, openNuScenes, prepareVirtualPoints, synthesizeMasks, SYNTH_GENERATOR_VERSION, SYNTH_PRESETS, type NuScenes, type SynthPresetName,
} from '@bevzoo/nuscenes';

/** Which data a run uses: a real nuScenes-format folder, or the built-in synthetic dataset (generated on first use). */
export interface DatasetChoice {
  /** A nuScenes-format folder; absent = the synthetic dataset. */
  dataroot?: string;
  version?: string;
  trainSplit?: string;
  valSplit?: string;
  /** Occ3D gts folder (default `<dataroot>/gts` when it exists). */
  gts?: string;
  /** Detection eval config JSON (default `<dataroot>/<version>/detection_config.json` when it exists, else detection_cvpr_2019). */
  evalConfig?: string;
  /** Synthetic preset and seed (when no dataroot is given). */
  synthPreset?: string;
  synthSeed?: number;
  /** Where synthetic datasets are kept (default `.bevzoo/data` in the working directory). */
  dataDir?: string;
  /** Limit the number of train / val samples (quick runs). */
  maxTrain?: number;
  maxVal?: number;
}

export interface Dataset {
  /** What was chosen (synthetic preset and seed, sample limits). */
  choice: DatasetChoice;
  nusc: NuScenes;
  dataroot: string;
  version: string;
  synthetic: boolean;
  train: string[];
  val: string[];
  trainSplit: string;
  valSplit: string;
  evalConfig?: string;
  gts?: string;
}

/**
 * A name of the training data, recorded in checkpoints: equal names mean the same training samples (the synthetic
 * generator is byte-identical per preset, seed and generator version).
 */
export function datasetId(d: Dataset): string {
  const limit = d.choice.maxTrain ? `, first ${d.choice.maxTrain} samples` : '';
  if (d.synthetic) return `synthetic ${d.choice.synthPreset ?? 'small'} seed ${d.choice.synthSeed ?? 0} (generator ${SYNTH_GENERATOR_VERSION}), ${d.trainSplit}${limit}`;
  return `nuScenes ${d.version}, ${d.trainSplit}${limit}`;
}

/** The evaluation data as reports name it, e.g. "synthetic small, split synth_val" or "nuScenes v1.0-trainval, split val". */
export function describeDataset(d: Dataset): string {
  return `${d.synthetic ? `synthetic ${d.choice.synthPreset ?? 'small'}` : `nuScenes ${d.version}`}, split ${d.valSplit}`;
}

/** Where the synthetic dataset of a preset and seed lives. */
export function synthDataroot(choice: DatasetChoice): string {
  const preset = choice.synthPreset ?? 'small';
  return resolve(choice.dataDir ?? join(process.cwd(), '.bevzoo', 'data'), `synth-${preset}-seed${choice.synthSeed ?? 0}`);
}

/** Generate a synthetic dataset if it is not there yet (an existing one with the same preset and seed is reused), with a progress bar. */
export async function generateWithProgress(o: { preset: string; seed: number; out: string; workers?: number }, log: (s: string) => void = () => {}): Promise<{ dataroot: string; version: string; scenes: number; samples: number; reused: boolean }> {
  if (!(o.preset in SYNTH_PRESETS)) throw new Error(`unknown synthetic preset "${o.preset}"; presets: ${Object.keys(SYNTH_PRESETS).join(', ')}`);
  let bar: ReturnType<typeof createProgress> | undefined;
  const t0 = Date.now();
  const res = await generateSynthetic({
    preset: o.preset as SynthPresetName,
    seed: o.seed,
    out: o.out,
    workers: o.workers,
    onProgress: ({ done, total, phase }) => {
      if (phase !== 'generate') return;
      bar ??= createProgress({ total, label: `synthetic dataset (${o.preset})`, unit: 'samples' });
      bar.update(done);
    },
  }).finally(() => bar?.done());
  if (!res.reused) log(`generated the synthetic dataset (${o.preset}, seed ${o.seed}) at ${res.out}: ${res.scenes} scenes, ${res.samples} samples in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { dataroot: res.out, version: res.version, scenes: res.scenes, samples: res.samples, reused: res.reused };
}

export async function prepareDataset(choice: DatasetChoice, log: (s: string) => void = () => {}): Promise<Dataset> {
  let dataroot: string, version: string;
  const synthetic = !choice.dataroot;
  if (synthetic) ({ dataroot, version } = await generateWithProgress({ preset: choice.synthPreset ?? 'small', seed: choice.synthSeed ?? 0, out: synthDataroot(choice) }, log));
  else {
    dataroot = resolve(choice.dataroot!);
    version = choice.version ?? 'v1.0-trainval';
  }
  const nusc = await openNuScenes({ dataroot, version });
  const trainSplit = choice.trainSplit ?? (synthetic ? 'synth_train' : 'train');
  const valSplit = choice.valSplit ?? (synthetic ? 'synth_val' : 'val');
  let train = nusc.sampleTokensForSplit(trainSplit);
  let val = nusc.sampleTokensForSplit(valSplit);
  if (choice.maxTrain) train = train.slice(0, choice.maxTrain);
  if (choice.maxVal) val = val.slice(0, choice.maxVal);
  const cfg = choice.evalConfig ?? join(dataroot, version, 'detection_config.json');
  const gts = choice.gts ?? join(dataroot, 'gts');
  return {
    choice, nusc, dataroot, version, synthetic, train, val, trainSplit, valSplit,
    evalConfig: existsSync(cfg) ? cfg : undefined,
    gts: existsSync(gts) ? gts : undefined,
  };
}

/**
 * What `data.virtualPoints` (MVP) needs before any loader runs: the 2-D instance masks (the synthetic dataset: made by
 * `synthesizeMasks`, idempotent; real nuScenes: `<dataroot>/masks` from the user's segmenter must be there) and the
 * virtual-point cache of `sampleTokens` with `sweeps` sweeps (`prepareVirtualPoints`, idempotent), each with a
 * progress bar and a log line.
 */
export async function prepareVirtualPointsFor(data: Dataset, sampleTokens: readonly string[], sweeps: number, log: (s: string) => void = () => {}): Promise<void> {
  const tokens = [...new Set(sampleTokens)];
  if (data.synthetic) {
    const t0 = performance.now();
    let maskBar: ReturnType<typeof createProgress> | undefined;
    const m = await synthesizeMasks(data.nusc, {
      onProgress: (done, total) => {
        maskBar ??= createProgress({ total, label: 'instance masks', unit: 'images' });
        maskBar.update(done);
      },
    }).finally(() => maskBar?.done());
    if (m.written > 0) log(`instance masks: ${m.written} images written, ${m.skipped} kept, in ${((performance.now() - t0) / 1000).toFixed(1)} s (${m.dir})`);
  } else {
    const dir = join(data.dataroot, 'masks');
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new Error(`data.virtualPoints (MVP) needs 2-D instance masks in ${dir}: masks/<CHANNEL>/<image name>.png (16-bit instance ids) + .json `
        + `({"instances": [{"id", "label", "score"}]}) per camera image, from a 2-D instance segmenter; see "2-D instance masks" in the @bevzoo/nuscenes README`);
  }
  let bar: ReturnType<typeof createProgress> | undefined;
  const r = await prepareVirtualPoints(data.nusc, {
    sampleTokens: tokens, sweeps,
    onProgress: (done, total) => {
      bar ??= createProgress({ total, label: 'virtual points', unit: 'LiDAR files' });
      bar.update(done);
    },
  }).finally(() => bar?.done());
  log(`virtual points: ${r.files} LiDAR files of ${tokens.length} samples (${r.written} computed, ${r.skipped} cached; ${r.cameras} camera images, `
    + `${r.painted} painted and ${r.virtual} virtual points) in ${r.seconds.toFixed(1)} s (${r.dir})`);
}
