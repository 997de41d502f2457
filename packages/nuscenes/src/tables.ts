/**
 * nuScenes table records exactly as stored in `<dataroot>/<version>/<table>.json`. Every record has a
 * string `token`; `""` means "no link". Fields marked "derived" are added at load time, as the devkit does.
 * This file is the contract between the reader, the synthetic generator (which writes these records) and
 * the evaluation (which reads ground truth through them).
 */
import type { Quat, Vec3 } from '@bevzoo/core';

export interface SceneRecord { token: string; name: string; description: string; log_token: string; nbr_samples: number; first_sample_token: string; last_sample_token: string }
export interface SampleRecord {
  token: string; timestamp: number; scene_token: string; prev: string; next: string;
  /** derived: channel → keyframe sample_data token */
  data?: Record<string, string>;
  /** derived: annotation tokens in the row order of sample_annotation.json */
  anns?: string[];
}
export interface SampleDataRecord {
  token: string; sample_token: string; ego_pose_token: string; calibrated_sensor_token: string; filename: string;
  fileformat: string; width: number; height: number; timestamp: number; is_key_frame: boolean; prev: string; next: string;
  /** derived */ sensor_modality?: string;
  /** derived */ channel?: string;
}
export interface SampleAnnotationRecord {
  token: string; sample_token: string; instance_token: string; attribute_tokens: string[]; visibility_token: string;
  translation: Vec3; /** width, length, height */ size: Vec3; rotation: Quat; num_lidar_pts: number; num_radar_pts: number;
  prev: string; next: string;
  /** derived */ category_name?: string;
}
export interface InstanceRecord { token: string; category_token: string; nbr_annotations: number; first_annotation_token: string; last_annotation_token: string }
export interface CategoryRecord { token: string; name: string; description: string; index?: number }
export interface AttributeRecord { token: string; name: string; description: string }
export interface VisibilityRecord { token: string; level: string; description: string }
export interface CalibratedSensorRecord { token: string; sensor_token: string; translation: Vec3; rotation: Quat; camera_intrinsic: number[][] }
export interface SensorRecord { token: string; channel: string; modality: 'camera' | 'lidar' | 'radar' }
export interface EgoPoseRecord { token: string; translation: Vec3; rotation: Quat; timestamp: number }
export interface LogRecord { token: string; logfile: string; vehicle: string; date_captured: string; location: string; /** derived */ map_token?: string }
export interface MapRecord { token: string; log_tokens: string[]; category: string; filename: string }

export interface TableRecords {
  scene: SceneRecord; sample: SampleRecord; sample_data: SampleDataRecord; sample_annotation: SampleAnnotationRecord;
  instance: InstanceRecord; category: CategoryRecord; attribute: AttributeRecord; visibility: VisibilityRecord;
  calibrated_sensor: CalibratedSensorRecord; sensor: SensorRecord; ego_pose: EgoPoseRecord; log: LogRecord; map: MapRecord;
}
export type TableName = keyof TableRecords;
export const TABLE_NAMES: readonly TableName[] = [
  'category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose', 'log', 'scene',
  'sample', 'sample_data', 'sample_annotation', 'map',
];

export const CAMERA_CHANNELS = ['CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT'] as const;
export type CameraChannel = (typeof CAMERA_CHANNELS)[number];
export const LIDAR_CHANNEL = 'LIDAR_TOP';

/** The 10 detection classes in the order of detection_cvpr_2019. */
export const DETECTION_CLASSES = ['car', 'truck', 'bus', 'trailer', 'construction_vehicle', 'pedestrian', 'motorcycle', 'bicycle', 'traffic_cone', 'barrier'] as const;
export type DetectionClass = (typeof DETECTION_CLASSES)[number];

/** The devkit's category_to_detection_name. */
export function categoryToDetectionName(category: string): DetectionClass | null {
  switch (category) {
    case 'vehicle.car': return 'car';
    case 'vehicle.truck': return 'truck';
    case 'vehicle.bus.bendy': case 'vehicle.bus.rigid': return 'bus';
    case 'vehicle.trailer': return 'trailer';
    case 'vehicle.construction': return 'construction_vehicle';
    case 'human.pedestrian.adult': case 'human.pedestrian.child': case 'human.pedestrian.construction_worker': case 'human.pedestrian.police_officer': return 'pedestrian';
    case 'vehicle.motorcycle': return 'motorcycle';
    case 'vehicle.bicycle': return 'bicycle';
    case 'movable_object.trafficcone': return 'traffic_cone';
    case 'movable_object.barrier': return 'barrier';
    default: return null;
  }
}

/** Valid attributes per detection class (the devkit's detection_name → attributes). */
export const CLASS_ATTRIBUTES: Record<DetectionClass, readonly string[]> = {
  car: ['vehicle.moving', 'vehicle.parked', 'vehicle.stopped'],
  truck: ['vehicle.moving', 'vehicle.parked', 'vehicle.stopped'],
  bus: ['vehicle.moving', 'vehicle.parked', 'vehicle.stopped'],
  trailer: ['vehicle.moving', 'vehicle.parked', 'vehicle.stopped'],
  construction_vehicle: ['vehicle.moving', 'vehicle.parked', 'vehicle.stopped'],
  pedestrian: ['pedestrian.moving', 'pedestrian.sitting_lying_down', 'pedestrian.standing'],
  motorcycle: ['cycle.with_rider', 'cycle.without_rider'],
  bicycle: ['cycle.with_rider', 'cycle.without_rider'],
  traffic_cone: [],
  barrier: [],
};

/** Occ3D-nuScenes semantic classes (index = label). */
export const OCC_CLASSES = [
  'others', 'barrier', 'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle', 'pedestrian', 'traffic_cone',
  'trailer', 'truck', 'driveable_surface', 'other_flat', 'sidewalk', 'terrain', 'manmade', 'vegetation', 'free',
] as const;
export const OCC_FREE = 17;
/** Occ3D grid: 200×200×16 voxels of 0.4 m over x, y ∈ [−40, 40], z ∈ [−1, 5.4], indexed [x, y, z]. */
export const OCC_GRID = { size: [200, 200, 16] as const, voxel: 0.4, min: [-40, -40, -1] as const, max: [40, 40, 5.4] as const };

/** The devkit's default detection config detection_cvpr_2019, in its JSON format (used by the evaluation and scaled by the synthetic generator). */
export const DETECTION_CVPR_2019 = Object.freeze({
  class_range: Object.freeze({
    car: 50, truck: 50, bus: 50, trailer: 50, construction_vehicle: 50, pedestrian: 40, motorcycle: 40, bicycle: 40, traffic_cone: 30, barrier: 30,
  } satisfies Record<DetectionClass, number>),
  dist_fcn: 'center_distance' as const,
  dist_ths: Object.freeze([0.5, 1.0, 2.0, 4.0]),
  dist_th_tp: 2.0,
  min_recall: 0.1,
  min_precision: 0.1,
  max_boxes_per_sample: 500,
  mean_ap_weight: 5,
});
