/**
 * Ego-frame detections (what a model decodes) → nuScenes submission boxes (global frame), the way mmdet3d's
 * NuScenesDataset formats results: keyframe ego pose of LIDAR_TOP, yaw composed with the ego rotation, velocity
 * rotated into the global frame, and the default attribute by class and speed.
 */
import { quatMultiply, quatRotate, yawToQuat, type Quat, type Vec3 } from '@bevzoo/core';
import { DETECTION_CLASSES, LIDAR_CHANNEL, type DetectionClass } from '@bevzoo/nuscenes';
import type { EvalBox } from './box.js';
import type { DetectionDb } from './evaluate.js';
import { EvalInputError } from './errors.js';

/** A detection in the keyframe ego frame; `label` indexes DETECTION_CLASSES. */
export interface EgoDetection {
  center: readonly number[];
  /** width, length, height */
  size: readonly number[];
  yaw: number;
  velocity: readonly number[];
  score: number;
  label: number;
}

/** mmdet3d's DefaultAttribute (used when the speed rule does not decide). */
export const DEFAULT_ATTRIBUTE: Record<DetectionClass, string> = {
  car: 'vehicle.parked', pedestrian: 'pedestrian.moving', trailer: 'vehicle.parked', truck: 'vehicle.parked', bus: 'vehicle.moving',
  motorcycle: 'cycle.without_rider', construction_vehicle: 'vehicle.parked', bicycle: 'cycle.without_rider', barrier: '', traffic_cone: '',
};

/** The attribute mmdet3d assigns from the class and the predicted speed (threshold 0.2 m/s). */
export function defaultAttribute(name: DetectionClass, vx: number, vy: number): string {
  if (Math.hypot(vx, vy) > 0.2) {
    if (name === 'car' || name === 'construction_vehicle' || name === 'bus' || name === 'truck' || name === 'trailer') return 'vehicle.moving';
    if (name === 'bicycle' || name === 'motorcycle') return 'cycle.with_rider';
    return DEFAULT_ATTRIBUTE[name];
  }
  if (name === 'pedestrian') return 'pedestrian.standing';
  if (name === 'bus') return 'vehicle.stopped';
  return DEFAULT_ATTRIBUTE[name];
}

/** The LIDAR_TOP keyframe ego pose of a sample (the frame models predict in). */
export function keyframeEgoPose(nusc: DetectionDb, sampleToken: string): { rotation: Quat; translation: Vec3 } {
  const sd = nusc.get('sample', sampleToken).data?.[LIDAR_CHANNEL];
  if (!sd) throw new EvalInputError(`a ${LIDAR_CHANNEL} keyframe`, 'none', { sampleToken, field: `data.${LIDAR_CHANNEL}` });
  const ep = nusc.get('ego_pose', nusc.get('sample_data', sd).ego_pose_token);
  return { rotation: ep.rotation, translation: ep.translation };
}

/** Convert one sample's ego-frame detections into submission boxes (highest scores kept when over `maxBoxes`). */
export function egoDetectionsToResults(nusc: DetectionDb, sampleToken: string, dets: readonly EgoDetection[], maxBoxes = 500): EvalBox[] {
  const pose = keyframeEgoPose(nusc, sampleToken);
  const sorted = [...dets].sort((a, b) => b.score - a.score).slice(0, maxBoxes);
  return sorted.map((d) => {
    const name = DETECTION_CLASSES[d.label];
    if (!name) throw new EvalInputError(`a label in 0..${DETECTION_CLASSES.length - 1}`, String(d.label), { sampleToken, field: 'label' });
    const c = quatRotate(pose.rotation, [d.center[0]!, d.center[1]!, d.center[2]!]);
    const v = quatRotate(pose.rotation, [d.velocity[0] ?? 0, d.velocity[1] ?? 0, 0]);
    const q = quatMultiply(pose.rotation, yawToQuat(d.yaw));
    return {
      sample_token: sampleToken,
      translation: [c[0] + pose.translation[0], c[1] + pose.translation[1], c[2] + pose.translation[2]],
      size: [d.size[0]!, d.size[1]!, d.size[2]!],
      rotation: q,
      velocity: [v[0], v[1]],
      detection_name: name,
      detection_score: d.score,
      attribute_name: defaultAttribute(name, v[0], v[1]),
      ego_translation: [0, 0, 0],
      num_pts: -1,
    };
  });
}
