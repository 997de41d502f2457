/**
 * The devkit's detection algorithm (eval/detection/algo.py): accumulate, calc_ap, calc_tp — same matching order,
 * same tie breaking, same interpolation, in float64.
 *
 * For speed the boxes of one class are laid out once in typed arrays (GT grouped by sample, predictions sorted by
 * score) and reused for every distance threshold; per-match errors read the original box objects.
 */
import type { DetectionClass } from '@bevzoo/nuscenes';
import { attrAcc, centerDistance, quaternionYaw, angleDiff, scaleIou, velocityL2, type EvalBox, type EvalBoxes } from './box.js';
import type { DistFcnName } from './config.js';
import { cummean, interp, npMean, pyRound, REC_INTERP } from './numpy.js';

export const NELEM = 101;

export const TP_METRICS = ['trans_err', 'scale_err', 'orient_err', 'vel_err', 'attr_err'] as const;
export type TpMetric = (typeof TP_METRICS)[number];

/** DetectionMetricData: 101-point curves over recall. */
export interface DetectionMetricData {
  recall: Float64Array;
  precision: Float64Array;
  confidence: Float64Array;
  trans_err: Float64Array;
  vel_err: Float64Array;
  scale_err: Float64Array;
  orient_err: Float64Array;
  attr_err: Float64Array;
}

/** DetectionMetricData.no_predictions(): precision and confidence 0, errors 1. */
export function noPredictions(): DetectionMetricData {
  const ones = (): Float64Array => new Float64Array(NELEM).fill(1);
  return {
    recall: REC_INTERP.slice(),
    precision: new Float64Array(NELEM),
    confidence: new Float64Array(NELEM),
    trans_err: ones(),
    vel_err: ones(),
    scale_err: ones(),
    orient_err: ones(),
    attr_err: ones(),
  };
}

/** max_recall_ind: the last index with confidence ≠ 0 (0 if none). */
export function maxRecallInd(md: DetectionMetricData): number {
  for (let i = md.confidence.length - 1; i >= 0; i--) if (md.confidence[i] !== 0) return i;
  return 0;
}

/** One class's GT and predictions laid out for matching; built once, used for every threshold. */
export interface PreparedClass {
  className: DetectionClass;
  /** GT boxes of the class, grouped by sample slot: slot s owns gtBoxes[gtStart[s] .. gtStart[s+1]). */
  gtBoxes: EvalBox[];
  gtStart: Int32Array;
  gtX: Float64Array;
  gtY: Float64Array;
  /** Predictions of the class in matching order (score descending, ties: later first). */
  predBoxes: EvalBox[];
  predSlot: Int32Array;
  predX: Float64Array;
  predY: Float64Array;
  predScore: Float64Array;
  /** Cached yaws (NaN until first needed). */
  gtYaw: Float64Array;
  predYaw: Float64Array;
}

/**
 * Lay out one class. GT of a sample keeps its list order (first wins distance ties); predictions are taken in
 * `pred` order (sample key order, then list order) and sorted like the devkit: Python's
 * `sorted((score, index))[::-1]`, i.e. score descending, equal scores by descending index.
 */
export function prepareClass(gt: EvalBoxes, pred: EvalBoxes, className: DetectionClass): PreparedClass {
  const slotOf = new Map<string, number>();
  const gtBoxes: EvalBox[] = [];
  const starts: number[] = [];
  for (const [token, list] of gt) {
    slotOf.set(token, starts.length);
    starts.push(gtBoxes.length);
    for (const b of list) if (b.detection_name === className) gtBoxes.push(b);
  }
  starts.push(gtBoxes.length);
  // A slot for predictions whose sample has no GT entry (devkit: gt_boxes[token] is an empty list).
  const emptySlot = starts.length - 1;
  starts.push(gtBoxes.length);
  const gtStart = Int32Array.from(starts);
  const nGt = gtBoxes.length;
  const gtX = new Float64Array(nGt), gtY = new Float64Array(nGt);
  for (let i = 0; i < nGt; i++) {
    gtX[i] = gtBoxes[i]!.translation[0];
    gtY[i] = gtBoxes[i]!.translation[1];
  }

  const unsorted: EvalBox[] = [];
  for (const list of pred.values()) for (const b of list) if (b.detection_name === className) unsorted.push(b);
  const n = unsorted.length;
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) scores[i] = unsorted[i]!.detection_score;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => {
    const sa = scores[a]!, sb = scores[b]!;
    return sa > sb ? -1 : sa < sb ? 1 : b - a;
  });
  const predBoxes: EvalBox[] = new Array(n);
  const predSlot = new Int32Array(n);
  const predX = new Float64Array(n), predY = new Float64Array(n), predScore = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const b = unsorted[order[k]!]!;
    predBoxes[k] = b;
    predSlot[k] = slotOf.get(b.sample_token) ?? emptySlot;
    predX[k] = b.translation[0];
    predY[k] = b.translation[1];
    predScore[k] = b.detection_score;
  }
  return {
    className,
    gtBoxes,
    gtStart,
    gtX,
    gtY,
    predBoxes,
    predSlot,
    predX,
    predY,
    predScore,
    gtYaw: new Float64Array(nGt).fill(NaN),
    predYaw: new Float64Array(n).fill(NaN),
  };
}

/** Work counters, for the benchmark. */
export interface AccumulateStats {
  calls: number;
  predictions: number;
  distanceEvaluations: number;
  matches: number;
}

export function newAccumulateStats(): AccumulateStats {
  return { calls: 0, predictions: 0, distanceEvaluations: 0, matches: 0 };
}

/** The devkit's greedy matching of one class at one threshold: cumulative TP / FP per prediction and the matches in order. */
interface Matching {
  tpCum: Float64Array;
  fpCum: Float64Array;
  /** GT index and prediction index of each match, in match order. */
  matchGt: number[];
  matchPred: number[];
}

/**
 * Predictions in score order; each takes the nearest untaken GT of its sample (first on equal distance) and is a TP if
 * that distance is < distTh (strict), else an FP.
 */
function matchPrepared(p: PreparedClass, distTh: number, stats?: AccumulateStats): Matching {
  const npos = p.gtBoxes.length;
  const nPred = p.predBoxes.length;
  const { gtStart, gtX, gtY, predSlot, predX, predY } = p;
  const taken = new Uint8Array(npos);
  const tpCum = new Float64Array(nPred);
  const fpCum = new Float64Array(nPred);
  const matchGt: number[] = [], matchPred: number[] = [];
  let tp = 0, fp = 0, dists = 0;
  for (let k = 0; k < nPred; k++) {
    const s = predSlot[k]!;
    const x = predX[k]!, y = predY[k]!;
    let minDist = Infinity;
    let match = -1;
    for (let g = gtStart[s]!, end = gtStart[s + 1]!; g < end; g++) {
      if (taken[g]) continue;
      const dx = x - gtX[g]!, dy = y - gtY[g]!;
      const d = Math.sqrt(dx * dx + dy * dy);
      if (d < minDist) {
        minDist = d;
        match = g;
      }
    }
    dists += gtStart[s + 1]! - gtStart[s]!;
    if (minDist < distTh) {
      taken[match] = 1;
      tp++;
      matchGt.push(match);
      matchPred.push(k);
    } else {
      fp++;
    }
    tpCum[k] = tp;
    fpCum[k] = fp;
  }
  if (stats) {
    stats.predictions += nPred;
    stats.distanceEvaluations += dists;
    stats.matches += matchGt.length;
  }
  return { tpCum, fpCum, matchGt, matchPred };
}

/** Recall per prediction and the 101-point precision curve (precision at REC_INTERP, 0 beyond the last recall) of a matching with matches. */
function precisionOf(m: Matching, npos: number): { rec: Float64Array; precision: Float64Array } {
  const n = m.tpCum.length;
  const prec = new Float64Array(n), rec = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    prec[k] = m.tpCum[k]! / (m.fpCum[k]! + m.tpCum[k]!);
    rec[k] = m.tpCum[k]! / npos;
  }
  return { rec, precision: interp(REC_INTERP, rec, prec, undefined, 0) };
}

/**
 * accumulatePrepared(p, distTh).precision without the TP-error curves (what calc_ap reads): for AP-only breakdowns
 * such as AP by distance.
 */
export function precisionCurve(p: PreparedClass, distTh: number): Float64Array {
  if (p.gtBoxes.length === 0) return new Float64Array(NELEM);
  const m = matchPrepared(p, distTh);
  return m.matchGt.length === 0 ? new Float64Array(NELEM) : precisionOf(m, p.gtBoxes.length).precision;
}

/** accumulate() on a prepared class for one distance threshold. */
export function accumulatePrepared(p: PreparedClass, distTh: number, stats?: AccumulateStats): DetectionMetricData {
  const npos = p.gtBoxes.length;
  if (stats) stats.calls++;
  if (npos === 0) return noPredictions();
  const m = matchPrepared(p, distTh, stats);
  // Match data, in match order.
  const mTrans: number[] = [], mVel: number[] = [], mScale: number[] = [], mOrient: number[] = [], mAttr: number[] = [], mConf: number[] = [];
  const period = p.className === 'barrier' ? Math.PI : 2 * Math.PI;
  for (let i = 0; i < m.matchGt.length; i++) {
    const match = m.matchGt[i]!, k = m.matchPred[i]!;
    const gb = p.gtBoxes[match]!, pb = p.predBoxes[k]!;
    mTrans.push(centerDistance(gb, pb));
    mVel.push(velocityL2(gb, pb));
    mScale.push(1 - scaleIou(gb, pb));
    let gy = p.gtYaw[match]!;
    if (Number.isNaN(gy)) gy = p.gtYaw[match] = quaternionYaw(gb.rotation);
    let py = p.predYaw[k]!;
    if (Number.isNaN(py)) py = p.predYaw[k] = quaternionYaw(pb.rotation);
    mOrient.push(Math.abs(angleDiff(gy, py, period)));
    mAttr.push(1 - attrAcc(gb, pb));
    mConf.push(p.predScore[k]!);
  }
  if (mTrans.length === 0) return noPredictions();

  const { rec, precision } = precisionOf(m, npos);
  const confidence = interp(REC_INTERP, rec, p.predScore, undefined, 0);

  // Errors: cumulative mean, resampled at the interpolated confidences (reversed so xp ascends).
  const nm = mConf.length;
  const confRev = new Float64Array(NELEM);
  for (let i = 0; i < NELEM; i++) confRev[i] = confidence[NELEM - 1 - i]!;
  const matchConfRev = new Float64Array(nm);
  for (let i = 0; i < nm; i++) matchConfRev[i] = mConf[nm - 1 - i]!;
  const resample = (errs: number[]): Float64Array => {
    const tmp = cummean(errs);
    const tmpRev = new Float64Array(nm);
    for (let i = 0; i < nm; i++) tmpRev[i] = tmp[nm - 1 - i]!;
    const r = interp(confRev, matchConfRev, tmpRev);
    return r.reverse();
  };
  return {
    recall: REC_INTERP.slice(),
    precision,
    confidence,
    trans_err: resample(mTrans),
    vel_err: resample(mVel),
    scale_err: resample(mScale),
    orient_err: resample(mOrient),
    attr_err: resample(mAttr),
  };
}

/**
 * accumulate(gt_boxes, pred_boxes, class_name, dist_fcn, dist_th): 101-point precision / confidence / error
 * curves of one class at one matching threshold. Only the devkit's center_distance is defined.
 */
export function accumulate(
  gt: EvalBoxes,
  pred: EvalBoxes,
  className: DetectionClass,
  distFcn: DistFcnName,
  distTh: number,
): DetectionMetricData {
  if (distFcn !== 'center_distance') throw new RangeError(`accumulate: unknown distance function ${String(distFcn)}`);
  return accumulatePrepared(prepareClass(gt, pred, className), distTh);
}

/** calc_ap: mean of max(precision[round(100·min_recall)+1:] − min_precision, 0), divided by 1 − min_precision. */
export function calcAp(md: Pick<DetectionMetricData, 'precision'>, minRecall: number, minPrecision: number): number {
  if (!(minPrecision >= 0 && minPrecision < 1)) throw new RangeError(`calcAp: min_precision must be in [0, 1), got ${minPrecision}`);
  if (!(minRecall >= 0 && minRecall <= 1)) throw new RangeError(`calcAp: min_recall must be in [0, 1], got ${minRecall}`);
  const start = pyRound(100 * minRecall) + 1;
  const prec = new Float64Array(Math.max(0, md.precision.length - start));
  for (let i = 0; i < prec.length; i++) {
    const v = md.precision[start + i]! - minPrecision;
    prec[i] = v < 0 ? 0 : v;
  }
  return npMean(prec) / (1.0 - minPrecision);
}

/** calc_tp: mean of the metric over [round(100·min_recall)+1, max_recall_ind], or 1 if that range is empty. */
export function calcTp(md: DetectionMetricData, minRecall: number, metric: TpMetric): number {
  const first = pyRound(100 * minRecall) + 1;
  const last = maxRecallInd(md);
  if (last < first) return 1.0;
  return npMean(md[metric], first, last + 1);
}
