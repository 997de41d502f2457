/**
 * The sensor rig of the synthetic car, modelled on nuScenes' Renault Zoe: LIDAR_TOP with the real rig's
 * rotation (its x axis points to the right of the car, y forward) and six cameras with nuScenes' yaws,
 * mounting positions and focal lengths (scaled to the image size). Camera frames are optical: z forward,
 * x right, y down.
 */
import { axisAngleToQuat, quatMultiply, quatNormalize, yawToQuat, type Quat, type Rng, type Vec3 } from '@bevzoo/core';
import { CAMERA_CHANNELS, LIDAR_CHANNEL, type CameraChannel } from '../tables.js';

export const LIDAR_TRANSLATION: Vec3 = [0.943713, 0.0, 1.84023];
export const LIDAR_ROTATION: Quat = [0.7077955119163518, -0.006492242056004365, 0.010646214713995808, -0.7063073142877817];

/** Beam elevations of the 32-beam spinning LiDAR (HDL-32E): −30.67° .. +10.67°, lowest first (= ring index). */
export const LIDAR_BEAMS = 32;
export const LIDAR_ELEV_MIN = (-30.67 * Math.PI) / 180;
export const LIDAR_ELEV_MAX = (10.67 * Math.PI) / 180;

interface CameraMount {
  channel: CameraChannel;
  /** Yaw of the optical axis in the ego frame (degrees, left positive). */
  yawDeg: number;
  translation: Vec3;
  /** Focal length and principal point at nuScenes' 1600×900. */
  f: number; cx: number; cy: number;
}

const MOUNTS: Record<CameraChannel, CameraMount> = {
  CAM_FRONT: { channel: 'CAM_FRONT', yawDeg: 0, translation: [1.70079, 0.01595, 1.51096], f: 1266.4, cx: 816.3, cy: 491.5 },
  CAM_FRONT_RIGHT: { channel: 'CAM_FRONT_RIGHT', yawDeg: -55, translation: [1.55085, -0.4934, 1.49575], f: 1260.8, cx: 808.0, cy: 495.3 },
  CAM_FRONT_LEFT: { channel: 'CAM_FRONT_LEFT', yawDeg: 55, translation: [1.52388, 0.49463, 1.50933], f: 1272.6, cx: 826.6, cy: 479.8 },
  CAM_BACK: { channel: 'CAM_BACK', yawDeg: 180, translation: [0.02833, 0.00345, 1.5791], f: 809.2, cx: 829.2, cy: 481.8 },
  CAM_BACK_LEFT: { channel: 'CAM_BACK_LEFT', yawDeg: 110, translation: [1.0357, 0.4848, 1.59097], f: 1256.7, cx: 792.1, cy: 492.8 },
  CAM_BACK_RIGHT: { channel: 'CAM_BACK_RIGHT', yawDeg: -110, translation: [1.01488, -0.48057, 1.5624], f: 1259.5, cx: 807.3, cy: 501.2 },
};

/** Rotation taking optical-frame vectors (z forward, x right, y down) to the ego frame of a forward camera. */
const OPTICAL_TO_EGO: Quat = [0.5, -0.5, 0.5, -0.5];

export interface CameraCalib {
  channel: CameraChannel;
  translation: Vec3;
  rotation: Quat;
  /** 3×3 intrinsic matrix. */
  K: number[][];
  width: number;
  height: number;
}

export interface Rig {
  lidar: { translation: Vec3; rotation: Quat };
  cameras: CameraCalib[];
}

/**
 * The rig of one scene (log): nuScenes' mounts with small per-log calibration differences
 * (±1 cm, ±0.3° yaw, ±0.2° pitch / roll), like the real per-log calibrations.
 */
export function makeRig(width: number, height: number, rng: Rng): Rig {
  const deg = Math.PI / 180;
  const cameras = CAMERA_CHANNELS.map((ch): CameraCalib => {
    const m = MOUNTS[ch];
    const yaw = (m.yawDeg + rng.uniform(-0.3, 0.3)) * deg;
    const tilt = quatMultiply(axisAngleToQuat([0, 1, 0], rng.uniform(-0.2, 0.2) * deg), axisAngleToQuat([1, 0, 0], rng.uniform(-0.2, 0.2) * deg));
    const rotation = quatNormalize(quatMultiply(quatMultiply(yawToQuat(yaw), tilt), OPTICAL_TO_EGO));
    const translation: Vec3 = [m.translation[0] + rng.uniform(-0.01, 0.01), m.translation[1] + rng.uniform(-0.01, 0.01), m.translation[2] + rng.uniform(-0.01, 0.01)];
    const fx = (m.f * width) / 1600, fy = (m.f * height) / 900;
    const K = [[fx, 0, (m.cx * width) / 1600], [0, fy, (m.cy * height) / 900], [0, 0, 1]];
    return { channel: ch, translation, rotation, K, width, height };
  });
  return { lidar: { translation: [...LIDAR_TRANSLATION], rotation: [...LIDAR_ROTATION] }, cameras };
}

export { LIDAR_CHANNEL };
