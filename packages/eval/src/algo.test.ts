/**
 * Hand-made cases. Exact expected values were printed by the devkit (test_algo.get_metric_data + calc_ap/calc_tp);
 * the comments give the reasoning.
 */
import type { DetectionClass } from '@bevzoo/nuscenes';
import { describe, expect, it } from 'vitest';
import { accumulate, accumulatePrepared, calcAp, calcTp, maxRecallInd, noPredictions, precisionCurve, prepareClass, TP_METRICS, type DetectionMetricData } from './algo.js';
import { generateBenchData } from './bench.js';
import { makeEvalBox, type EvalBox, type EvalBoxes } from './box.js';
import { defaultDetectionConfig } from './config.js';
import { addCenterDist, filterEvalBoxes } from './filter.js';
import { computeDetectionMetrics } from './metrics.js';

interface Spec { trans?: [number, number, number]; size?: [number, number, number]; score?: number; name?: DetectionClass; attr?: string; vel?: [number, number]; numPts?: number }

/** test_algo.get_metric_data's defaults: size (1,1,1), rotation (0,0,0,0), attribute vehicle.parked, car. */
function boxes(spec: Record<string, Spec[]>): EvalBoxes {
  const out: EvalBoxes = new Map();
  for (const [token, list] of Object.entries(spec)) {
    out.set(token, list.map((s) => makeEvalBox({
      sample_token: token, translation: s.trans ?? [0, 0, 0], size: s.size ?? [1, 1, 1], rotation: [0, 0, 0, 0], velocity: s.vel ?? [0, 0],
      detection_name: s.name ?? 'car', detection_score: s.score ?? -1, attribute_name: s.attr ?? 'vehicle.parked', num_pts: s.numPts ?? -1,
    })));
  }
  return out;
}

const md = (gt: Record<string, Spec[]>, pred: Record<string, Spec[]>, name: DetectionClass = 'car', th = 2): DetectionMetricData =>
  accumulate(boxes(gt), boxes(pred), name, 'center_distance', th);
const ap = (m: DetectionMetricData) => calcAp(m, 0.1, 0.1);

const car1: Spec = { trans: [1, 1, 1], score: 1.0 };
const car2: Spec = { trans: [3, 3, 1], score: 0.7 };

describe('accumulate / calc_ap (devkit TestAPSimple and more)', () => {
  it('perfect detection: AP 1', () => {
    expect(ap(md({ s: [car1] }, { s: [car1] }))).toBe(1.0000000000000004);
    expect(ap(md({ s1: [car1], s2: [car2] }, { s1: [car1], s2: [car2] }))).toBe(1.0000000000000004);
  });

  it('half the GT found: precision 1 up to recall 0.5, then 0 → AP 0.4/0.9', () => {
    const m = md({ s: [car1, car2] }, { s: [car1] });
    expect(ap(m)).toBe(0.4444444444444445);
    expect(m.precision[50]).toBe(1);
    expect(m.precision[51]).toBe(0);
    expect(maxRecallInd(m)).toBe(50);
  });

  it('a false positive above the true one', () => {
    expect(ap(md({ s: [car2] }, { s: [car1, car2] }))).toBe(0.19999999999999998);
  });

  it('a false positive below the true one: repeated recall 1.0 takes the LAST precision (0.5)', () => {
    const m = md({ s: [car1] }, { s: [car1, car2] });
    expect(m.precision[99]).toBe(1);
    expect(m.precision[100]).toBe(0.5);
    expect(ap(m)).toBe(0.9938271604938275);
  });

  it('score ties: the later box in the list is matched first', () => {
    // Both score 0.5; B (listed second) is taken first and matches at 0.2 m, A becomes a false positive.
    const m = md({ s: [{ trans: [0, 0, 0] }] }, { s: [{ trans: [0.1, 0, 0], score: 0.5 }, { trans: [0.2, 0, 0], score: 0.5 }] });
    expect(m.trans_err[50]).toBe(0.2);
    expect(Array.from(m.precision.subarray(98))).toEqual([1, 1, 0.5]);
    expect(ap(m)).toBe(0.9938271604938275);
    expect(calcTp(m, 0.1, 'trans_err')).toBe(0.19999999999999996);
  });

  it('distance ties: the first GT in the list wins', () => {
    // P1 is 1 m from both G1 and G2 and takes G1; P2 then matches G2 at 0.5 m. Had P1 taken G2, P2 would be a FP.
    const g: Record<string, Spec[]> = { s: [{ trans: [1, 0, 0], attr: 'vehicle.moving' }, { trans: [-1, 0, 0], attr: 'vehicle.parked' }] };
    const p: Record<string, Spec[]> = { s: [{ trans: [0, 0, 0], score: 0.9, attr: 'vehicle.moving' }, { trans: [-1.5, 0, 0], score: 0.5, attr: 'vehicle.moving' }] };
    const m = md(g, p);
    expect(ap(m)).toBe(1.0000000000000004);
    expect(calcTp(m, 0.1, 'attr_err')).toBe(0.1416666666666667);
    expect(calcTp(m, 0.1, 'trans_err')).toBe(0.9291666666666667);
  });

  it('match threshold is strict: distance == threshold is no match', () => {
    expect(ap(md({ s: [{ trans: [0, 0, 0] }] }, { s: [{ trans: [2, 0, 0], score: 1 }] }, 'car', 2))).toBe(0);
    expect(ap(md({ s: [{ trans: [0, 0, 0] }] }, { s: [{ trans: [1.9999999999, 0, 0], score: 1 }] }, 'car', 2))).toBe(1.0000000000000004);
  });

  it('TP errors follow the recall curve (devkit TestTPSimple.test_one_img, 3 GT)', () => {
    const gt: Record<string, Spec[]> = { s: [{ trans: [1, 1, 1] }, { trans: [10, 10, 1], size: [2, 2, 2] }, { trans: [20, 20, 1], size: [2, 4, 2] }] };
    const pred: Record<string, Spec[]> = { s: [
      { trans: [1, 1, 1], score: 1.0 }, { trans: [11, 10, 1], size: [2, 2, 2], score: 0.9 },
      { trans: [100, 10, 1], size: [2, 2, 2], score: 0.8 }, { trans: [20, 20, 1], size: [2, 4, 2], score: 0.7 },
    ] };
    const m = md(gt, pred);
    expect(calcTp(m, 0.1, 'trans_err')).toBe(0.23317592592592598);
    expect(calcTp(m, 0.1, 'scale_err')).toBe(0);
    expect(ap(m)).toBe(0.8777469135802468);
  });

  it('no GT of the class, no predictions, or no match: AP 0 and TP errors 1', () => {
    for (const m of [md({ s: [] }, { s: [car1] }), md({ s: [car1] }, { s: [] }), md({ s: [] }, { s: [] }), md({ s: [car1] }, { s: [car2] }, 'car', 1)]) {
      expect(m).toEqual(noPredictions());
      expect(ap(m)).toBe(0);
      for (const t of TP_METRICS) expect(calcTp(m, 0.1, t)).toBe(1);
    }
  });

  it('GT without attribute gives NaN attribute errors, counted as 1 only if all are NaN', () => {
    const m = md({ s: [{ trans: [0, 0, 0], attr: '' }] }, { s: [{ trans: [0, 0, 0], score: 1 }] });
    expect(Array.from(m.attr_err).every((v) => v === 1)).toBe(true);
    const v = md({ s: [{ trans: [0, 0, 0], vel: [NaN, NaN] }, { trans: [5, 0, 0], vel: [1, 0] }] }, { s: [{ trans: [0, 0, 0], score: 1 }, { trans: [5, 0, 0], score: 0.5, vel: [2, 0] }] });
    expect(v.vel_err[50]).toBe(0); // first match NaN: nothing counted yet → 0
    expect(v.vel_err[100]).toBe(1);
  });
});

describe('precisionCurve (AP-only breakdowns)', () => {
  it("is accumulate's precision curve, for every class and threshold, with no GT, no prediction or no match too", () => {
    const d = generateBenchData({ samples: 20, preds: 40, gt: 8, seed: 5 });
    for (const list of d.pred.values()) for (const b of list) b.detection_score = Math.round(b.detection_score * 4) / 4; // ties
    const config = defaultDetectionConfig();
    let withMatches = 0;
    for (const name of Object.keys(config.class_range) as DetectionClass[]) {
      const p = prepareClass(d.gt, d.pred, name);
      for (const th of [0.01, ...config.dist_ths]) {
        const full = accumulatePrepared(p, th);
        expect([name, th, precisionCurve(p, th)]).toEqual([name, th, full.precision]);
        if (full.precision[0]! > 0) withMatches++;
      }
    }
    expect(withMatches).toBeGreaterThan(20);
    const empty = prepareClass(new Map([['s', []]]), new Map([['s', []]]), 'car');
    expect(precisionCurve(empty, 2)).toEqual(noPredictions().precision);
  });
});

describe('DetectionMetrics over all classes', () => {
  it('classes without GT get AP 0 and TP 1; NaN overrides for cones and barriers; NDS from the parts', () => {
    const config = defaultDetectionConfig();
    const gt = boxes({ s: [car1, { trans: [5, 5, 0], name: 'traffic_cone', attr: '' }] });
    const pred = boxes({ s: [car1, { trans: [5, 5, 0], name: 'traffic_cone', attr: '', score: 0.9 }] });
    const { metrics } = computeDetectionMetrics(gt, pred, config);
    expect(metrics.getLabelAp('car', 0.5)).toBe(1.0000000000000004);
    expect(metrics.getLabelAp('truck', 4)).toBe(0);
    expect(metrics.getLabelTp('truck', 'trans_err')).toBe(1);
    expect(metrics.getLabelTp('traffic_cone', 'orient_err')).toBeNaN();
    expect(metrics.getLabelTp('barrier', 'vel_err')).toBeNaN();
    expect(metrics.getLabelTp('barrier', 'scale_err')).toBe(1);
    // mAP = (2 · 1.0000000000000004) / 10; trans: nanmean of 8 ones and two zeros.
    expect(metrics.meanAp).toBeCloseTo(0.2, 15);
    expect(metrics.tpErrors.trans_err).toBe(0.8);
    expect(metrics.tpErrors.orient_err).toBe(8 / 9);
    const s = metrics.tpScores;
    expect(metrics.ndScore).toBe((5 * metrics.meanAp + s.trans_err + s.scale_err + s.orient_err + s.vel_err + s.attr_err) / 10);
    const ser = metrics.serialize();
    expect(ser.label_aps.car).toEqual({ '0.5': 1.0000000000000004, '1.0': 1.0000000000000004, '2.0': 1.0000000000000004, '4.0': 1.0000000000000004 });
    expect(Object.keys(ser.label_tp_errors.car!)).toEqual(['trans_err', 'scale_err', 'orient_err', 'vel_err', 'attr_err']);
  });

  it('no predictions at all: mAP 0, NDS 0', () => {
    const config = defaultDetectionConfig();
    const { metrics } = computeDetectionMetrics(boxes({ s: [car1] }), boxes({ s: [] }), config);
    expect(metrics.meanAp).toBe(0);
    expect(metrics.ndScore).toBe(0);
  });
});

describe('filter_eval_boxes', () => {
  const config = defaultDetectionConfig();
  const mk = (token: string, name: DetectionClass, x: number, y: number, numPts = -1): EvalBox =>
    makeEvalBox({ sample_token: token, translation: [x, y, 0.5], size: [1, 1, 1], detection_name: name, num_pts: numPts });

  it('keeps boxes strictly inside the class range (xy distance to the LIDAR_TOP ego), in order', () => {
    const b = new Map([['s', [mk('s', 'barrier', 130, 100), mk('s', 'barrier', 129.999, 100), mk('s', 'car', 100, 150), mk('s', 'car', 130, 140), mk('s', 'pedestrian', 124, 132), mk('s', 'car', 100, 149.99)]]]);
    const ego = [100, 100, 7];
    const f = filterEvalBoxes(addCenterDist(b, () => ego), config.class_range, () => []);
    // barrier at exactly 30 m: dropped; car at exactly 50 m (30, 40): dropped; pedestrian at exactly 40 m: dropped.
    expect(f.get('s')!.map((x) => [x.translation[0], x.translation[1]])).toEqual([[129.999, 100], [100, 149.99]]);
    expect(b.get('s')![0]!.ego_translation).toEqual([30, 0, -6.5]);
  });

  it('drops num_pts == 0 (GT), keeps −1 (predictions)', () => {
    const b = new Map([['s', [mk('s', 'car', 1, 0, 0), mk('s', 'car', 2, 0, -1), mk('s', 'car', 3, 0, 4)]]]);
    const f = filterEvalBoxes(addCenterDist(b, () => [0, 0, 0]), config.class_range, () => []);
    expect(f.get('s')!.map((x) => x.translation[0])).toEqual([2, 3]);
  });

  it('drops bicycles and motorcycles in a bicycle rack, not other classes', () => {
    const rack = { translation: [10, 10, 0.5], size: [2, 4, 2], rotation: [1, 0, 0, 0] };
    const b = new Map([['s', [mk('s', 'bicycle', 10, 10), mk('s', 'motorcycle', 12, 11), mk('s', 'pedestrian', 10, 10), mk('s', 'bicycle', 12.01, 10)]]]);
    const stats = { total: 0, afterDistance: 0, afterPoints: 0, afterBikeRack: 0 };
    const f = filterEvalBoxes(addCenterDist(b, () => [0, 0, 0]), config.class_range, () => [rack], stats);
    expect(f.get('s')!.map((x) => x.detection_name)).toEqual(['pedestrian', 'bicycle']);
    expect(stats).toEqual({ total: 4, afterDistance: 4, afterPoints: 4, afterBikeRack: 2 });
  });
});
