/**
 * DetectionMetrics / DetectionMetricDataList of the devkit (eval/detection/data_classes.py) and the evaluation
 * step of DetectionEval.evaluate(): accumulate every class × threshold, then AP, TP errors, mAP, NDS.
 */
import {
  accumulatePrepared,
  calcAp,
  calcTp,
  prepareClass,
  TP_METRICS,
  type AccumulateStats,
  type DetectionMetricData,
  type TpMetric,
} from './algo.js';
import type { EvalBoxes } from './box.js';
import { configClassNames, parseDetectionConfig, serializeDetectionConfig, type DetectionConfig } from './config.js';
import { assembleApByDistance, classApByDistance, distanceBands as makeBands, type ApByDistance } from './distance.js';
import { EvalInputError } from './errors.js';
import { pyFloatRepr } from './json.js';
import { npMean, npNanMean, npSum } from './numpy.js';

/** TP metrics the devkit overrides with NaN (they are undefined for the class). */
export function isNanOverride(className: string, metric: TpMetric): boolean {
  if (className === 'traffic_cone') return metric === 'attr_err' || metric === 'vel_err' || metric === 'orient_err';
  if (className === 'barrier') return metric === 'attr_err' || metric === 'vel_err';
  return false;
}

/** metrics_summary.json as the devkit writes it (NaN written as null by bevzoo). */
export interface MetricsSummary {
  label_aps: Record<string, Record<string, number>>;
  mean_dist_aps: Record<string, number>;
  mean_ap: number;
  label_tp_errors: Record<string, Record<string, number>>;
  tp_errors: Record<string, number>;
  tp_scores: Record<string, number>;
  nd_score: number;
  eval_time: number | null;
  /** The detection config (the devkit names this key `cfg` in metrics_summary.json). */
  cfg: Record<string, unknown>;
  /** bevzoo's AP by ego distance (distance.ts; not in the devkit): band edges, mAP per band, AP and GT count per class × band. */
  distance_bands?: number[];
  mean_ap_by_distance?: Record<string, number>;
  ap_by_distance?: Record<string, Record<string, number>>;
  gt_by_distance?: Record<string, Record<string, number>>;
  meta?: Record<string, unknown>;
}

export class DetectionMetrics {
  private readonly labelAps = new Map<string, Map<number, number>>();
  private readonly labelTpErrors = new Map<string, Map<TpMetric, number>>();
  evalTime: number | null = null;

  constructor(readonly config: DetectionConfig) {}

  addLabelAp(className: string, distTh: number, ap: number): void {
    let m = this.labelAps.get(className);
    if (!m) this.labelAps.set(className, (m = new Map()));
    m.set(distTh, ap);
  }

  getLabelAp(className: string, distTh: number): number {
    return this.labelAps.get(className)?.get(distTh) ?? 0;
  }

  addLabelTp(className: string, metric: TpMetric, tp: number): void {
    let m = this.labelTpErrors.get(className);
    if (!m) this.labelTpErrors.set(className, (m = new Map()));
    m.set(metric, tp);
  }

  getLabelTp(className: string, metric: TpMetric): number {
    return this.labelTpErrors.get(className)?.get(metric) ?? 0;
  }

  addRuntime(seconds: number): void {
    this.evalTime = seconds;
  }

  /** Mean AP over the distance thresholds, per class (in insertion order). */
  get meanDistAps(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, d] of this.labelAps) out[name] = npMean([...d.values()]);
    return out;
  }

  /** mAP: mean of meanDistAps. */
  get meanAp(): number {
    return npMean(Object.values(this.meanDistAps));
  }

  /** Per TP metric, nanmean over the config's classes. */
  get tpErrors(): Record<TpMetric, number> {
    const out = {} as Record<TpMetric, number>;
    const names = configClassNames(this.config);
    for (const m of TP_METRICS) out[m] = npNanMean(names.map((n) => this.getLabelTp(n, m)));
    return out;
  }

  /** max(0, 1 − error) per TP metric. */
  get tpScores(): Record<TpMetric, number> {
    const errors = this.tpErrors;
    const out = {} as Record<TpMetric, number>;
    for (const m of TP_METRICS) out[m] = Math.max(0.0, 1.0 - errors[m]);
    return out;
  }

  /** NDS = (mean_ap_weight·mAP + Σ tp_scores) / (mean_ap_weight + 5). */
  get ndScore(): number {
    const scores = this.tpScores;
    const total = this.config.mean_ap_weight * this.meanAp + npSum(TP_METRICS.map((m) => scores[m]));
    return total / (this.config.mean_ap_weight + TP_METRICS.length);
  }

  /** The devkit's serialize(): distance keys written like Python floats ("1.0"). */
  serialize(): MetricsSummary {
    const labelAps: Record<string, Record<string, number>> = {};
    for (const [name, d] of this.labelAps) {
      labelAps[name] = {};
      for (const [th, ap] of d) labelAps[name][pyFloatRepr(th)] = ap;
    }
    const labelTp: Record<string, Record<string, number>> = {};
    for (const [name, d] of this.labelTpErrors) {
      labelTp[name] = {};
      for (const [m, v] of d) labelTp[name][m] = v;
    }
    return {
      label_aps: labelAps,
      mean_dist_aps: this.meanDistAps,
      mean_ap: this.meanAp,
      label_tp_errors: labelTp,
      tp_errors: this.tpErrors,
      tp_scores: this.tpScores,
      nd_score: this.ndScore,
      eval_time: this.evalTime,
      cfg: serializeDetectionConfig(this.config),
    };
  }

  /**
   * Rebuild from a metrics_summary.json (the devkit's, with NaN tokens, or bevzoo's, with null for NaN).
   * Derived values (mAP, NDS…) are recomputed from label_aps and label_tp_errors.
   */
  static deserialize(content: unknown, file?: string): DetectionMetrics {
    const c = asObject(content, 'a metrics summary object', file, '');
    const metrics = new DetectionMetrics(parseDetectionConfig(c.cfg, file));
    const t = c.eval_time;
    metrics.evalTime = typeof t === 'number' ? t : null;
    for (const [name, aps] of Object.entries(asObject(c.label_aps, 'an object', file, 'label_aps'))) {
      for (const [th, ap] of Object.entries(asObject(aps, 'an object', file, `label_aps.${name}`))) {
        metrics.addLabelAp(name, Number(th), toNumber(ap, file, `label_aps.${name}.${th}`));
      }
    }
    for (const [name, tps] of Object.entries(asObject(c.label_tp_errors, 'an object', file, 'label_tp_errors'))) {
      for (const [m, v] of Object.entries(asObject(tps, 'an object', file, `label_tp_errors.${name}`))) {
        if (!(TP_METRICS as readonly string[]).includes(m)) throw new EvalInputError(`a TP metric (${TP_METRICS.join(', ')})`, m, { file, field: `label_tp_errors.${name}` });
        metrics.addLabelTp(name, m as TpMetric, toNumber(v, file, `label_tp_errors.${name}.${m}`));
      }
    }
    return metrics;
  }
}

function asObject(v: unknown, expected: string, file: string | undefined, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EvalInputError(expected, JSON.stringify(v) ?? String(v), { file, field });
  return v as Record<string, unknown>;
}

function toNumber(v: unknown, file: string | undefined, field: string): number {
  if (v === null) return NaN;
  if (typeof v !== 'number') throw new EvalInputError('a number (or null for NaN)', JSON.stringify(v), { file, field });
  return v;
}

/** The accumulated curves of every class × threshold (the devkit's DetectionMetricDataList). */
export class DetectionMetricDataList {
  readonly md = new Map<string, { className: string; distTh: number; data: DetectionMetricData }>();

  static key(className: string, distTh: number): string {
    return `${className}:${pyFloatRepr(distTh)}`;
  }

  set(className: string, distTh: number, data: DetectionMetricData): void {
    this.md.set(DetectionMetricDataList.key(className, distTh), { className, distTh, data });
  }

  get(className: string, distTh: number): DetectionMetricData {
    const e = this.md.get(DetectionMetricDataList.key(className, distTh));
    if (!e) throw new RangeError(`DetectionMetricDataList: no data for ${DetectionMetricDataList.key(className, distTh)}`);
    return e.data;
  }

  /** metrics_details.json content: "class:dist" → 101-point arrays. */
  serialize(): Record<string, Record<keyof DetectionMetricData, number[]>> {
    const out: Record<string, Record<keyof DetectionMetricData, number[]>> = {};
    for (const [key, { data }] of this.md) {
      out[key] = {
        recall: Array.from(data.recall),
        precision: Array.from(data.precision),
        confidence: Array.from(data.confidence),
        trans_err: Array.from(data.trans_err),
        vel_err: Array.from(data.vel_err),
        scale_err: Array.from(data.scale_err),
        orient_err: Array.from(data.orient_err),
        attr_err: Array.from(data.attr_err),
      };
    }
    return out;
  }

  /** Read metrics_details.json content (bare NaN tokens or null accepted). */
  static deserialize(content: unknown, file?: string): DetectionMetricDataList {
    const list = new DetectionMetricDataList();
    for (const [key, v] of Object.entries(asObject(content, 'a metrics details object', file, ''))) {
      const i = key.lastIndexOf(':');
      const distTh = Number(key.slice(i + 1));
      if (i <= 0 || !Number.isFinite(distTh)) throw new EvalInputError('a key "class:distance"', key, { file, field: key });
      const o = asObject(v, 'an object of curves', file, key);
      const arr = (name: keyof DetectionMetricData): Float64Array => {
        const a = o[name];
        if (!Array.isArray(a)) throw new EvalInputError('an array of numbers', JSON.stringify(a) ?? 'nothing', { file, field: `${key}.${name}` });
        return Float64Array.from(a, (x, j) => toNumber(x, file, `${key}.${name}.${j}`));
      };
      list.set(key.slice(0, i), distTh, {
        recall: arr('recall'),
        precision: arr('precision'),
        confidence: arr('confidence'),
        trans_err: arr('trans_err'),
        vel_err: arr('vel_err'),
        scale_err: arr('scale_err'),
        orient_err: arr('orient_err'),
        attr_err: arr('attr_err'),
      });
    }
    return list;
  }
}

export interface ComputeOptions {
  /** Work counters (accumulate calls, predictions, distance evaluations, matches). */
  stats?: AccumulateStats;
  /** Also compute AP by ego distance with these band edges (m), from the same per-class layout (distance.ts). */
  distanceBands?: readonly number[];
}

/**
 * DetectionEval.evaluate() on already filtered boxes: accumulate every class × distance threshold, then AP per
 * threshold and TP errors at dist_th_tp with the devkit's NaN overrides. eval_time is the wall time in seconds
 * (AP by distance included when asked for; it never changes the devkit's figures).
 */
export function computeDetectionMetrics(
  gt: EvalBoxes,
  pred: EvalBoxes,
  config: DetectionConfig,
  opts: ComputeOptions = {},
): { metrics: DetectionMetrics; metricDataList: DetectionMetricDataList; byDistance?: ApByDistance } {
  const start = performance.now();
  const classNames = configClassNames(config);
  const bands = opts.distanceBands ? makeBands(opts.distanceBands) : null;
  const list = new DetectionMetricDataList();
  const perClass = new Map<string, ReturnType<typeof classApByDistance>>();
  for (const className of classNames) {
    const prepared = prepareClass(gt, pred, className);
    for (const th of config.dist_ths) list.set(className, th, accumulatePrepared(prepared, th, opts.stats));
    if (bands) perClass.set(className, classApByDistance(prepared, bands, config));
  }
  const metrics = new DetectionMetrics(config);
  for (const className of classNames) {
    for (const th of config.dist_ths) metrics.addLabelAp(className, th, calcAp(list.get(className, th), config.min_recall, config.min_precision));
    for (const m of TP_METRICS) {
      const tp = isNanOverride(className, m) ? NaN : calcTp(list.get(className, config.dist_th_tp), config.min_recall, m);
      metrics.addLabelTp(className, m, tp);
    }
  }
  metrics.addRuntime((performance.now() - start) / 1000);
  return { metrics, metricDataList: list, byDistance: bands ? assembleApByDistance(bands, perClass) : undefined };
}

