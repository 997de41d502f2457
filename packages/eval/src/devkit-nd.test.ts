/**
 * Reproduces the devkit's own unit test test_nd_score (python-sdk/nuscenes/eval/detection/tests/test_algo.py):
 * random.seed(42), np.random.seed(42), for each class 30 samples × (3 GT, 25 predictions), accumulate with
 * dist_th = 2 for every threshold, no filtering. The expected numbers are the devkit's.
 */
import { CLASS_ATTRIBUTES, type DetectionClass } from '@bevzoo/nuscenes';
import { describe, expect, it } from 'vitest';
import { accumulate, calcAp, calcTp, TP_METRICS } from './algo.js';
import type { EvalBox, EvalBoxes } from './box.js';
import { configClassNames, DETECTION_CVPR_2019, defaultDetectionConfig } from './config.js';
import { DetectionMetricDataList, DetectionMetrics, isNanOverride } from './metrics.js';
import { NumpyRandomState, PythonRandom } from './mt19937.js';

/** TestAlgo._mock_results, draw for draw: numpy for geometry and attributes, Python's random for score and ego. */
function mockResults(np: NumpyRandomState, py: PythonRandom, nsamples: number, ngt: number, npred: number, name: DetectionClass) {
  const randomAttr = (): string => {
    const rel = CLASS_ATTRIBUTES[name];
    return rel.length === 0 ? '' : rel[np.randint(0, rel.length)]!;
  };
  const makeBox = (token: string, scale: number): EvalBox => {
    const [tx, ty] = np.rand(2).map((v) => v * scale) as [number, number];
    const size = np.rand(3).map((v) => v * 4) as [number, number, number];
    const rotation = np.rand(4) as [number, number, number, number];
    const velocity = np.rand(3).slice(0, 2).map((v) => v * 4) as [number, number];
    const detection_score = py.random();
    const attribute_name = randomAttr();
    const ego_translation: [number, number, number] = [py.random() * 10, 0, 0];
    return { sample_token: token, translation: [tx, ty, 0], size, rotation, velocity, detection_name: name, detection_score, attribute_name, ego_translation, num_pts: -1 };
  };
  const gt: EvalBoxes = new Map();
  const pred: EvalBoxes = new Map();
  for (let s = 0; s < nsamples; s++) {
    const list: EvalBox[] = [];
    for (let b = 0; b < ngt; b++) list.push(makeBox(String(s), 15));
    gt.set(String(s), list);
  }
  for (let s = 0; s < nsamples; s++) {
    const list: EvalBox[] = [];
    for (let b = 0; b < npred; b++) list.push(makeBox(String(s), 10));
    pred.set(String(s), list);
  }
  return { gt, pred };
}

describe('devkit test_nd_score', () => {
  it('generators match numpy / CPython seeded with 42', () => {
    expect(new NumpyRandomState(42).random()).toBe(0.3745401188473625);
    expect(new PythonRandom(42).random()).toBe(0.6394267984578837);
  });

  it('reproduces NDS 0.08606662159639042 and its parts exactly', () => {
    const config = defaultDetectionConfig();
    const np = new NumpyRandomState(42);
    const py = new PythonRandom(42);
    const mdl = new DetectionMetricDataList();
    for (const className of configClassNames(config)) {
      const { gt, pred } = mockResults(np, py, 30, 3, 25, className);
      for (const th of config.dist_ths) mdl.set(className, th, accumulate(gt, pred, className, 'center_distance', 2));
    }
    const metrics = new DetectionMetrics(config);
    for (const className of configClassNames(config)) {
      for (const th of config.dist_ths) metrics.addLabelAp(className, th, calcAp(mdl.get(className, th), config.min_recall, config.min_precision));
      for (const m of TP_METRICS) {
        metrics.addLabelTp(className, m, isNanOverride(className, m) ? NaN : calcTp(mdl.get(className, config.dist_th_tp), config.min_recall, m));
      }
    }
    const tp = metrics.tpErrors;
    expect(metrics.meanAp).toBe(0.005946235995084162);
    expect(tp.trans_err).toBe(1.307616585704357);
    expect(tp.scale_err).toBe(0.8349830962574011);
    expect(tp.orient_err).toBe(0.7255479846417405);
    expect(tp.vel_err).toBe(2.1003983950915357);
    expect(tp.attr_err).toBe(0.608533883112375);
    expect(metrics.ndScore).toBe(0.08606662159639042);
    expect(config).toEqual(DETECTION_CVPR_2019);
  });
});
