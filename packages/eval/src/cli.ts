/**
 * Entry points for the runner's `bevzoo eval det` / `bevzoo eval occ`: they take already parsed options, open the
 * dataset, evaluate and print the tables; the runner only parses flags.
 */
import { openNuScenes } from '@bevzoo/nuscenes';
import { evaluateDetection, formatDetectionSummary, type DetectionEvaluation } from './evaluate.js';
import { evaluateOccupancy, formatOccupancyTable, type OccupancyResult } from './occ.js';

export interface DetEvalCliOptions {
  dataroot: string;
  version: string;
  split: string;
  /** results.json path. */
  results: string;
  /** Optional config JSON (devkit format); default detection_cvpr_2019. */
  config?: string;
  /** Output folder for metrics_summary.json and metrics_details.json. */
  out: string;
  /** Print the devkit's progress lines too (default: only the tables). */
  verbose?: boolean;
  /** Edges (m) of the ego-distance bands of AP by distance (default 0, 20, 30, 40). */
  distanceBands?: readonly number[];
  log?: (line: string) => void;
}

/** `bevzoo eval det --dataroot <dir> --version <v> --split <s> --results <file> [--config <json>] --out <dir>` */
export async function runDetEvalCli(o: DetEvalCliOptions): Promise<DetectionEvaluation> {
  const log = o.log ?? ((l: string) => console.log(l));
  const nusc = await openNuScenes({ dataroot: o.dataroot, version: o.version, verbose: o.verbose });
  // verbose: the devkit's progress lines and the tables; otherwise the tables only.
  const r = evaluateDetection({ nusc, split: o.split, results: o.results, config: o.config, outDir: o.out, verbose: o.verbose, distanceBands: o.distanceBands, log });
  if (!o.verbose) log(formatDetectionSummary(r.summary));
  log(`Saved ${r.files!.summary} and ${r.files!.details}`);
  return r;
}

export interface OccEvalCliOptions {
  dataroot: string;
  version: string;
  split: string;
  gts: string;
  predictions: string;
  log?: (line: string) => void;
}

/** `bevzoo eval occ --dataroot <dir> --version <v> --split <s> --gts <dir> --predictions <dir>` */
export async function runOccEvalCli(o: OccEvalCliOptions): Promise<OccupancyResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const nusc = await openNuScenes({ dataroot: o.dataroot, version: o.version });
  const r = await evaluateOccupancy({ nusc, split: o.split, gts: o.gts, predictions: o.predictions });
  log(formatOccupancyTable(r));
  return r;
}
