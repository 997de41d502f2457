/**
 * The devkit's detection config (DetectionConfig), in its JSON format. The class order of an evaluation is the
 * key order of `class_range`, as in the devkit (`class_names = class_range.keys()`).
 */
import { DETECTION_CLASSES, DETECTION_CVPR_2019 as CVPR, type DetectionClass } from '@bevzoo/nuscenes';
import { EvalConfigError } from './errors.js';
import { readJsonFile } from './json.js';

export type DistFcnName = 'center_distance';

export interface DetectionConfig {
  class_range: Record<DetectionClass, number>;
  dist_fcn: DistFcnName;
  dist_ths: number[];
  dist_th_tp: number;
  min_recall: number;
  min_precision: number;
  max_boxes_per_sample: number;
  mean_ap_weight: number;
}

/** detection_cvpr_2019, the devkit's default config (the data lives in @bevzoo/nuscenes, which the generator shares). */
export const DETECTION_CVPR_2019: Readonly<DetectionConfig> = CVPR as unknown as Readonly<DetectionConfig>;

/** A fresh copy of the default config. */
export function defaultDetectionConfig(): DetectionConfig {
  return parseDetectionConfig(DETECTION_CVPR_2019);
}

/** The config's class names in evaluation order (class_range key order). */
export function configClassNames(config: DetectionConfig): DetectionClass[] {
  return Object.keys(config.class_range) as DetectionClass[];
}

function num(v: unknown, field: string, file: string | undefined, check: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) {
    throw new EvalConfigError(expected, JSON.stringify(v) ?? String(v), { file, field });
  }
  return v;
}

/**
 * Validate a config object (the devkit's DetectionConfig.deserialize plus its assertions): class_range must name
 * exactly the 10 detection classes, dist_th_tp must be one of dist_ths, 0 ≤ min_recall ≤ 1, 0 ≤ min_precision < 1.
 */
export function parseDetectionConfig(content: unknown, file?: string): DetectionConfig {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new EvalConfigError('a config object', JSON.stringify(content) ?? String(content), { file });
  }
  const c = content as Record<string, unknown>;
  for (const key of ['class_range', 'dist_fcn', 'dist_ths', 'dist_th_tp', 'min_recall', 'min_precision', 'max_boxes_per_sample', 'mean_ap_weight']) {
    if (!(key in c)) throw new EvalConfigError(`field ${key}`, 'nothing', { file, field: key });
  }
  const cr = c.class_range;
  if (typeof cr !== 'object' || cr === null || Array.isArray(cr)) {
    throw new EvalConfigError('an object of class → range (m)', JSON.stringify(cr), { file, field: 'class_range' });
  }
  const classRange = {} as Record<DetectionClass, number>;
  const names = Object.keys(cr);
  const missing = DETECTION_CLASSES.filter((n) => !names.includes(n));
  const unknown = names.filter((n) => !(DETECTION_CLASSES as readonly string[]).includes(n));
  if (missing.length || unknown.length) {
    throw new EvalConfigError(
      `class_range keys equal to the detection classes (${DETECTION_CLASSES.join(', ')})`,
      `${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && unknown.length ? '; ' : ''}${unknown.length ? `unknown ${unknown.join(', ')}` : ''}`,
      { file, field: 'class_range' },
    );
  }
  for (const n of names) {
    classRange[n as DetectionClass] = num((cr as Record<string, unknown>)[n], `class_range.${n}`, file, (x) => x > 0, 'a positive range in metres');
  }
  if (c.dist_fcn !== 'center_distance') {
    throw new EvalConfigError('dist_fcn "center_distance"', JSON.stringify(c.dist_fcn), { file, field: 'dist_fcn' });
  }
  if (!Array.isArray(c.dist_ths) || c.dist_ths.length === 0) {
    throw new EvalConfigError('a non-empty array of distance thresholds', JSON.stringify(c.dist_ths), { file, field: 'dist_ths' });
  }
  const distThs = c.dist_ths.map((v, i) => num(v, `dist_ths.${i}`, file, (x) => x > 0, 'a positive distance threshold'));
  const distThTp = num(c.dist_th_tp, 'dist_th_tp', file, (x) => x > 0, 'a positive distance threshold');
  if (!distThs.includes(distThTp)) {
    throw new EvalConfigError(`dist_th_tp to be one of dist_ths [${distThs.join(', ')}]`, String(distThTp), { file, field: 'dist_th_tp' });
  }
  return {
    class_range: classRange,
    dist_fcn: 'center_distance',
    dist_ths: distThs,
    dist_th_tp: distThTp,
    min_recall: num(c.min_recall, 'min_recall', file, (x) => x >= 0 && x <= 1, 'a number in [0, 1]'),
    min_precision: num(c.min_precision, 'min_precision', file, (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
    max_boxes_per_sample: num(c.max_boxes_per_sample, 'max_boxes_per_sample', file, (x) => Number.isInteger(x) && x > 0, 'a positive integer'),
    mean_ap_weight: num(c.mean_ap_weight, 'mean_ap_weight', file, (x) => x >= 0, 'a non-negative number'),
  };
}

/** Load a config JSON file in the devkit's format. */
export function loadDetectionConfig(path: string): DetectionConfig {
  return parseDetectionConfig(readJsonFile(path), path);
}

/** The config as the devkit serialises it (DetectionConfig.serialize). */
export function serializeDetectionConfig(config: DetectionConfig): Record<string, unknown> {
  return {
    class_range: { ...config.class_range },
    dist_fcn: config.dist_fcn,
    dist_ths: [...config.dist_ths],
    dist_th_tp: config.dist_th_tp,
    min_recall: config.min_recall,
    min_precision: config.min_precision,
    max_boxes_per_sample: config.max_boxes_per_sample,
    mean_ap_weight: config.mean_ap_weight,
  };
}
