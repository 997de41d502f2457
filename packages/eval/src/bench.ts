/**
 * Detection-metric benchmark at full nuScenes val scale: 6,019 samples × 500 predictions (3,009,500 boxes) and
 * ~40 GT boxes per sample, from a seeded generator. Times the full computation (add_center_dist, filtering,
 * 10 classes × 4 thresholds accumulate, AP / TP / NDS), then the same with AP by ego distance, and prints the work done.
 *
 *   node packages/eval/dist/bench.js [--samples 6019] [--preds 500] [--gt 40] [--seed 1] [--repeat 2]
 */
import { createRng } from '@bevzoo/core';
import { CLASS_ATTRIBUTES, DETECTION_CLASSES, type DetectionClass } from '@bevzoo/nuscenes';
import { newAccumulateStats } from './algo.js';
import type { EvalBox, EvalBoxes, RawBox } from './box.js';
import { countBoxes } from './box.js';
import { defaultDetectionConfig } from './config.js';
import { addCenterDist, filterEvalBoxes, type FilterStats } from './filter.js';
import { DEFAULT_DISTANCE_BANDS, type ApByDistance } from './distance.js';
import { computeDetectionMetrics } from './metrics.js';

export interface BenchOptions {
  samples: number;
  preds: number;
  gt: number;
  seed: number;
}

export interface BenchData {
  gt: EvalBoxes;
  pred: EvalBoxes;
  ego: Map<string, number[]>;
  racks: Map<string, RawBox[]>;
}

/** Seeded synthetic GT and predictions (predictions: noisy copies of GT with high scores, the rest clutter). */
export function generateBenchData(o: BenchOptions): BenchData {
  const rng = createRng(o.seed);
  const gt: EvalBoxes = new Map(), pred: EvalBoxes = new Map();
  const ego = new Map<string, number[]>(), racks = new Map<string, RawBox[]>();
  const weights = [40, 8, 2, 3, 2, 20, 2, 2, 8, 13]; // roughly the nuScenes class frequencies
  const yawQuat = (yaw: number): [number, number, number, number] => [Math.cos(yaw / 2), 0, 0, Math.sin(yaw / 2)];
  for (let s = 0; s < o.samples; s++) {
    const token = `bench-sample-${String(s).padStart(5, '0')}`;
    const e = [rng.uniform(-1000, 1000), rng.uniform(-1000, 1000), 0];
    ego.set(token, e);
    const sampleRacks: RawBox[] = rng.next() < 0.1 ? [{ translation: [e[0]! + rng.uniform(-20, 20), e[1]! + rng.uniform(-20, 20), 0.5], size: [2, 6, 1.5], rotation: yawQuat(rng.uniform(-Math.PI, Math.PI)) }] : [];
    racks.set(token, sampleRacks);
    const g: EvalBox[] = [];
    const nGt = Math.max(0, Math.round(rng.normal(o.gt, o.gt / 4)));
    for (let i = 0; i < nGt; i++) {
      const name = DETECTION_CLASSES[rng.weighted(weights)]! as DetectionClass;
      const attrs = CLASS_ATTRIBUTES[name];
      g.push({
        sample_token: token,
        translation: [e[0]! + rng.uniform(-55, 55), e[1]! + rng.uniform(-55, 55), rng.uniform(0, 2)],
        size: [rng.uniform(0.4, 3), rng.uniform(0.4, 10), rng.uniform(0.8, 3.5)],
        rotation: yawQuat(rng.uniform(-Math.PI, Math.PI)),
        velocity: rng.next() < 0.05 ? [NaN, NaN] : [rng.normal(0, 3), rng.normal(0, 3)],
        detection_name: name,
        detection_score: -1,
        attribute_name: attrs.length && rng.next() > 0.02 ? rng.pick(attrs) : '',
        ego_translation: [0, 0, 0],
        num_pts: rng.next() < 0.1 ? 0 : 1 + rng.int(200),
      });
    }
    gt.set(token, g);
    const p: EvalBox[] = [];
    for (let i = 0; i < o.preds; i++) {
      const near = g.length > 0 && i < g.length * 1.5 && rng.next() < 0.8;
      const base = near ? rng.pick(g) : null;
      const name = base && rng.next() < 0.9 ? base.detection_name : (DETECTION_CLASSES[rng.weighted(weights)]! as DetectionClass);
      const attrs = CLASS_ATTRIBUTES[name];
      p.push({
        sample_token: token,
        translation: base
          ? [base.translation[0] + rng.normal(0, 0.8), base.translation[1] + rng.normal(0, 0.8), base.translation[2]]
          : [e[0]! + rng.uniform(-55, 55), e[1]! + rng.uniform(-55, 55), rng.uniform(0, 2)],
        size: base ? [base.size[0] * rng.uniform(0.8, 1.2), base.size[1] * rng.uniform(0.8, 1.2), base.size[2] * rng.uniform(0.8, 1.2)] : [rng.uniform(0.4, 3), rng.uniform(0.4, 10), rng.uniform(0.8, 3.5)],
        rotation: yawQuat(rng.uniform(-Math.PI, Math.PI)),
        velocity: [rng.normal(0, 3), rng.normal(0, 3)],
        detection_name: name,
        detection_score: base ? rng.uniform(0.3, 1) : rng.uniform(0, 0.5),
        attribute_name: attrs.length ? rng.pick(attrs) : '',
        ego_translation: [0, 0, 0],
        num_pts: -1,
      });
    }
    pred.set(token, p);
  }
  return { gt, pred, ego, racks };
}

export interface BenchResult {
  gtBoxes: number;
  predBoxes: number;
  filter: { gt: FilterStats; pred: FilterStats };
  accumulateCalls: number;
  predictionsScanned: number;
  distanceEvaluations: number;
  matches: number;
  /** metrics: the devkit's computation; withDistance: the same with AP by ego distance (evaluateDetection's default). */
  seconds: { filter: number; metrics: number; withDistance: number };
  mAP: number;
  NDS: number;
  /** mAP per distance band. */
  mAPByDistance: Record<string, number>;
}

/**
 * The timed part: add_center_dist + filter on both, then every accumulate and the summary metrics; then the same with AP
 * by distance. The metrics are timed `repeat` times each (fastest kept).
 */
export function runBench(d: BenchData, repeat = 2): BenchResult {
  const config = defaultDetectionConfig();
  const stats = newAccumulateStats();
  const t0 = performance.now();
  const ego = (t: string) => d.ego.get(t)!;
  const racks = (t: string) => d.racks.get(t)!;
  const predStats = {} as FilterStats, gtStats = {} as FilterStats;
  const pred = filterEvalBoxes(addCenterDist(d.pred, ego), config.class_range, racks, predStats);
  const gt = filterEvalBoxes(addCenterDist(d.gt, ego), config.class_range, racks, gtStats);
  const t1 = performance.now();
  const { metrics } = computeDetectionMetrics(gt, pred, config, { stats });
  const mAP = metrics.meanAp, NDS = metrics.ndScore;
  let plain = (performance.now() - t1) / 1000;
  // evaluateDetection's default: the same metrics plus AP by distance from the same layout. Both are timed `repeat`
  // times, alternately, and the fastest of each kept (the first pass also warms the JIT; a shared machine is noisy).
  let withDistance = Infinity;
  let byDistance: ApByDistance | undefined;
  for (let i = 0; i < repeat; i++) {
    if (i > 0) {
      const t = performance.now();
      computeDetectionMetrics(gt, pred, config);
      plain = Math.min(plain, (performance.now() - t) / 1000);
    }
    const t = performance.now();
    byDistance = computeDetectionMetrics(gt, pred, config, { distanceBands: DEFAULT_DISTANCE_BANDS }).byDistance!;
    withDistance = Math.min(withDistance, (performance.now() - t) / 1000);
  }
  return {
    gtBoxes: countBoxes(d.gt),
    predBoxes: countBoxes(d.pred),
    filter: { gt: gtStats, pred: predStats },
    accumulateCalls: stats.calls,
    predictionsScanned: stats.predictions,
    distanceEvaluations: stats.distanceEvaluations,
    matches: stats.matches,
    seconds: { filter: (t1 - t0) / 1000, metrics: plain, withDistance },
    mAP,
    NDS,
    mAPByDistance: byDistance!.meanAp,
  };
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

function main(): void {
  const o: BenchOptions = { samples: arg('samples', 6019), preds: arg('preds', 500), gt: arg('gt', 40), seed: arg('seed', 1) };
  const tg = performance.now();
  const data = generateBenchData(o);
  const gen = (performance.now() - tg) / 1000;
  const r = runBench(data, arg('repeat', 2));
  const n = (x: number) => x.toLocaleString('en-US');
  console.log(`bevzoo eval bench: ${n(o.samples)} samples × ${n(o.preds)} predictions, ~${o.gt} GT per sample (seed ${o.seed})`);
  console.log(`generated ${n(r.predBoxes)} predictions and ${n(r.gtBoxes)} GT boxes in ${gen.toFixed(2)} s (not timed below)`);
  console.log(`filter:     predictions ${n(r.filter.pred.total)} → ${n(r.filter.pred.afterBikeRack)}, GT ${n(r.filter.gt.total)} → ${n(r.filter.gt.afterBikeRack)}`);
  console.log(`accumulate: ${r.accumulateCalls} calls, ${n(r.predictionsScanned)} predictions scanned, ${n(r.distanceEvaluations)} GT distance checks, ${n(r.matches)} matches`);
  console.log(`result:     mAP ${r.mAP.toFixed(4)}, NDS ${r.NDS.toFixed(4)}`);
  console.log(`by distance: mAP ${Object.entries(r.mAPByDistance).map(([k, v]) => `${k} m ${v.toFixed(4)}`).join(', ')}`);
  const s = r.seconds;
  console.log(`time:       filtering ${s.filter.toFixed(2)} s + metrics ${s.metrics.toFixed(2)} s = ${(s.filter + s.metrics).toFixed(2)} s (target ≤ 10 s; metrics: fastest of ${arg('repeat', 2)})`);
  const extra = s.withDistance - s.metrics;
  console.log(`            metrics with AP by distance (evaluateDetection's default) ${s.withDistance.toFixed(2)} s: +${extra.toFixed(2)} s, ` +
    `+${((100 * extra) / s.metrics).toFixed(0)} % of metrics, +${((100 * extra) / (s.filter + s.metrics)).toFixed(0)} % of filtering + metrics (same run)`);
}

const isMain = (() => {
  const entry = process.argv[1] ?? '';
  return /bench\.(c?js|ts)$/.test(entry);
})();
if (isMain) main();
