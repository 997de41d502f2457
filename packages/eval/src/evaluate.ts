/**
 * DetectionEval end to end: ground truth from the nuScenes reader (the devkit's load_gt), predictions from
 * results.json, add_center_dist + filter_eval_boxes on both, evaluate, write metrics_summary.json and
 * metrics_details.json.
 */
import { join } from 'node:path';
import {
  categoryToDetectionName,
  LIDAR_CHANNEL,
  OFFICIAL_SPLIT_NAMES,
  type TableName,
  type TableRecords,
} from '@bevzoo/nuscenes';
import type { EvalBox, EvalBoxes, RawBox } from './box.js';
import { defaultDetectionConfig, loadDetectionConfig, type DetectionConfig } from './config.js';
import { DEFAULT_DISTANCE_BANDS, distanceBands as makeDistanceBands, distanceSummary, formatDistanceTable, type ApByDistance } from './distance.js';
import { EvalInputError, ResultsValidationError } from './errors.js';
import { addCenterDist, filterEvalBoxes, type FilterStats } from './filter.js';
import { writeJsonFile } from './json.js';
import { computeDetectionMetrics, type DetectionMetricDataList, type DetectionMetrics, type MetricsSummary } from './metrics.js';
import { checkBoxCount, checkSampleSet, parseResultBox, readResults, type DetectionResults } from './results.js';
import type { AccumulateStats } from './algo.js';

/** What the evaluation reads from the database; the reader's NuScenes class provides it. */
export interface DetectionDb {
  get<K extends TableName>(name: K, token: string): TableRecords[K];
  table<K extends TableName>(name: K): readonly TableRecords[K][];
  /** Scene names of a split. */
  split(name: string): string[];
  /** The devkit's box_velocity (global vx, vy, vz; NaN when unknown). */
  boxVelocity(annToken: string): readonly number[];
}

export const BICYCLE_RACK = 'static_object.bicycle_rack';

/** Sample tokens of a split, in the order of sample.json (the devkit's load_gt order). */
export function splitSampleTokens(nusc: DetectionDb, split: string): string[] {
  const scenes = new Set(nusc.split(split));
  const sceneNames = new Map<string, string>();
  for (const s of nusc.table('scene')) sceneNames.set(s.token, s.name);
  const out: string[] = [];
  for (const s of nusc.table('sample')) if (scenes.has(sceneNames.get(s.scene_token) ?? '')) out.push(s.token);
  if (out.length === 0) {
    throw new EvalInputError(`samples in split ${split}`, 'none (no scene of the split is in this database)', { field: 'split' });
  }
  return out;
}

/** The ego translation (global) of a sample's LIDAR_TOP keyframe. */
export function lidarEgoTranslation(nusc: DetectionDb, sampleToken: string): readonly number[] {
  const sample = nusc.get('sample', sampleToken);
  const sd = sample.data?.[LIDAR_CHANNEL];
  if (!sd) throw new EvalInputError(`a ${LIDAR_CHANNEL} keyframe`, 'none', { sampleToken, field: `data.${LIDAR_CHANNEL}` });
  return nusc.get('ego_pose', nusc.get('sample_data', sd).ego_pose_token).translation;
}

/** The sample's static_object.bicycle_rack boxes. */
export function bicycleRacks(nusc: DetectionDb, sampleToken: string): RawBox[] {
  const out: RawBox[] = [];
  for (const t of nusc.get('sample', sampleToken).anns ?? []) {
    const a = nusc.get('sample_annotation', t);
    if (a.category_name === BICYCLE_RACK) out.push({ translation: a.translation, size: a.size, rotation: a.rotation });
  }
  return out;
}

/**
 * The devkit's load_gt for DetectionBox: per sample (in the given order), its annotations in sample.anns order
 * mapped to detection classes (others skipped); attribute from attribute_tokens (none → "", more than one →
 * error); velocity = box_velocity[:2]; num_pts = num_lidar_pts + num_radar_pts; score −1.
 */
export function loadGroundTruth(nusc: DetectionDb, sampleTokens: readonly string[]): EvalBoxes {
  const attrNames = new Map<string, string>();
  for (const a of nusc.table('attribute')) attrNames.set(a.token, a.name);
  const out: EvalBoxes = new Map();
  for (const token of sampleTokens) {
    const boxes: EvalBox[] = [];
    for (const annToken of nusc.get('sample', token).anns ?? []) {
      const a = nusc.get('sample_annotation', annToken);
      const name = categoryToDetectionName(a.category_name ?? '');
      if (name === null) continue;
      let attribute = '';
      if (a.attribute_tokens.length === 1) attribute = attrNames.get(a.attribute_tokens[0]!) ?? '';
      else if (a.attribute_tokens.length > 1) {
        throw new EvalInputError('at most one attribute per GT annotation', `${a.attribute_tokens.length} attribute tokens`, {
          sampleToken: token,
          field: `sample_annotation ${annToken}.attribute_tokens`,
        });
      }
      const v = nusc.boxVelocity(annToken);
      boxes.push({
        sample_token: token,
        translation: [a.translation[0], a.translation[1], a.translation[2]],
        size: [a.size[0], a.size[1], a.size[2]],
        rotation: [a.rotation[0], a.rotation[1], a.rotation[2], a.rotation[3]],
        velocity: [v[0]!, v[1]!],
        detection_name: name,
        detection_score: -1,
        attribute_name: attribute,
        ego_translation: [0, 0, 0],
        num_pts: a.num_lidar_pts + a.num_radar_pts,
      });
    }
    out.set(token, boxes);
  }
  return out;
}

/**
 * Checks an in-memory submission as results.json is checked (parseResultBox on every box): the sample set (exactly
 * the evaluated samples, when given), box count, class, attribute, finite values, positive sizes, non-zero
 * rotations. Throws ResultsValidationError.
 */
export function validateEvalBoxes(results: EvalBoxes, config: DetectionConfig, sampleTokens?: readonly string[]): void {
  checkSampleSet([...results.keys()], { sampleTokens });
  for (const [token, list] of results) {
    checkBoxCount(list.length, token, { maxBoxesPerSample: config.max_boxes_per_sample });
    list.forEach((b, i) => parseResultBox(b, token, i));
  }
}

export interface EvaluateDetectionOptions {
  nusc: DetectionDb;
  /** A split name (scenes from the reader: splits.json first, then the devkit's predefined splits)… */
  split?: string;
  /** …or explicit sample tokens (then extra result keys are dropped, like the devkit's custom splits). */
  sampleTokens?: readonly string[];
  /** A results.json path or parsed results. Parsed results are validated; their boxes get ego_translation set. */
  results: string | DetectionResults;
  /** A config, a config JSON path, or the default detection_cvpr_2019. */
  config?: DetectionConfig | string;
  /** Where to write metrics_summary.json and metrics_details.json (skipped when absent). */
  outDir?: string;
  /** Print the devkit's progress lines and the summary tables. */
  verbose?: boolean;
  /** Output sink for verbose printing (default console.log). */
  log?: (line: string) => void;
  /** Work counters of accumulate. */
  stats?: AccumulateStats;
  /**
   * Edges (m) of the ego-distance bands of AP by distance (default [0, 20, 30, 40]: [0, 20), [20, 30), [30, 40),
   * [40, ∞)); false skips it. See distance.ts for the definition.
   */
  distanceBands?: readonly number[] | false;
}

export interface DetectionEvaluation {
  metrics: DetectionMetrics;
  metricDataList: DetectionMetricDataList;
  /** AP per class and ego-distance band (absent with distanceBands: false); also in summary. */
  byDistance?: ApByDistance;
  /** metrics_summary.json content (with meta). */
  summary: MetricsSummary;
  sampleTokens: string[];
  filter: { gt: FilterStats; pred: FilterStats };
  files?: { summary: string; details: string };
}

/** Evaluate a detection submission the way the devkit's DetectionEval.main() does (without plots). */
export function evaluateDetection(opts: EvaluateDetectionOptions): DetectionEvaluation {
  const log = opts.log ?? ((l: string) => console.log(l));
  const say = opts.verbose ? log : () => {};
  const config = typeof opts.config === 'string' ? loadDetectionConfig(opts.config) : (opts.config ?? defaultDetectionConfig());
  const { nusc } = opts;
  const distanceBands = opts.distanceBands === false ? undefined : (opts.distanceBands ?? DEFAULT_DISTANCE_BANDS);
  if (distanceBands) makeDistanceBands(distanceBands); // bad edges fail before anything is read
  let sampleTokens: string[];
  /** The devkit keeps the results' order for predefined splits and uses the split's order otherwise. */
  let splitOrder: boolean;
  if (opts.sampleTokens) {
    sampleTokens = [...opts.sampleTokens];
    splitOrder = true;
  } else if (opts.split) {
    sampleTokens = splitSampleTokens(nusc, opts.split);
    splitOrder = !(OFFICIAL_SPLIT_NAMES as readonly string[]).includes(opts.split);
  } else {
    throw new EvalInputError('a split or sampleTokens', 'neither', { field: 'split' });
  }

  say('Initializing nuScenes detection evaluation');
  let res: DetectionResults;
  if (typeof opts.results === 'string') {
    res = readResults(opts.results, { maxBoxesPerSample: config.max_boxes_per_sample, sampleTokens });
    say(`Loaded results from ${opts.results}. Found detections for ${res.results.size} samples.`);
  } else {
    validateEvalBoxes(opts.results.results, config, sampleTokens);
    res = opts.results;
  }
  if (splitOrder) {
    // The devkit's load_prediction_of_sample_tokens: the split's samples in the split's order (which is also the
    // prediction order that breaks score ties).
    const all = res.results;
    res = { meta: res.meta, results: new Map(sampleTokens.map((t) => [t, all.get(t)!])) };
  }
  say(`Loading annotations for ${opts.split ?? `${sampleTokens.length} samples`}`);
  const gtAll = loadGroundTruth(nusc, sampleTokens);
  say(`Loaded ground truth annotations for ${gtAll.size} samples.`);

  const egoCache = new Map<string, readonly number[]>();
  const ego = (t: string) => {
    let e = egoCache.get(t);
    if (!e) egoCache.set(t, (e = lidarEgoTranslation(nusc, t)));
    return e;
  };
  const racks = (t: string) => bicycleRacks(nusc, t);
  const predStats = {} as FilterStats, gtStats = {} as FilterStats;
  const pred = filterEvalBoxes(addCenterDist(res.results, ego), config.class_range, racks, predStats);
  const gt = filterEvalBoxes(addCenterDist(gtAll, ego), config.class_range, racks, gtStats);
  for (const [what, s] of [['predictions', predStats], ['ground truth annotations', gtStats]] as const) {
    say(`Filtering ${what}`);
    say(`=> Original number of boxes: ${s.total}`);
    say(`=> After distance based filtering: ${s.afterDistance}`);
    say(`=> After LIDAR and RADAR points based filtering: ${s.afterPoints}`);
    say(`=> After bike rack filtering: ${s.afterBikeRack}`);
  }

  say('Accumulating metric data...');
  const { metrics, metricDataList, byDistance } = computeDetectionMetrics(gt, pred, config, { stats: opts.stats, distanceBands });
  const summary: MetricsSummary = { ...metrics.serialize(), ...(byDistance && distanceSummary(byDistance)), meta: { ...res.meta } };
  let files: DetectionEvaluation['files'];
  if (opts.outDir) {
    files = { summary: join(opts.outDir, 'metrics_summary.json'), details: join(opts.outDir, 'metrics_details.json') };
    say(`Saving metrics to: ${opts.outDir}`);
    writeJsonFile(files.summary, summary);
    writeJsonFile(files.details, metricDataList.serialize());
  }
  if (opts.verbose) log(formatDetectionSummary(summary));
  return { metrics, metricDataList, byDistance, summary, sampleTokens, filter: { gt: gtStats, pred: predStats }, files };
}

function f(v: number | null | undefined, digits: number, width = 0): string {
  const s = v === null || v === undefined || Number.isNaN(v) ? 'nan' : v.toFixed(digits);
  return s.padEnd(width);
}

/**
 * The devkit's printout: mAP, mATE, mASE, mAOE, mAVE, mAAE, NDS, eval time, then one row per class
 * (AP, ATE, ASE, AOE, AVE, AAE). NaN prints as "nan". Then, when the summary has it, AP by ego distance.
 */
export function formatDetectionSummary(s: MetricsSummary): string {
  const names: Record<string, string> = { trans_err: 'mATE', scale_err: 'mASE', orient_err: 'mAOE', vel_err: 'mAVE', attr_err: 'mAAE' };
  const lines = [`mAP: ${f(s.mean_ap, 4)}`];
  for (const [k, v] of Object.entries(s.tp_errors)) lines.push(`${names[k] ?? k}: ${f(v, 4)}`);
  lines.push(`NDS: ${f(s.nd_score, 4)}`);
  lines.push(`Eval time: ${f(s.eval_time, 1)}s`);
  lines.push('');
  lines.push('Per-class results:');
  lines.push(['Object Class'.padEnd(20), 'AP'.padEnd(6), 'ATE'.padEnd(6), 'ASE'.padEnd(6), 'AOE'.padEnd(6), 'AVE'.padEnd(6), 'AAE'.padEnd(6)].join('\t'));
  for (const [name, ap] of Object.entries(s.mean_dist_aps)) {
    const tp = s.label_tp_errors[name] ?? {};
    lines.push([name.padEnd(20), f(ap, 3, 6), f(tp.trans_err, 3, 6), f(tp.scale_err, 3, 6), f(tp.orient_err, 3, 6), f(tp.vel_err, 3, 6), f(tp.attr_err, 3, 6)].join('\t'));
  }
  const { mean_ap_by_distance, ap_by_distance, gt_by_distance } = s;
  if (mean_ap_by_distance && ap_by_distance) lines.push('', formatDistanceTable({ mean_ap_by_distance, ap_by_distance, gt_by_distance }));
  return lines.join('\n');
}

