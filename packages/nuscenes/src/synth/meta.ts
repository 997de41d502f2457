/**
 * Dataset-wide records of the synthetic dataset (category, attribute, visibility, sensor), tokens, file
 * naming and the per-dataset evaluation config.
 */
import { createHash } from 'node:crypto';
import { CAMERA_CHANNELS, DETECTION_CLASSES, DETECTION_CVPR_2019, LIDAR_CHANNEL, type AttributeRecord, type CategoryRecord, type SensorRecord, type VisibilityRecord } from '../tables.js';

/** Generator version, recorded in bevzoo_synth.json; bump when the output for a seed changes. */
export const SYNTH_GENERATOR_VERSION = '1.0.0';
/** Table folder name of generated datasets. */
export const SYNTH_VERSION = 'v1.0-synth';

/** A 32-hex token, deterministic from the seed and a label. */
export function synthToken(seed: number, ...parts: (string | number)[]): string {
  return createHash('md5').update(`bevzoo-synth|${seed}|${parts.join('|')}`).digest('hex');
}

export const CATEGORIES: readonly { name: string; description: string; index: number }[] = [
  { name: 'human.pedestrian.adult', description: 'Adult subcategory.', index: 2 },
  { name: 'human.pedestrian.child', description: 'Child subcategory.', index: 3 },
  { name: 'human.pedestrian.construction_worker', description: 'Construction worker.', index: 4 },
  { name: 'movable_object.barrier', description: 'Temporary road barrier placed in the scene in order to redirect traffic or protect a work zone.', index: 9 },
  { name: 'movable_object.pushable_pullable', description: 'Objects that a pedestrian may push or pull, e.g. trash bins.', index: 11 },
  { name: 'movable_object.trafficcone', description: 'All types of traffic cone.', index: 12 },
  { name: 'static_object.bicycle_rack', description: 'Area or device intended to park or secure the bicycles in a row.', index: 13 },
  { name: 'vehicle.bicycle', description: 'Human or electric powered 2-wheeled vehicle; the box includes the rider.', index: 14 },
  { name: 'vehicle.bus.rigid', description: 'Rigid bus.', index: 16 },
  { name: 'vehicle.car', description: 'Vehicle designed primarily for personal use: sedans, hatch-backs, wagons, vans, SUVs.', index: 17 },
  { name: 'vehicle.construction', description: 'Vehicles primarily designed for construction; slow moving or stationary.', index: 18 },
  { name: 'vehicle.motorcycle', description: 'Gasoline or electric powered 2-wheeled vehicle; the box includes the rider.', index: 21 },
  { name: 'vehicle.trailer', description: 'Any vehicle trailer.', index: 22 },
  { name: 'vehicle.truck', description: 'Vehicles primarily designed to haul cargo, including semi-tractors.', index: 23 },
];

export const ATTRIBUTES: readonly { name: string; description: string }[] = [
  { name: 'vehicle.moving', description: 'Vehicle is moving.' },
  { name: 'vehicle.stopped', description: 'Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.' },
  { name: 'vehicle.parked', description: 'Vehicle is stationary (usually for longer duration) with no immediate intent to move.' },
  { name: 'cycle.with_rider', description: 'There is a rider on the bicycle or motorcycle.' },
  { name: 'cycle.without_rider', description: 'There is NO rider on the bicycle or motorcycle.' },
  { name: 'pedestrian.sitting_lying_down', description: 'The human is sitting or lying down.' },
  { name: 'pedestrian.standing', description: 'The human is standing.' },
  { name: 'pedestrian.moving', description: 'The human is moving.' },
];

export const VISIBILITY: readonly VisibilityRecord[] = [
  { token: '1', level: 'v0-40', description: 'visibility of whole object is between 0 and 40%' },
  { token: '2', level: 'v40-60', description: 'visibility of whole object is between 40 and 60%' },
  { token: '3', level: 'v60-80', description: 'visibility of whole object is between 60 and 80%' },
  { token: '4', level: 'v80-100', description: 'visibility of whole object is between 80 and 100%' },
];

/** Visibility token of a visible fraction (over all six cameras). */
export function visibilityToken(fraction: number): string {
  return fraction >= 0.8 ? '4' : fraction >= 0.6 ? '3' : fraction >= 0.4 ? '2' : '1';
}

export const SENSOR_CHANNELS = [...CAMERA_CHANNELS, LIDAR_CHANNEL] as const;

export function categoryRecords(seed: number): CategoryRecord[] {
  return CATEGORIES.map((c) => ({ token: synthToken(seed, 'category', c.name), name: c.name, description: c.description, index: c.index }));
}
export function attributeRecords(seed: number): AttributeRecord[] {
  return ATTRIBUTES.map((a) => ({ token: synthToken(seed, 'attribute', a.name), name: a.name, description: a.description }));
}
export function sensorRecords(seed: number): SensorRecord[] {
  return SENSOR_CHANNELS.map((ch) => ({ token: synthToken(seed, 'sensor', ch), channel: ch, modality: ch === LIDAR_CHANNEL ? 'lidar' : 'camera' }));
}

/** detection_cvpr_2019 in the devkit's config JSON format, class ranges scaled by `scale`. */
export function detectionConfig(scale: number): Record<string, unknown> {
  const class_range: Record<string, number> = {};
  for (const c of DETECTION_CLASSES) class_range[c] = Math.round(DETECTION_CVPR_2019.class_range[c] * scale * 10) / 10;
  return { ...DETECTION_CVPR_2019, class_range, dist_ths: [...DETECTION_CVPR_2019.dist_ths] };
}

/**
 * Path of the instance-segment PNG of a camera image, relative to the dataroot:
 * `samples/CAM_FRONT/<log>__CAM_FRONT__<ts>.jpg` → `segments/CAM_FRONT/<log>__CAM_FRONT__<ts>.png`.
 */
export function segmentPathFor(imageFilename: string): string {
  const parts = imageFilename.replace(/\\/g, '/').split('/');
  const i = parts.findIndex((p) => p === 'samples' || p === 'sweeps');
  if (i < 0 || i + 2 >= parts.length) throw new RangeError(`segmentPathFor: expected samples/<CHANNEL>/<file>.jpg, found '${imageFilename}'`);
  parts[i] = 'segments';
  const last = parts.length - 1;
  parts[last] = parts[last]!.replace(/\.(jpg|jpeg|png)$/i, '') + '.png';
  return parts.join('/');
}
