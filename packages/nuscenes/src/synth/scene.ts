/**
 * Generation of one scene (one log): world, LiDAR scans (keyframes and sweeps), camera images and instance
 * segments at the keyframes, annotations, Occ3D labels, the map mask, and the scene's table records. A pure
 * function of (preset, seed, scene index): the same job gives the same bytes in any thread.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { composeTransforms, createRng, quatRotate, yawToQuat, type Quat, type Vec3 } from '@bevzoo/core';
import { writeNpz } from '../npz.js';
import {
  LIDAR_CHANNEL,
  type CalibratedSensorRecord, type EgoPoseRecord, type InstanceRecord, type LogRecord, type MapRecord,
  type SampleAnnotationRecord, type SampleDataRecord, type SampleRecord, type SceneRecord,
} from '../tables.js';
import { renderCamera, type CameraView } from './camera.js';
import { annotationBox, countPointsInBoxes, sensorPointsToGlobal } from './count.js';
import { MAT_MASK, MAT_ROAD } from './ground.js';
import { castLidar, makeLidarModel } from './lidar.js';
import { segmentPathFor, synthToken, visibilityToken } from './meta.js';
import { objectAttribute, objectPose } from './objects.js';
import { markCameraRays, markLidarRays, voxelise } from './occ.js';
import { encodeJpeg } from './jpeg.js';
import { encodePng } from './png.js';
import type { SynthPreset } from './presets.js';
import type { Prism } from './prism.js';
import { makeRig } from './rig.js';
import { egoPose, generateWorld, objectPrimsAt } from './world.js';

export interface SceneJob {
  preset: SynthPreset;
  seed: number;
  sceneIndex: number;
  /** Dataset root being written (holds samples/, sweeps/, segments/, gts/, maps/). */
  root: string;
}

export interface SceneRecords {
  log: LogRecord;
  scene: SceneRecord;
  map: MapRecord;
  sample: SampleRecord[];
  sample_data: SampleDataRecord[];
  ego_pose: EgoPoseRecord[];
  calibrated_sensor: CalibratedSensorRecord[];
  instance: InstanceRecord[];
  sample_annotation: SampleAnnotationRecord[];
}

/** Name of scene i (0-based). Not of the form scene-NNNN, so no official split list can claim it. */
export function synthSceneName(i: number): string {
  return `synth-${String(i + 1).padStart(4, '0')}`;
}

function fileWriter(root: string): (rel: string, data: Uint8Array) => void {
  const made = new Set<string>();
  return (rel, data) => {
    const p = join(root, rel);
    const dir = dirname(p);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    writeFileSync(p, data);
  };
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

export function generateScene(job: SceneJob, onSample?: (k: number) => void): SceneRecords {
  const { preset, seed, sceneIndex: si, root } = job;
  const rng = createRng(seed).fork(si);
  const writeFile = fileWriter(root);
  const tok = (...p: (string | number)[]) => synthToken(seed, 'scene', si, ...p);
  const nInt = preset.sweepsPerInterval + 1;
  const K = preset.samplesPerScene;
  const J = preset.preSweeps + (K - 1) * nInt;
  const period = 0.5 / nInt;
  const timeRng = rng.fork('time');
  const base = 1533081600000000 + si * 3_600_000_000 + timeRng.int(1800) * 1_000_000 + timeRng.int(1_000_000);
  const ts = (j: number) => base + Math.round(j * period * 1e6);
  const tOf = (j: number) => (ts(j) - base) / 1e6;
  const keyScan = (k: number) => preset.preSweeps + k * nInt;
  const keyTimes = Array.from({ length: K }, (_, k) => tOf(keyScan(k)));
  const world = generateWorld(rng.fork('world'), {
    duration: tOf(J), keyTimes, annotationRange: preset.annotationRange, density: preset.objectDensity,
  });
  const W = preset.imageWidth, H = preset.imageHeight;
  const rig = makeRig(W, H, rng.fork('rig'));
  const model = makeLidarModel(preset.lidarAzimuthSteps, preset.lidarMaxRange);

  // Log, scene, calibration.
  const d = new Date(base / 1000);
  const stamp = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}-${pad2(d.getUTCHours())}-${pad2(d.getUTCMinutes())}-${pad2(d.getUTCSeconds())}`;
  const logfile = `synth${seed}-${stamp}+0000`;
  const sceneName = synthSceneName(si);
  const log: LogRecord = { token: tok('log'), logfile, vehicle: 'synth-zoe', date_captured: stamp.slice(0, 10), location: world.location };
  const sceneToken = tok('scene');
  const sampleTok = (k: number) => tok('sample', k);
  const csLidar: CalibratedSensorRecord = {
    token: tok('calibrated_sensor', LIDAR_CHANNEL), sensor_token: synthToken(seed, 'sensor', LIDAR_CHANNEL),
    translation: rig.lidar.translation, rotation: rig.lidar.rotation, camera_intrinsic: [],
  };
  const csCams: CalibratedSensorRecord[] = rig.cameras.map((c) => ({
    token: tok('calibrated_sensor', c.channel), sensor_token: synthToken(seed, 'sensor', c.channel),
    translation: c.translation, rotation: c.rotation, camera_intrinsic: c.K,
  }));
  // Camera rays for Occ3D mask_camera: a fixed angular grid (ego frame directions), per camera.
  const occDirs = rig.cameras.map((c) => {
    const [[fx, , cx], [, fy, cy]] = c.K as [number[], number[]];
    const stepU = preset.occCameraRayStep * fx!, stepV = preset.occCameraRayStep * fy!;
    const dirs: number[] = [];
    for (let v = stepV / 2; v < H; v += stepV) {
      for (let u = stepU / 2; u < W; u += stepU) {
        const e = quatRotate(c.rotation, [(u - cx!) / fx!, (v - cy!) / fy!, 1]);
        const n = Math.hypot(e[0], e[1], e[2]);
        dirs.push(e[0] / n, e[1] / n, e[2] / n);
      }
    }
    return new Float64Array(dirs);
  });

  const sampleData: SampleDataRecord[] = [];
  const egoPoses: EgoPoseRecord[] = [];
  const annotations: SampleAnnotationRecord[] = [];
  const annsByObject = new Map<number, SampleAnnotationRecord[]>();
  /** Copies of the scans accumulated into the next keyframe's Occ3D mask_lidar. */
  const history: { origin: Vec3; hits: Float64Array; count: number }[] = [];
  const nObj = world.objects.length;

  const staticNear = (x: number, y: number, range: number): Prism[] =>
    world.staticPrims.filter((p) => Math.hypot(p.cx - x, p.cy - y) - p.radius < range);

  for (let j = 0; j <= J; j++) {
    const isKey = j >= preset.preSweeps && (j - preset.preSweeps) % nInt === 0;
    const k = Math.max(0, Math.ceil((j - preset.preSweeps) / nInt));
    const t = tOf(j);
    const e = egoPose(world, t);
    const ep: EgoPoseRecord = { token: tok('ego_pose', LIDAR_CHANNEL, j), translation: [e.x, e.y, 0], rotation: yawToQuat(e.yaw), timestamp: ts(j) };
    egoPoses.push(ep);
    const sensor = composeTransforms(ep, csLidar);
    const objPrims = objectPrimsAt(world, t);
    const prims = staticNear(e.x, e.y, preset.lidarMaxRange + 5).concat(objPrims);
    const scan = castLidar(model, world.ground, prims, sensor.rotation as [number, number, number, number], sensor.translation, rng.fork(`scan${j}`));
    const filename = `${isKey ? 'samples' : 'sweeps'}/${LIDAR_CHANNEL}/${logfile}__${LIDAR_CHANNEL}__${ts(j)}.pcd.bin`;
    writeFile(filename, new Uint8Array(scan.points.buffer, scan.points.byteOffset, scan.points.byteLength));
    sampleData.push({
      token: tok('sample_data', LIDAR_CHANNEL, j), sample_token: sampleTok(k), ego_pose_token: ep.token,
      calibrated_sensor_token: csLidar.token, filename, fileformat: 'pcd', width: 0, height: 0, timestamp: ts(j),
      is_key_frame: isKey, prev: '', next: '',
    });
    const toNextKey = isKey ? 0 : keyScan(k) - j;
    if (toNextKey < preset.occLidarScans) history.push({ origin: scan.origin, hits: scan.hits.slice(), count: scan.count });
    if (!isKey) continue;

    // ---- keyframe k ----
    const sampleToken = sampleTok(k);
    const annotated: number[] = [];
    for (let i = 0; i < nObj; i++) {
      const p = objectPose(world.objects[i]!, t);
      if (Math.hypot(p.x - e.x, p.y - e.y) <= preset.annotationRange) annotated.push(i);
    }
    const segId = new Uint16Array(nObj);
    annotated.forEach((i, a) => { segId[i] = a + 1; });
    const camPrims = staticNear(e.x, e.y, 400).concat(objPrims);
    const coverage = new Int32Array(nObj), visible = new Int32Array(nObj);
    rig.cameras.forEach((cam, ci) => {
      const pose = composeTransforms(ep, { rotation: cam.rotation, translation: cam.translation });
      const view: CameraView = {
        width: W, height: H, fx: cam.K[0]![0]!, fy: cam.K[1]![1]!, cx: cam.K[0]![2]!, cy: cam.K[1]![2]!,
        rotation: pose.rotation, origin: pose.translation,
      };
      const res = renderCamera(view, world.env, world.ground, camPrims, nObj, (seed * 31 + si * 7919 + k * 131 + ci) | 0);
      for (let i = 0; i < nObj; i++) { coverage[i] += res.coverage[i]!; visible[i] += res.visible[i]!; }
      const filename = `samples/${cam.channel}/${logfile}__${cam.channel}__${ts(j)}.jpg`;
      writeFile(filename, encodeJpeg(res.rgba, W, H, preset.jpegQuality));
      const seg = new Uint16Array(W * H);
      for (let p = 0; p < W * H; p++) { const o = res.objectAt[p]!; seg[p] = o >= 0 ? segId[o]! : 0; }
      writeFile(segmentPathFor(filename), encodePng({ width: W, height: H, channels: 1, bitDepth: 16, data: seg }));
      const epc: EgoPoseRecord = { token: tok('ego_pose', cam.channel, k), translation: ep.translation, rotation: ep.rotation, timestamp: ts(j) };
      egoPoses.push(epc);
      sampleData.push({
        token: tok('sample_data', cam.channel, k), sample_token: sampleToken, ego_pose_token: epc.token,
        calibrated_sensor_token: csCams[ci]!.token, filename, fileformat: 'jpg', width: W, height: H, timestamp: ts(j),
        is_key_frame: true, prev: '', next: '',
      });
    });

    const recs: SampleAnnotationRecord[] = annotated.map((i) => {
      const o = world.objects[i]!;
      const p = objectPose(o, t);
      const attr = objectAttribute(o, t);
      const cov = coverage[i]!;
      return {
        token: tok('sample_annotation', i, k), sample_token: sampleToken, instance_token: tok('instance', i),
        attribute_tokens: attr ? [synthToken(seed, 'attribute', attr)] : [],
        visibility_token: visibilityToken(cov > 0 ? Math.min(1, visible[i]! / cov) : 0),
        translation: [p.x, p.y, o.size[2] / 2] as Vec3, size: [o.size[0], o.size[1], o.size[2]] as Vec3, rotation: yawToQuat(p.yaw) as Quat,
        num_lidar_pts: 0, num_radar_pts: 0, prev: '', next: '',
      };
    });
    const global = sensorPointsToGlobal(scan.points, 5, csLidar, ep);
    const counts = countPointsInBoxes(global, recs.map(annotationBox));
    recs.forEach((r, a) => {
      r.num_lidar_pts = counts[a]!;
      annotations.push(r);
      const i = annotated[a]!;
      const l = annsByObject.get(i);
      if (l) l.push(r);
      else annsByObject.set(i, [r]);
    });

    // Occ3D labels in the ego frame of the keyframe.
    const egoF = { x: e.x, y: e.y, yaw: e.yaw };
    const sem = voxelise(egoF, world.ground, staticNear(e.x, e.y, 70).concat(objPrims));
    const maskLidar = new Uint8Array(sem.length), maskCamera = new Uint8Array(sem.length);
    const c = Math.cos(e.yaw), s = Math.sin(e.yaw);
    for (const h of history.splice(0)) {
      const toEgo = (x: number, y: number): [number, number] => [c * (x - e.x) + s * (y - e.y), -s * (x - e.x) + c * (y - e.y)];
      const [ox, oy] = toEgo(h.origin[0], h.origin[1]);
      const hits = new Float64Array(h.hits.length);
      for (let q = 0; q < h.count; q++) {
        const [hx, hy] = toEgo(h.hits[q * 3]!, h.hits[q * 3 + 1]!);
        hits[q * 3] = hx; hits[q * 3 + 1] = hy; hits[q * 3 + 2] = h.hits[q * 3 + 2]!;
      }
      markLidarRays(maskLidar, [ox, oy, h.origin[2]], hits, h.count);
    }
    rig.cameras.forEach((cam, ci) => markCameraRays(maskCamera, sem, cam.translation, occDirs[ci]!));
    const shape = [200, 200, 16];
    // Stored like np.savez, not deflated: ~1.9 MB a sample, but faster to write and ~5x faster for the loader to read.
    writeFile(`gts/${sceneName}/${sampleToken}/labels.npz`, writeNpz({
      semantics: { data: sem, shape }, mask_lidar: { data: maskLidar, shape }, mask_camera: { data: maskCamera, shape },
    }, { compress: false }));
    onSample?.(k);
  }

  // Chains.
  const link = <T extends { token: string; prev: string; next: string }>(list: T[]) => {
    for (let i = 0; i < list.length; i++) {
      list[i]!.prev = i > 0 ? list[i - 1]!.token : '';
      list[i]!.next = i + 1 < list.length ? list[i + 1]!.token : '';
    }
  };
  for (const ch of [LIDAR_CHANNEL, ...rig.cameras.map((c) => c.channel)]) {
    const csTok = ch === LIDAR_CHANNEL ? csLidar.token : csCams.find((c) => c.sensor_token === synthToken(seed, 'sensor', ch))!.token;
    link(sampleData.filter((sd) => sd.calibrated_sensor_token === csTok));
  }
  const instances: InstanceRecord[] = [];
  for (const i of [...annsByObject.keys()].sort((a, b) => a - b)) {
    const list = annsByObject.get(i)!;
    link(list);
    instances.push({
      token: tok('instance', i), category_token: synthToken(seed, 'category', world.objects[i]!.category),
      nbr_annotations: list.length, first_annotation_token: list[0]!.token, last_annotation_token: list[list.length - 1]!.token,
    });
  }
  const samples: SampleRecord[] = Array.from({ length: K }, (_, k) => ({
    token: sampleTok(k), timestamp: ts(keyScan(k)), scene_token: sceneToken, prev: '', next: '',
  }));
  link(samples);
  const scene: SceneRecord = {
    token: sceneToken, name: sceneName, description: world.description, log_token: log.token, nbr_samples: K,
    first_sample_token: sampleTok(0), last_sample_token: sampleTok(K - 1),
  };

  // Map mask: driveable surface at 0.1 m per pixel, global origin at the bottom-left corner (devkit MapMask).
  const mapToken = tok('map');
  const g = world.ground;
  const mw = Math.ceil((g.x0 + g.w * g.res + 10) / 0.1), mh = Math.ceil((g.y0 + g.h * g.res + 10) / 0.1);
  const mask = new Uint8Array(mw * mh);
  const f = Math.round(g.res / 0.1);
  const ci0 = Math.round(g.x0 / 0.1), cj0 = Math.round(g.y0 / 0.1);
  for (let j = 0; j < g.h; j++) {
    for (let i = 0; i < g.w; i++) {
      if ((g.data[j * g.w + i]! & MAT_MASK) !== MAT_ROAD) continue;
      for (let a = 0; a < f; a++) for (let b = 0; b < f; b++) {
        const col = ci0 + i * f + a, row = mh - 1 - (cj0 + j * f + b);
        if (col >= 0 && col < mw && row >= 0 && row < mh) mask[row * mw + col] = 255;
      }
    }
  }
  const mapFile = `maps/${mapToken}.png`;
  writeFile(mapFile, encodePng({ width: mw, height: mh, channels: 1, bitDepth: 8, data: mask }, 1));
  const map: MapRecord = { token: mapToken, log_tokens: [log.token], category: 'semantic_prior', filename: mapFile };

  return {
    log, scene, map, sample: samples, sample_data: sampleData, ego_pose: egoPoses,
    calibrated_sensor: [...csCams, csLidar], instance: instances, sample_annotation: annotations,
  };
}
