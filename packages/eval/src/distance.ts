/**
 * AP by ego distance band (no devkit definition exists; this is the common range breakdown of Waymo / Argoverse and
 * of papers reporting near / middle / far AP): after the devkit's filters (class range, empty boxes, bike racks),
 * keep the GT boxes and the predictions whose BEV centre distance to the ego (the devkit's ego_dist, the value the
 * class range is checked against) lies in the band [min, max), and score them with the devkit's accumulate and
 * calc_ap: AP per class is the mean over dist_ths, with the config's min_recall / min_precision.
 *
 * A class without GT in a band has no AP there (NaN; null in JSON) and is left out of the band's mAP, which is the
 * mean over the classes that have GT in the band (NaN when none has). Known edge effect: a prediction just across
 * a band border from its GT is a false positive in one band and leaves a missed GT in the other.
 */
import { calcAp, precisionCurve, prepareClass, type PreparedClass } from './algo.js';
import { egoDist, type EvalBoxes } from './box.js';
import { configClassNames, type DetectionConfig } from './config.js';
import { EvalConfigError } from './errors.js';
import { npMean, npNanMean } from './numpy.js';

/** Default band edges (m): [0, 20), [20, 30), [30, 40), [40, ∞). */
export const DEFAULT_DISTANCE_BANDS: readonly number[] = [0, 20, 30, 40];

export interface DistanceBand {
  /** "0-20", "20-30", …, "40+" for the open last band. */
  key: string;
  /** Inclusive lower bound (m). */
  min: number;
  /** Exclusive upper bound (m); Infinity for the last band. */
  max: number;
}

/**
 * Bands from ascending edges: [e0, e1), [e1, e2), …, [eN, ∞). Edges must be finite, ≥ 0 and strictly increasing;
 * boxes nearer than e0 fall in no band.
 */
export function distanceBands(edges: readonly number[], where = 'distance bands'): DistanceBand[] {
  if (edges.length === 0) throw new EvalConfigError('at least one band edge (m)', 'none', { field: where });
  edges.forEach((e, i) => {
    if (typeof e !== 'number' || !Number.isFinite(e) || e < 0) throw new EvalConfigError('a finite distance ≥ 0 (m)', JSON.stringify(e) ?? String(e), { field: `${where}[${i}]` });
    if (i > 0 && !(e > edges[i - 1]!)) throw new EvalConfigError(`an edge greater than the previous one (${edges[i - 1]})`, String(e), { field: `${where}[${i}]` });
  });
  return edges.map((min, i) => {
    const max = i + 1 < edges.length ? edges[i + 1]! : Infinity;
    return { key: max === Infinity ? `${min}+` : `${min}-${max}`, min, max };
  });
}

/** Parse "0,20,30,40" (a CLI flag) into band edges; errors name the flag. */
export function parseDistanceBands(text: string, where = '--distance-bands'): number[] {
  const edges = text.split(',').map((s, i) => {
    const t = s.trim();
    const v = t === '' ? NaN : Number(t);
    if (!Number.isFinite(v)) throw new EvalConfigError('comma-separated distances in metres, e.g. 0,20,30,40', JSON.stringify(t), { field: `${where}[${i}]` });
    return v;
  });
  distanceBands(edges, where);
  return edges;
}

export interface ApByDistance {
  bands: DistanceBand[];
  /** class → band key → AP (mean over dist_ths); NaN where the class has no GT in the band. */
  ap: Record<string, Record<string, number>>;
  /** band key → mean AP over the classes with GT in the band (NaN if none). */
  meanAp: Record<string, number>;
  /** class → band key → number of GT boxes (after the devkit's filters). */
  gtCount: Record<string, Record<string, number>>;
}

/** The prepared class restricted to the kept GT and predictions (slots, sample order and prediction order kept). */
function subset(p: PreparedClass, gtIdx: Int32Array, nGt: number, predIdx: Int32Array, nPred: number): PreparedClass {
  const slots = p.gtStart.length - 1;
  const gtStart = new Int32Array(slots + 1);
  // gtIdx is ascending, so each slot's kept GT are contiguous.
  for (let s = 0, j = 0; s < slots; s++) {
    gtStart[s] = j;
    while (j < nGt && gtIdx[j]! < p.gtStart[s + 1]!) j++;
  }
  gtStart[slots] = nGt;
  const gtBoxes = new Array<PreparedClass['gtBoxes'][number]>(nGt);
  const gtX = new Float64Array(nGt), gtY = new Float64Array(nGt), gtYaw = new Float64Array(nGt);
  for (let j = 0; j < nGt; j++) {
    const g = gtIdx[j]!;
    gtBoxes[j] = p.gtBoxes[g]!;
    gtX[j] = p.gtX[g]!;
    gtY[j] = p.gtY[g]!;
    gtYaw[j] = p.gtYaw[g]!;
  }
  const predBoxes = new Array<PreparedClass['predBoxes'][number]>(nPred);
  const predSlot = new Int32Array(nPred);
  const predX = new Float64Array(nPred), predY = new Float64Array(nPred), predScore = new Float64Array(nPred), predYaw = new Float64Array(nPred);
  for (let j = 0; j < nPred; j++) {
    const k = predIdx[j]!;
    predBoxes[j] = p.predBoxes[k]!;
    predSlot[j] = p.predSlot[k]!;
    predX[j] = p.predX[k]!;
    predY[j] = p.predY[k]!;
    predScore[j] = p.predScore[k]!;
    predYaw[j] = p.predYaw[k]!;
  }
  return { className: p.className, gtBoxes, gtStart, gtX, gtY, predBoxes, predSlot, predX, predY, predScore, gtYaw, predYaw };
}

/** Index of the band holding distance d (−1 if none; bands ascend and touch). */
function bandOf(bands: readonly DistanceBand[], d: number): number {
  for (let i = bands.length - 1; i >= 0; i--) if (d >= bands[i]!.min) return d < bands[i]!.max ? i : -1;
  return -1;
}

/** One class's AP (NaN without GT) and GT count per band, from its prepared layout (which is not modified). */
export function classApByDistance(
  p: PreparedClass,
  bands: readonly DistanceBand[],
  config: Pick<DetectionConfig, 'dist_ths' | 'min_recall' | 'min_precision'>,
): { ap: Record<string, number>; gtCount: Record<string, number> } {
  const nb = bands.length;
  const gtBand = new Int32Array(p.gtBoxes.length), predBand = new Int32Array(p.predBoxes.length);
  const gtN = new Int32Array(nb), predN = new Int32Array(nb);
  for (let i = 0; i < gtBand.length; i++) if ((gtBand[i] = bandOf(bands, egoDist(p.gtBoxes[i]!))) >= 0) gtN[gtBand[i]!]!++;
  for (let i = 0; i < predBand.length; i++) if ((predBand[i] = bandOf(bands, egoDist(p.predBoxes[i]!))) >= 0) predN[predBand[i]!]!++;
  const ap: Record<string, number> = {}, gtCount: Record<string, number> = {};
  for (let b = 0; b < nb; b++) {
    const key = bands[b]!.key;
    gtCount[key] = gtN[b]!;
    if (gtN[b] === 0) {
      ap[key] = NaN;
      continue;
    }
    const gtIdx = new Int32Array(gtN[b]!), predIdx = new Int32Array(predN[b]!);
    for (let i = 0, j = 0; i < gtBand.length; i++) if (gtBand[i] === b) gtIdx[j++] = i;
    for (let i = 0, j = 0; i < predBand.length; i++) if (predBand[i] === b) predIdx[j++] = i;
    const sub = subset(p, gtIdx, gtN[b]!, predIdx, predN[b]!);
    ap[key] = npMean(config.dist_ths.map((th) => calcAp({ precision: precisionCurve(sub, th) }, config.min_recall, config.min_precision)));
  }
  return { ap, gtCount };
}

/** Collect per-class results into an ApByDistance (band mAP: nanmean over the classes). */
export function assembleApByDistance(bands: DistanceBand[], perClass: ReadonlyMap<string, { ap: Record<string, number>; gtCount: Record<string, number> }>): ApByDistance {
  const ap: ApByDistance['ap'] = {}, gtCount: ApByDistance['gtCount'] = {};
  for (const [name, r] of perClass) {
    ap[name] = r.ap;
    gtCount[name] = r.gtCount;
  }
  const meanAp: Record<string, number> = {};
  for (const b of bands) meanAp[b.key] = npNanMean([...perClass.values()].map((r) => r.ap[b.key]!));
  return { bands, ap, meanAp, gtCount };
}

/**
 * AP per class and band, on boxes already through addCenterDist and filterEvalBoxes (as computeDetectionMetrics
 * takes them; its `distanceBands` option computes the same from its own layout, without sorting twice). Equal to
 * running the devkit's accumulate / calc_ap on GT and predictions filtered to each band: the class's predictions
 * are sorted once and each band keeps its part in that order, which is the order a sort of the band's predictions
 * alone gives (score descending, ties by position).
 */
export function computeApByDistance(gt: EvalBoxes, pred: EvalBoxes, config: DetectionConfig, edges: readonly number[] = DEFAULT_DISTANCE_BANDS): ApByDistance {
  const bands = distanceBands(edges);
  const perClass = new Map<string, ReturnType<typeof classApByDistance>>();
  for (const className of configClassNames(config)) perClass.set(className, classApByDistance(prepareClass(gt, pred, className), bands, config));
  return assembleApByDistance(bands, perClass);
}

/** The summary fields (metrics_summary.json, bevzoo's result.json): edges, mAP per band, AP and GT count per class × band. */
export interface DistanceSummary {
  distance_bands: number[];
  mean_ap_by_distance: Record<string, number>;
  ap_by_distance: Record<string, Record<string, number>>;
  gt_by_distance: Record<string, Record<string, number>>;
}

export function distanceSummary(r: ApByDistance): DistanceSummary {
  return { distance_bands: r.bands.map((b) => b.min), mean_ap_by_distance: r.meanAp, ap_by_distance: r.ap, gt_by_distance: r.gtCount };
}

/** The per-distance table printed after the devkit's: one row per class (AP, with the GT count), then mAP. */
export function formatDistanceTable(s: Pick<DistanceSummary, 'mean_ap_by_distance' | 'ap_by_distance'> & { gt_by_distance?: DistanceSummary['gt_by_distance'] }): string {
  const keys = Object.keys(s.mean_ap_by_distance);
  const cell = (ap: number | null | undefined, n?: number) => {
    const a = ap === null || ap === undefined || Number.isNaN(ap) ? '—' : ap.toFixed(3);
    return (n === undefined ? a : `${a} (${n})`).padEnd(14);
  };
  const lines = ['AP by ego distance (m; GT boxes in brackets; — no GT in the band):', ['Object Class'.padEnd(20), ...keys.map((k) => k.padEnd(14))].join('\t')];
  for (const [name, aps] of Object.entries(s.ap_by_distance)) lines.push([name.padEnd(20), ...keys.map((k) => cell(aps[k], s.gt_by_distance?.[name]?.[k]))].join('\t'));
  lines.push(['mAP'.padEnd(20), ...keys.map((k) => cell(s.mean_ap_by_distance[k]))].join('\t'));
  return lines.join('\n');
}
