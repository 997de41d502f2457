/**
 * The devkit's add_center_dist and filter_eval_boxes (eval/common/loaders.py), independent of the reader: the
 * ego position and the bicycle racks of a sample come from callbacks.
 */
import type { DetectionClass } from '@bevzoo/nuscenes';
import { egoDist, pointsInBoxTest, type EvalBoxes, type PointInBoxTest, type RawBox } from './box.js';

/**
 * Set every box's ego_translation to its centre minus the ego translation of its sample's LIDAR_TOP keyframe
 * (mutates the boxes in place, like the devkit; returns the same grouping).
 */
export function addCenterDist(boxes: EvalBoxes, egoTranslationOf: (sampleToken: string) => readonly number[]): EvalBoxes {
  for (const [token, list] of boxes) {
    if (list.length === 0) continue;
    const ego = egoTranslationOf(token);
    const ex = ego[0]!, ey = ego[1]!, ez = ego[2]!;
    for (const b of list) b.ego_translation = [b.translation[0] - ex, b.translation[1] - ey, b.translation[2] - ez];
  }
  return boxes;
}

export interface FilterStats {
  total: number;
  afterDistance: number;
  afterPoints: number;
  afterBikeRack: number;
}

/**
 * filter_eval_boxes: per sample, in order, keep boxes with ego_dist < class_range[class] (strict), drop boxes
 * with num_pts == 0, then drop bicycle / motorcycle boxes whose centre lies in one of the sample's
 * static_object.bicycle_rack boxes (inclusive). Returns a new grouping with the same sample keys; the boxes
 * themselves are shared.
 */
export function filterEvalBoxes(
  boxes: EvalBoxes,
  classRange: Readonly<Record<DetectionClass, number>>,
  bikeRacksOf: (sampleToken: string) => readonly RawBox[],
  stats?: FilterStats,
): EvalBoxes {
  const out: EvalBoxes = new Map();
  let total = 0, afterDistance = 0, afterPoints = 0, afterBikeRack = 0;
  for (const [token, list] of boxes) {
    total += list.length;
    const kept = [];
    let nDist = 0;
    let racks: PointInBoxTest[] | null = null;
    for (const b of list) {
      if (!(egoDist(b) < classRange[b.detection_name])) continue;
      nDist++;
      if (b.num_pts === 0) continue;
      if (b.detection_name === 'bicycle' || b.detection_name === 'motorcycle') {
        racks ??= bikeRacksOf(token).map(pointsInBoxTest);
        let inRack = false;
        for (const r of racks) if (r.contains(b.translation)) inRack = true;
        if (inRack) {
          afterPoints++;
          continue;
        }
      }
      afterPoints++;
      kept.push(b);
    }
    afterDistance += nDist;
    afterBikeRack += kept.length;
    out.set(token, kept);
  }
  if (stats) Object.assign(stats, { total, afterDistance, afterPoints, afterBikeRack });
  return out;
}
