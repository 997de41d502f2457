/**
 * How sparse the LiDAR is on the annotated objects: the share of ground-truth boxes of the detection classes, within
 * the evaluation's class ranges, that hold fewer than `minPoints` LiDAR returns (`num_lidar_pts`), overall, per
 * class and per distance band. This is the gap MVP's virtual points fill.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NuScenesError } from '../errors.js';
import type { NuScenes } from '../reader.js';
import { categoryToDetectionName, DETECTION_CLASSES, DETECTION_CVPR_2019, type DetectionClass } from '../tables.js';

export interface ReturnCounts {
  /** Boxes counted. */
  boxes: number;
  /** Boxes with fewer than minPoints LiDAR returns. */
  sparse: number;
  /** Boxes with no LiDAR return at all (the devkit's evaluation drops these, unless they have radar returns). */
  empty: number;
}

export interface LidarReturnStats {
  minPoints: number;
  /** The class ranges used (m, ego xy distance, boxes at or beyond are not counted, as the devkit's filter). */
  classRange: Record<DetectionClass, number>;
  /** Where the ranges came from: a detection_config.json, or the devkit default detection_cvpr_2019. */
  classRangeSource: string;
  samples: number;
  total: ReturnCounts;
  perClass: Record<DetectionClass, ReturnCounts>;
  /** Distance bands [lo, hi) in metres, hi = Infinity for the last. */
  perBand: { lo: number; hi: number; counts: ReturnCounts }[];
}

export const DISTANCE_BANDS: readonly number[] = [0, 20, 30, 40];

/** class_range of `<tableRoot>/detection_config.json` when the dataset has one (the synthetic generator writes it), else detection_cvpr_2019's. */
export function datasetClassRange(nusc: NuScenes): { classRange: Record<DetectionClass, number>; source: string } {
  const file = join(nusc.tableRoot, 'detection_config.json');
  if (!existsSync(file)) return { classRange: { ...DETECTION_CVPR_2019.class_range }, source: 'detection_cvpr_2019 (devkit default)' };
  let cfg: unknown;
  try {
    cfg = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new NuScenesError(`${file}: malformed JSON (${(e as Error).message})`, { file, expected: 'valid JSON' });
  }
  const cr = (cfg as { class_range?: unknown } | null)?.class_range as Record<string, unknown> | undefined;
  const classRange = {} as Record<DetectionClass, number>;
  for (const c of DETECTION_CLASSES) {
    const v = cr?.[c];
    if (typeof v !== 'number' || !(v > 0))
      throw new NuScenesError(`${file}: class_range.${c} must be a positive range in metres, found ${JSON.stringify(v)}`, {
        file, field: `class_range.${c}`, expected: 'a positive number', found: JSON.stringify(v),
      });
    classRange[c] = v;
  }
  return { classRange, source: file };
}

/**
 * Count, over the annotations of `sampleTokens`, the detection-class boxes within their class range (xy distance from
 * the keyframe LiDAR's ego pose < class_range, as the devkit's filter_eval_boxes) and those with fewer than
 * `minPoints` LiDAR returns.
 */
export function lidarReturnStats(
  nusc: NuScenes,
  sampleTokens: readonly string[],
  opts: { minPoints?: number; classRange?: Record<DetectionClass, number> } = {},
): LidarReturnStats {
  const minPoints = opts.minPoints ?? 5;
  const { classRange, source } = opts.classRange ? { classRange: opts.classRange, source: 'given' } : datasetClassRange(nusc);
  const zero = (): ReturnCounts => ({ boxes: 0, sparse: 0, empty: 0 });
  const total = zero();
  const perClass = Object.fromEntries(DETECTION_CLASSES.map((c) => [c, zero()])) as Record<DetectionClass, ReturnCounts>;
  const perBand = DISTANCE_BANDS.map((lo, i) => ({ lo, hi: DISTANCE_BANDS[i + 1] ?? Infinity, counts: zero() }));
  for (const s of sampleTokens) {
    const ego = nusc.egoPose(nusc.lidarToken(s)).translation;
    for (const t of nusc.sample(s).anns!) {
      const a = nusc.get('sample_annotation', t);
      const cls = categoryToDetectionName(a.category_name!);
      if (!cls) continue;
      const d = Math.hypot(a.translation[0] - ego[0], a.translation[1] - ego[1]);
      if (!(d < classRange[cls])) continue;
      const band = perBand.find((b) => d >= b.lo && d < b.hi)!;
      for (const c of [total, perClass[cls], band.counts]) {
        c.boxes++;
        if (a.num_lidar_pts < minPoints) c.sparse++;
        if (a.num_lidar_pts === 0) c.empty++;
      }
    }
  }
  return { minPoints, classRange, classRangeSource: source, samples: sampleTokens.length, total, perClass, perBand };
}

/** The statistics as a Markdown table (rows: all, the 10 classes, the distance bands). */
export function formatLidarReturnStats(st: LidarReturnStats): string {
  const pct = (n: number, d: number) => (d > 0 ? `${((100 * n) / d).toFixed(1)} %` : '–');
  const row = (name: string, c: ReturnCounts) => `| ${name} | ${c.boxes} | ${pct(c.sparse, c.boxes)} | ${pct(c.empty, c.boxes)} |`;
  return [
    `${st.samples} samples; boxes within the class ranges of ${st.classRangeSource}`,
    '',
    `| boxes | count | < ${st.minPoints} LiDAR returns | 0 returns |`,
    '| --- | --- | --- | --- |',
    row('all', st.total),
    ...DETECTION_CLASSES.map((c) => row(`${c} (< ${st.classRange[c]} m)`, st.perClass[c])),
    ...st.perBand.map((b) => row(b.hi === Infinity ? `${b.lo}+ m` : `${b.lo}–${b.hi} m`, b.counts)),
  ].join('\n');
}
