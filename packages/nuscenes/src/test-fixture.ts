/**
 * Test helper (not exported): a tiny hand-written nuScenes-format folder — 1 scene, 3 keyframes, 6 cameras + LIDAR_TOP
 * (with sweeps), a moving car seen in every sample, a pedestrian seen once, an unmapped animal — with exact truths
 * the tests compare against.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  composeTransforms, invertTransform, matrixToQuat, quatMultiply, transformPoint, yawToQuat,
  type Mat3, type Quat, type RigidTransform, type Vec3,
} from '@bevzoo/core';
import { encode as encodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { CAMERA_CHANNELS } from './tables.js';

export const FIX_W = 96, FIX_H = 54;
export const FIX_K: Mat3 = [60, 0, 47.5, 0, 60, 26.5, 0, 0, 1];
/** Pixel where the marker of CAM_FRONT in sample 0 is drawn, and its depth. */
export const FIX_MARKER = { u: 60, v: 30, depth: 8 };
const CAM_YAWS: Record<string, number> = {
  CAM_FRONT: 0, CAM_FRONT_RIGHT: -0.96, CAM_FRONT_LEFT: 0.96, CAM_BACK: Math.PI, CAM_BACK_LEFT: 1.92, CAM_BACK_RIGHT: -1.92,
};

export interface Fixture {
  dataroot: string;
  version: string;
  sceneName: string;
  samples: string[];
  /** LIDAR_TOP sample_data tokens: keyframes per sample, and the whole chain in time order. */
  lidarKeyframes: string[];
  lidarChain: string[];
  /** annotation tokens: car per sample, pedestrian (sample 1), animal (sample 0) */
  car: string[];
  pedestrian: string;
  animal: string;
  /** The marker point in global coordinates (visible in CAM_FRONT of sample 0 at FIX_MARKER). */
  markerGlobal: Vec3;
  /** Points inside the car box per keyframe (before remove_close, which does not touch them). */
  carPointsPerKeyframe: number[];
  /** Raw point count of each LIDAR_TOP file (chain order) and how many are within the 1 m remove_close square. */
  rawCounts: number[];
  closeCounts: number[];
  ego: Record<string, RigidTransform>;
  lidarCalib: RigidTransform;
}

const tok = (s: string) => s.padEnd(32, '0').slice(0, 32);

/** Camera axes (x right, y down, z forward) → ego axes, then yawed. */
function camRotation(yaw: number): Quat {
  const base = matrixToQuat([0, 0, 1, -1, 0, 0, 0, -1, 0]);
  return quatMultiply(yawToQuat(yaw), base);
}

const jpegMemo = new Map<boolean, Uint8Array>();
/** The fixture's camera image: a colour ramp, with a 5×5 white marker at FIX_MARKER when `marker`. */
function fixtureJpeg(marker: boolean): Uint8Array {
  const hit = jpegMemo.get(marker);
  if (hit) return hit;
  const data = Buffer.alloc(FIX_W * FIX_H * 4);
  for (let y = 0; y < FIX_H; y++)
    for (let x = 0; x < FIX_W; x++) {
      const o = (y * FIX_W + x) * 4;
      data[o] = 40 + x; data[o + 1] = 30 + y; data[o + 2] = 60; data[o + 3] = 255;
    }
  if (marker) {
    const { u, v } = FIX_MARKER;
    for (let y = v - 2; y <= v + 2; y++)
      for (let x = u - 2; x <= u + 2; x++) {
        const o = (y * FIX_W + x) * 4;
        data[o] = 255; data[o + 1] = 255; data[o + 2] = 255;
      }
  }
  const out = encodeJpeg({ data, width: FIX_W, height: FIX_H }, 95).data;
  jpegMemo.set(marker, out);
  return out;
}

export async function buildFixture(dir?: string): Promise<Fixture> {
  const dataroot = dir ?? (await mkdtemp(join(tmpdir(), 'bevzoo-nusc-fixture-')));
  const version = 'v1.0-mini';
  await mkdir(join(dataroot, version), { recursive: true });
  await mkdir(join(dataroot, 'maps'), { recursive: true });
  for (const ch of [...CAMERA_CHANNELS, 'LIDAR_TOP']) {
    await mkdir(join(dataroot, 'samples', ch), { recursive: true });
    await mkdir(join(dataroot, 'sweeps', ch), { recursive: true });
  }
  const logToken = tok('log0'), mapToken = tok('map0'), sceneToken = tok('scene0');
  const t0 = 1532402927647951;
  const samples = [0, 1, 2].map((i) => tok(`sample${i}`));
  const sampleTs = [0, 1, 2].map((i) => t0 + i * 500000);

  // Sensors and calibration.
  const sensor: object[] = [], calibrated: object[] = [];
  const lidarCalib: RigidTransform = { translation: [0.94, 0.0, 1.84], rotation: yawToQuat(Math.PI / 2) };
  sensor.push({ token: tok('sensor_lidar'), channel: 'LIDAR_TOP', modality: 'lidar' });
  calibrated.push({ token: tok('cs_lidar'), sensor_token: tok('sensor_lidar'), translation: lidarCalib.translation, rotation: lidarCalib.rotation, camera_intrinsic: [] });
  const camCalib: Record<string, RigidTransform> = {};
  for (const ch of CAMERA_CHANNELS) {
    const yaw = CAM_YAWS[ch]!;
    camCalib[ch] = { translation: [1.5 * Math.cos(yaw), 1.0 * Math.sin(yaw), 1.5], rotation: camRotation(yaw) };
    sensor.push({ token: tok(`sensor_${ch}`), channel: ch, modality: 'camera' });
    calibrated.push({
      token: tok(`cs_${ch}`), sensor_token: tok(`sensor_${ch}`), translation: camCalib[ch]!.translation, rotation: camCalib[ch]!.rotation,
      camera_intrinsic: [[FIX_K[0], FIX_K[1], FIX_K[2]], [FIX_K[3], FIX_K[4], FIX_K[5]], [FIX_K[6], FIX_K[7], FIX_K[8]]],
    });
  }

  // Ego poses: the car drives along +x with a slight turn.
  const egoAt = (ts: number): RigidTransform => {
    const t = (ts - t0) * 1e-6;
    return { translation: [100 + 8 * t, 200 + 0.5 * t, 0.1], rotation: yawToQuat(0.3 + 0.05 * t) };
  };
  const egoPoses: object[] = [];
  const ego: Record<string, RigidTransform> = {};
  const addEgo = (token: string, ts: number) => {
    const e = egoAt(ts);
    ego[token] = e;
    egoPoses.push({ token, timestamp: ts, translation: e.translation, rotation: e.rotation });
  };

  // Objects: car at 5 m/s along global x, pedestrian standing, animal.
  const carAt = (ts: number): { center: Vec3; yaw: number } => {
    const t = (ts - t0) * 1e-6;
    return { center: [110 + 5 * t, 203, 1.0], yaw: 0.1 };
  };
  const carSize: Vec3 = [1.9, 4.5, 1.6];

  // LIDAR chain: sweep before each keyframe.
  const sampleData: object[] = [];
  const lidarChain: string[] = [], lidarKeyframes: string[] = [];
  const chainTs: number[] = [];
  const chainSample: string[] = [];
  for (let i = 0; i < 3; i++) {
    lidarChain.push(tok(`sd_lidar_sweep${i}`));
    chainTs.push(sampleTs[i]! - 250000);
    chainSample.push(samples[i]!);
    lidarChain.push(tok(`sd_lidar_key${i}`));
    lidarKeyframes.push(tok(`sd_lidar_key${i}`));
    chainTs.push(sampleTs[i]!);
    chainSample.push(samples[i]!);
  }
  const rawCounts: number[] = [], closeCounts: number[] = [];
  const carPointsPerKeyframe: number[] = [];
  for (let k = 0; k < lidarChain.length; k++) {
    const token = lidarChain[k]!, ts = chainTs[k]!, isKey = k % 2 === 1;
    addEgo(token, ts);
    const file = `${isKey ? 'samples' : 'sweeps'}/LIDAR_TOP/n000-2018-07-24__LIDAR_TOP__${ts}.pcd.bin`;
    // Points: a grid inside the car box (at its position at this time), ground points, and points near the sensor.
    const sensorFromGlobal = invertTransform(composeTransforms(ego[token]!, lidarCalib));
    const car = carAt(ts);
    const pts: number[] = [];
    let inCar = 0;
    for (let a = -2; a <= 2; a++)
      for (let b = -1; b <= 1; b++)
        for (let c = -1; c <= 1; c++) {
          const local: Vec3 = [a * 0.8, b * 0.6, c * 0.5];
          const g: Vec3 = [
            car.center[0] + Math.cos(car.yaw) * local[0] - Math.sin(car.yaw) * local[1],
            car.center[1] + Math.sin(car.yaw) * local[0] + Math.cos(car.yaw) * local[1],
            car.center[2] + local[2],
          ];
          const p = transformPoint(sensorFromGlobal, g);
          pts.push(p[0], p[1], p[2], 50 + a, 10 + c);
          inCar++;
        }
    for (let gx = -20; gx <= 20; gx += 5)
      for (let gy = -20; gy <= 20; gy += 5) pts.push(gx + 0.3, gy + 0.2, -1.8, 5, 1);
    const close: Vec3[] = [[0.2, 0.3, 0.1], [-0.5, 0.9, -0.2], [0.99, -0.99, 0]];
    for (const c of close) pts.push(c[0], c[1], c[2], 1, 0);
    rawCounts.push(pts.length / 5);
    let nClose = 0;
    for (let i = 0; i < pts.length; i += 5) if (Math.abs(pts[i]!) < 1 && Math.abs(pts[i + 1]!) < 1) nClose++;
    closeCounts.push(nClose);
    if (isKey) carPointsPerKeyframe.push(inCar);
    await writeFile(join(dataroot, file), Buffer.from(new Float32Array(pts).buffer));
    sampleData.push({
      token, sample_token: chainSample[k], ego_pose_token: token, calibrated_sensor_token: tok('cs_lidar'), timestamp: ts,
      fileformat: 'pcd', is_key_frame: isKey, height: 0, width: 0, filename: file,
      prev: k > 0 ? lidarChain[k - 1] : '', next: k < lidarChain.length - 1 ? lidarChain[k + 1] : '',
    });
  }

  // Marker: a point 8 m in front of CAM_FRONT of sample 0, drawn at FIX_MARKER.
  const Kinv = [1 / FIX_K[0], 0, -FIX_K[2] / FIX_K[0], 0, 1 / FIX_K[4], -FIX_K[5] / FIX_K[4]];
  const { u, v, depth } = FIX_MARKER;
  const markerCam: Vec3 = [(Kinv[0]! * u + Kinv[2]!) * depth, (Kinv[4]! * v + Kinv[5]!) * depth, depth];
  let markerGlobal: Vec3 = [0, 0, 0];

  // Cameras: one keyframe image per sample (ts offset per camera so their ego poses differ from the LiDAR's).
  CAMERA_CHANNELS.forEach((ch, ci) => {
    for (let i = 0; i < 3; i++) {
      const token = tok(`sd_${ch}_${i}`);
      const ts = sampleTs[i]! + 10000 * (ci + 1);
      addEgo(token, ts);
      if (i === 0 && ch === 'CAM_FRONT') markerGlobal = transformPoint(composeTransforms(ego[token]!, camCalib[ch]!), markerCam);
      sampleData.push({
        token, sample_token: samples[i], ego_pose_token: token, calibrated_sensor_token: tok(`cs_${ch}`), timestamp: ts,
        fileformat: 'jpg', is_key_frame: true, height: FIX_H, width: FIX_W, filename: `samples/${ch}/n000-2018-07-24__${ch}__${ts}.jpg`,
        prev: i > 0 ? tok(`sd_${ch}_${i - 1}`) : '', next: i < 2 ? tok(`sd_${ch}_${i + 1}`) : '',
      });
    }
  });
  const markerJpeg = fixtureJpeg(true), plainJpeg = fixtureJpeg(false);
  for (const sd of sampleData as { fileformat: string; filename: string; token: string }[]) {
    if (sd.fileformat !== 'jpg') continue;
    await writeFile(join(dataroot, sd.filename), sd.token === tok('sd_CAM_FRONT_0') ? markerJpeg : plainJpeg);
  }

  // Annotations.
  const car = [0, 1, 2].map((i) => tok(`ann_car${i}`));
  const pedestrian = tok('ann_ped'), animal = tok('ann_animal');
  const anns: object[] = [];
  for (let i = 0; i < 3; i++) {
    const c = carAt(sampleTs[i]!);
    // num_lidar_pts = the grid points placed inside the box in the keyframe cloud.
    anns.push({
      token: car[i], sample_token: samples[i], instance_token: tok('inst_car'), attribute_tokens: [tok('attr_vmoving')], visibility_token: '4',
      translation: c.center, size: carSize, rotation: yawToQuat(c.yaw), num_lidar_pts: carPointsPerKeyframe[i], num_radar_pts: 0,
      prev: i > 0 ? car[i - 1] : '', next: i < 2 ? car[i + 1] : '',
    });
  }
  anns.push({
    token: pedestrian, sample_token: samples[1], instance_token: tok('inst_ped'), attribute_tokens: [tok('attr_pstanding')], visibility_token: '3',
    translation: [105, 195, 0.9], size: [0.6, 0.7, 1.8], rotation: yawToQuat(-1), num_lidar_pts: 0, num_radar_pts: 2, prev: '', next: '',
  });
  anns.push({
    token: animal, sample_token: samples[0], instance_token: tok('inst_animal'), attribute_tokens: [], visibility_token: '2',
    translation: [98, 205, 0.3], size: [0.4, 0.8, 0.5], rotation: yawToQuat(0.5), num_lidar_pts: 1, num_radar_pts: 0, prev: '', next: '',
  });

  const tables: Record<string, object[]> = {
    category: [
      { token: tok('cat_car'), name: 'vehicle.car', description: 'car' },
      { token: tok('cat_ped'), name: 'human.pedestrian.adult', description: 'adult' },
      { token: tok('cat_animal'), name: 'animal', description: 'animal' },
    ],
    attribute: [
      { token: tok('attr_vmoving'), name: 'vehicle.moving', description: '' },
      { token: tok('attr_pstanding'), name: 'pedestrian.standing', description: '' },
    ],
    visibility: ['1', '2', '3', '4'].map((t, i) => ({ token: t, level: ['v0-40', 'v40-60', 'v60-80', 'v80-100'][i], description: '' })),
    instance: [
      { token: tok('inst_car'), category_token: tok('cat_car'), nbr_annotations: 3, first_annotation_token: car[0], last_annotation_token: car[2] },
      { token: tok('inst_ped'), category_token: tok('cat_ped'), nbr_annotations: 1, first_annotation_token: pedestrian, last_annotation_token: pedestrian },
      { token: tok('inst_animal'), category_token: tok('cat_animal'), nbr_annotations: 1, first_annotation_token: animal, last_annotation_token: animal },
    ],
    sensor,
    calibrated_sensor: calibrated,
    ego_pose: egoPoses,
    log: [{ token: logToken, logfile: 'n000-2018-07-24', vehicle: 'n000', date_captured: '2018-07-24', location: 'singapore-onenorth' }],
    scene: [{ token: sceneToken, name: 'scene-0001', description: 'fixture', log_token: logToken, nbr_samples: 3, first_sample_token: samples[0], last_sample_token: samples[2] }],
    sample: samples.map((s, i) => ({ token: s, timestamp: sampleTs[i], scene_token: sceneToken, prev: i > 0 ? samples[i - 1] : '', next: i < 2 ? samples[i + 1] : '' })),
    sample_data: sampleData,
    sample_annotation: anns,
    map: [{ token: mapToken, log_tokens: [logToken], category: 'semantic_prior', filename: 'maps/map0.png' }],
  };
  for (const [name, rows] of Object.entries(tables)) await writeFile(join(dataroot, version, `${name}.json`), JSON.stringify(rows, null, 1));
  const png = new PNG({ width: 4, height: 4 });
  await writeFile(join(dataroot, 'maps', 'map0.png'), PNG.sync.write(png));
  await writeFile(join(dataroot, version, 'splits.json'), JSON.stringify({ fixture_train: ['scene-0001'], fixture_val: [] }));

  return {
    dataroot, version, sceneName: 'scene-0001', samples, lidarKeyframes, lidarChain, car, pedestrian, animal, markerGlobal,
    carPointsPerKeyframe, rawCounts, closeCounts, ego, lidarCalib,
  };
}
