"""
Writes src/fixtures/devkit-oracle.json: the official nuscenes-devkit's results on a seeded synthetic scenario
(ties in score and distance, NaN velocities, missing attributes, boxes at the class range, zero-point boxes,
bicycle racks). src/devkit-oracle.test.ts regenerates the same scenario with the ported numpy generator and
checks bevzoo's numbers against these.

Run with the devkit importable (pip install nuscenes-devkit, or PYTHONPATH=<devkit>/python-sdk):
    python3 packages/eval/scripts/devkit_oracle.py
"""
import json
import math
import os

import numpy as np
from nuscenes.eval.common.config import config_factory
from nuscenes.eval.common.data_classes import EvalBoxes
from nuscenes.eval.common.loaders import add_center_dist, filter_eval_boxes
from nuscenes.eval.detection.algo import accumulate, calc_ap, calc_tp
from nuscenes.eval.detection.constants import TP_METRICS
from nuscenes.eval.detection.data_classes import DetectionBox, DetectionMetricDataList, DetectionMetrics
from nuscenes.eval.detection.utils import detection_name_to_rel_attributes

SEED = 2024
N_SAMPLES = 60
DETAIL_KEYS = ['car:2.0', 'pedestrian:0.5', 'bicycle:1.0', 'barrier:2.0', 'traffic_cone:4.0', 'truck:4.0']


def q(v, step):
    return math.floor(v / step) * step


def generate(rs, classes):
    """The scenario; every draw is spelled out so that the TypeScript side can replay it."""
    samples = []
    for i in range(N_SAMPLES):
        token = 'sample-%03d' % i
        ego = [float(math.floor(rs.rand() * 200)), float(math.floor(rs.rand() * 200)), 0.0]
        racks = []
        for _ in range(rs.randint(0, 3)):
            cx = ego[0] + math.floor(rs.rand() * 40) - 20
            cy = ego[1] + math.floor(rs.rand() * 40) - 20
            size = [1 + rs.rand() * 2, 2 + rs.rand() * 4, 2.0]
            rot = [rs.rand(), 0.0, 0.0, rs.rand()]
            racks.append({'translation': [cx, cy, 0.5], 'size': size, 'rotation': rot})
        gts = []
        for _ in range(rs.randint(0, 25)):
            c = classes[rs.randint(0, 10)]
            if c in ('bicycle', 'motorcycle') and racks and rs.rand() < 0.5:
                r = racks[rs.randint(0, len(racks))]
                x = r['translation'][0] + (rs.rand() - 0.5) * 0.5
                y = r['translation'][1] + (rs.rand() - 0.5) * 0.5
            else:
                x = ego[0] + q(rs.rand() * 120 - 60, 0.5)
                y = ego[1] + q(rs.rand() * 120 - 60, 0.5)
            z = rs.rand() * 2
            size = [0.5 + rs.rand() * 3, 0.5 + rs.rand() * 5, 0.5 + rs.rand() * 2]
            rot = [rs.rand() * 2 - 1, rs.rand() * 0.2 - 0.1, rs.rand() * 0.2 - 0.1, rs.rand() * 2 - 1]
            if rs.rand() < 0.1:
                vel = [math.nan, math.nan]
            else:
                vel = [rs.rand() * 10 - 5, rs.rand() * 10 - 5]
            attrs = detection_name_to_rel_attributes(c)
            attr = ''
            if attrs:
                attr = '' if rs.rand() < 0.1 else attrs[rs.randint(0, len(attrs))]
            num_pts = int(rs.randint(0, 6))
            gts.append(dict(translation=[x, y, z], size=size, rotation=rot, velocity=vel, detection_name=c,
                            attribute_name=attr, num_pts=num_pts))
        preds = []
        for _ in range(rs.randint(0, 80)):
            if rs.rand() < 0.6 and gts:
                base = gts[rs.randint(0, len(gts))]
                c = base['detection_name'] if rs.rand() < 0.8 else classes[rs.randint(0, 10)]
                x = base['translation'][0] + q(rs.rand() * 6 - 3, 0.25)
                y = base['translation'][1] + q(rs.rand() * 6 - 3, 0.25)
            else:
                c = classes[rs.randint(0, 10)]
                x = ego[0] + q(rs.rand() * 120 - 60, 0.5)
                y = ego[1] + q(rs.rand() * 120 - 60, 0.5)
            z = rs.rand() * 2
            size = [0.5 + rs.rand() * 3, 0.5 + rs.rand() * 5, 0.5 + rs.rand() * 2]
            rot = [rs.rand() * 2 - 1, rs.rand() * 0.2 - 0.1, rs.rand() * 0.2 - 0.1, rs.rand() * 2 - 1]
            vel = [rs.rand() * 10 - 5, rs.rand() * 10 - 5]
            score = math.floor(rs.rand() * 20) / 20
            attrs = detection_name_to_rel_attributes(c)
            attr = attrs[rs.randint(0, len(attrs))] if attrs else ''
            preds.append(dict(translation=[x, y, z], size=size, rotation=rot, velocity=vel, detection_name=c,
                              detection_score=score, attribute_name=attr))
        samples.append(dict(token=token, ego=ego, racks=racks, gts=gts, preds=preds))
    return samples


class MockNusc:
    """The four lookups add_center_dist and filter_eval_boxes make."""

    def __init__(self, samples):
        self.db = {}
        for s in samples:
            anns = []
            for k, r in enumerate(s['racks']):
                ann = '%s-rack-%d' % (s['token'], k)
                anns.append(ann)
                self.db[('sample_annotation', ann)] = dict(r, category_name='static_object.bicycle_rack')
            self.db[('sample', s['token'])] = {'data': {'LIDAR_TOP': 'sd-' + s['token']}, 'anns': anns}
            self.db[('sample_data', 'sd-' + s['token'])] = {'ego_pose_token': 'ep-' + s['token']}
            self.db[('ego_pose', 'ep-' + s['token'])] = {'translation': s['ego']}

    def get(self, table, token):
        return self.db[(table, token)]


def main():
    cfg = config_factory('detection_cvpr_2019')
    classes = list(cfg.class_names)
    samples = generate(np.random.RandomState(SEED), classes)
    nusc = MockNusc(samples)
    gt, pred = EvalBoxes(), EvalBoxes()
    for s in samples:
        gt.add_boxes(s['token'], [DetectionBox(sample_token=s['token'], detection_score=-1.0, **b) for b in s['gts']])
        pred.add_boxes(s['token'], [DetectionBox(sample_token=s['token'], **b) for b in s['preds']])
    counts = {'gt': len(gt.all), 'pred': len(pred.all)}
    gt = filter_eval_boxes(nusc, add_center_dist(nusc, gt), cfg.class_range)
    pred = filter_eval_boxes(nusc, add_center_dist(nusc, pred), cfg.class_range)
    counts.update(gt_filtered=len(gt.all), pred_filtered=len(pred.all))

    # DetectionEval.evaluate(), step for step.
    mdl = DetectionMetricDataList()
    for class_name in cfg.class_names:
        for dist_th in cfg.dist_ths:
            mdl.set(class_name, dist_th, accumulate(gt, pred, class_name, cfg.dist_fcn_callable, dist_th))
    metrics = DetectionMetrics(cfg)
    for class_name in cfg.class_names:
        for dist_th in cfg.dist_ths:
            metrics.add_label_ap(class_name, dist_th, calc_ap(mdl[(class_name, dist_th)], cfg.min_recall, cfg.min_precision))
        for metric_name in TP_METRICS:
            metric_data = mdl[(class_name, cfg.dist_th_tp)]
            if class_name in ['traffic_cone'] and metric_name in ['attr_err', 'vel_err', 'orient_err']:
                tp = np.nan
            elif class_name in ['barrier'] and metric_name in ['attr_err', 'vel_err']:
                tp = np.nan
            else:
                tp = calc_tp(metric_data, cfg.min_recall, metric_name)
            metrics.add_label_tp(class_name, metric_name, tp)
    metrics.add_runtime(0.0)
    details = mdl.serialize()
    out = {
        'seed': SEED,
        'counts': counts,
        'metrics_summary': metrics.serialize(),
        'metrics_details': {k: details[k] for k in DETAIL_KEYS},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src', 'fixtures', 'devkit-oracle.json')
    with open(path, 'w') as f:
        json.dump(out, f, indent=1)  # bare NaN tokens, as the devkit writes them
    print('wrote', path, counts, 'NDS', metrics.nd_score)


if __name__ == '__main__':
    main()
