import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createProgress } from '@bevzoo/core';
import { generateSynthetic, openNuScenes, SYNTH_GENERATOR_VERSION, SYNTH_PRESETS, type NuScenes, type SynthPresetName } from '@bevzoo/nuscenes';

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
