import type { DetectionClass } from '@bevzoo/nuscenes';
import { describe, expect, it } from 'vitest';
import { generateBenchData } from './bench.js';
import { egoDist, makeEvalBox, type EvalBox, type EvalBoxes } from './box.js';
import { defaultDetectionConfig } from './config.js';
import { computeApByDistance, DEFAULT_DISTANCE_BANDS, distanceBands, distanceSummary, formatDistanceTable, parseDistanceBands } from './distance.js';
import { EvalConfigError } from './errors.js';
import { addCenterDist, filterEvalBoxes } from './filter.js';
import { computeDetectionMetrics } from './metrics.js';

const config = defaultDetectionConfig();

/** A box at (x, y) in a sample whose ego sits at the origin (ego_translation = translation). */
function box(token: string, name: DetectionClass, x: number, y: number, score = -1): EvalBox {
  return makeEvalBox({
    sample_token: token, translation: [x, y, 0], size: [1, 2, 1], rotation: [1, 0, 0, 0], detection_name: name,
    detection_score: score, ego_translation: [x, y, 0], num_pts: score < 0 ? 10 : -1,
  });
}

describe('distance bands', () => {
  it('turns edges into [min, max) bands with keys, and refuses bad edges naming the field', () => {
    expect(distanceBands(DEFAULT_DISTANCE_BANDS)).toEqual([
      { key: '0-20', min: 0, max: 20 }, { key: '20-30', min: 20, max: 30 }, { key: '30-40', min: 30, max: 40 }, { key: '40+', min: 40, max: Infinity },
    ]);
    expect(distanceBands([12.5])).toEqual([{ key: '12.5+', min: 12.5, max: Infinity }]);
    expect(() => distanceBands([])).toThrow(EvalConfigError);
    expect(() => distanceBands([0, 30, 20])).toThrow(/greater than the previous one \(30\), found 20 \(field distance bands\[2\]\)/);
    expect(() => distanceBands([-1, 20])).toThrow(/field distance bands\[0\]/);
    expect(() => distanceBands([0, Infinity])).toThrow(EvalConfigError);
    expect(parseDistanceBands('0, 25,50')).toEqual([0, 25, 50]);
    expect(() => parseDistanceBands('0,x,50')).toThrow(/found "x" \(field --distance-bands\[1\]\)/);
    expect(() => parseDistanceBands('0,,50')).toThrow(/field --distance-bands\[1\]/);
    expect(() => parseDistanceBands('0,50,50')).toThrow(/field --distance-bands\[2\]/);
  });
});

describe('AP by ego distance', () => {
  it('scores GT and predictions of each band on their own; a band without GT of a class has no AP and is left out of the mean', () => {
    const gt: EvalBoxes = new Map([
      ['s0', [box('s0', 'car', 10, 0), box('s0', 'car', 0, 25), box('s0', 'pedestrian', 5, 5), box('s0', 'car', 19.9, 0)]],
      ['s1', [box('s1', 'car', 35, 0)]],
    ]);
    const pred: EvalBoxes = new Map([
      ['s0', [
        box('s0', 'car', 10.1, 0, 0.9), // matches the 10 m car
        box('s0', 'pedestrian', 5, 5, 0.8), // matches the pedestrian
        box('s0', 'car', 20.1, 0, 0.7), // 0.2 m from the 19.9 m car, but across the 20 m border: FP in 20-30, and that car is missed in 0-20
        box('s0', 'pedestrian', 0, 45, 0.5), // no pedestrian GT beyond 20 m
      ]],
      ['s1', [box('s1', 'car', 35, 0.3, 0.6)]], // matches the 35 m car
    ]);
    const r = computeApByDistance(gt, pred, config);
    expect(r.bands.map((b) => b.key)).toEqual(['0-20', '20-30', '30-40', '40+']);
    // 0-20: two cars, one found at the top score: precision 1 up to recall 0.5, none after → AP over recall > 0.1 of
    // max(p − 0.1, 0) / 0.9 is 40 of the 90 points.
    expect(r.ap.car!['0-20']).toBeCloseTo(40 / 90, 12);
    expect(r.ap.car!['20-30']).toBe(0); // the 25 m car is missed; the 20.1 m prediction is a false positive
    expect(r.ap.car!['30-40']).toBeCloseTo(1, 14); // the devkit's float sum gives 1.0000000000000004
    expect(r.ap.car!['40+']).toBeNaN();
    expect(r.ap.pedestrian!['0-20']).toBeCloseTo(1, 14);
    expect(r.ap.pedestrian!['40+']).toBeNaN(); // a prediction but no GT: no AP
    expect(r.ap.barrier!['0-20']).toBeNaN();
    expect(r.gtCount.car).toEqual({ '0-20': 2, '20-30': 1, '30-40': 1, '40+': 0 });
    expect(r.gtCount.pedestrian!['0-20']).toBe(1);
    expect(r.meanAp['0-20']).toBeCloseTo((40 / 90 + 1) / 2, 12);
    expect(r.meanAp['20-30']).toBe(0);
    expect(r.meanAp['30-40']).toBe(r.ap.car!['30-40']); // the only class with GT there
    expect(r.meanAp['40+']).toBeNaN();
    // Without the band split the same boxes match (the devkit's own figure is not touched by the bands).
    expect(computeDetectionMetrics(gt, pred, config).metrics.meanDistAps.car).toBeGreaterThan(r.ap.car!['0-20']!);
  });

  it('equals the devkit algorithm run on GT and predictions filtered to each band (ties in score included), and leaves the main metrics unchanged', () => {
    const d = generateBenchData({ samples: 40, preds: 60, gt: 15, seed: 7 });
    for (const list of d.pred.values()) for (const b of list) b.detection_score = Math.round(b.detection_score * 10) / 10; // many ties
    const pred = filterEvalBoxes(addCenterDist(d.pred, (t) => d.ego.get(t)!), config.class_range, (t) => d.racks.get(t)!);
    const gt = filterEvalBoxes(addCenterDist(d.gt, (t) => d.ego.get(t)!), config.class_range, (t) => d.racks.get(t)!);
    const edges = [0, 15, 30, 42];
    const r = computeApByDistance(gt, pred, config, edges);
    let compared = 0;
    for (const band of r.bands) {
      const keep = (boxes: EvalBoxes): EvalBoxes => new Map([...boxes].map(([t, l]) => [t, l.filter((b) => egoDist(b) >= band.min && egoDist(b) < band.max)]));
      const bGt = keep(gt), bPred = keep(pred);
      const ref = computeDetectionMetrics(bGt, bPred, config).metrics.meanDistAps;
      for (const c of Object.keys(ref)) {
        const n = [...bGt.values()].flat().filter((b) => b.detection_name === c).length;
        expect(r.gtCount[c]![band.key]).toBe(n);
        if (n === 0) expect(r.ap[c]![band.key]).toBeNaN();
        else {
          expect([c, band.key, r.ap[c]![band.key]]).toEqual([c, band.key, ref[c]]);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(25);
    expect(Object.values(r.ap).some((aps) => Object.values(aps).some((v) => v > 0 && v < 1))).toBe(true);

    const plain = computeDetectionMetrics(gt, pred, config);
    const withBands = computeDetectionMetrics(gt, pred, config, { distanceBands: edges });
    expect(withBands.byDistance).toEqual(r);
    expect(plain.byDistance).toBeUndefined();
    const strip = (s: ReturnType<typeof plain.metrics.serialize>) => ({ ...s, eval_time: 0 });
    expect(strip(withBands.metrics.serialize())).toEqual(strip(plain.metrics.serialize()));
    expect(withBands.metricDataList.serialize()).toEqual(plain.metricDataList.serialize());
  });

  it('formats a table: AP with GT counts per class and band, then the band mAP', () => {
    const gt: EvalBoxes = new Map([['s0', [box('s0', 'car', 10, 0)]]]);
    const pred: EvalBoxes = new Map([['s0', [box('s0', 'car', 10, 0, 0.9)]]]);
    const text = formatDistanceTable(distanceSummary(computeApByDistance(gt, pred, config, [0, 20])));
    expect(text).toMatch(/^car\s+\t1\.000 \(1\)\s*\t— \(0\)\s*$/m);
    expect(text).toMatch(/^bus\s+\t— \(0\)/m);
    expect(text).toMatch(/^mAP\s+\t1\.000\s*\t—\s*$/m);
  });
});
