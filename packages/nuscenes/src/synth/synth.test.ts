import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointInBox, quatToMatrix, quatYaw, type Quat, type Vec3 } from '@bevzoo/core';
import { readNpz } from '../npz.js';
import { DETECTION_CLASSES, TABLE_NAMES, categoryToDetectionName, OCC_GRID } from '../tables.js';
import {
  SYNTH_PRESETS, SYNTH_VERSION, SynthError, annotationBox, countPointsInBoxes, generateSynthetic, readSegmentIds,
  segmentPathFor, sensorPointsToGlobal, type SynthProgress,
} from './index.js';

type Rec = Record<string, any>;
const SEED = 7;
let dirA: string, dirB: string, work: string;
let T: Record<string, Rec[]>;
const byToken: Record<string, Map<string, Rec>> = {};
const progress: SynthProgress[] = [];

function loadTables(root: string): Record<string, Rec[]> {
  const out: Record<string, Rec[]> = {};
  for (const n of TABLE_NAMES) out[n] = JSON.parse(readFileSync(join(root, SYNTH_VERSION, `${n}.json`), 'utf8'));
  return out;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

function hashTree(root: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of walk(root).sort()) m.set(relative(root, f), createHash('sha256').update(readFileSync(f)).digest('hex'));
  return m;
}

const get = (table: string, token: string): Rec => {
  const r = byToken[table]!.get(token);
  if (!r) throw new Error(`${table} ${token} missing`);
  return r;
};

/** Points of a .pcd.bin file. */
function readPoints(root: string, filename: string): Float32Array {
  const b = readFileSync(join(root, filename));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function sampleAnns(sampleToken: string): Rec[] {
  return T.sample_annotation!.filter((a) => a.sample_token === sampleToken);
}

function keyframeData(sampleToken: string, channel: string): Rec {
  return T.sample_data!.find((sd) => sd.sample_token === sampleToken && sd.is_key_frame && sd.filename.includes(`/${channel}/`))!;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bevzoo-synth-test-'));
  dirA = join(work, 'a');
  dirB = join(work, 'b');
  await generateSynthetic({ preset: 'tiny', seed: SEED, out: dirA, workers: 1, onProgress: (p) => progress.push(p) });
  await generateSynthetic({ preset: 'tiny', seed: SEED, out: dirB, workers: 2 });
  T = loadTables(dirA);
  for (const n of TABLE_NAMES) byToken[n] = new Map(T[n]!.map((r) => [r.token, r]));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('synthetic dataset: tables', () => {
  it('writes all 13 tables, splits, eval config and manifest', () => {
    for (const n of TABLE_NAMES) expect(T[n]!.length, n).toBeGreaterThan(0);
    const p = SYNTH_PRESETS.tiny;
    expect(T.scene!.length).toBe(p.scenes);
    expect(T.sample!.length).toBe(p.scenes * p.samplesPerScene);
    expect(T.visibility!.map((v) => [v.token, v.level])).toEqual([['1', 'v0-40'], ['2', 'v40-60'], ['3', 'v60-80'], ['4', 'v80-100']]);
    expect(T.attribute!.map((a) => a.name).sort()).toEqual([
      'cycle.with_rider', 'cycle.without_rider', 'pedestrian.moving', 'pedestrian.sitting_lying_down', 'pedestrian.standing',
      'vehicle.moving', 'vehicle.parked', 'vehicle.stopped',
    ]);
    expect(T.sensor!.map((s) => s.channel).sort()).toEqual(['CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT', 'CAM_FRONT', 'CAM_FRONT_LEFT', 'CAM_FRONT_RIGHT', 'LIDAR_TOP']);
    const splits = JSON.parse(readFileSync(join(dirA, SYNTH_VERSION, 'splits.json'), 'utf8'));
    expect(Object.keys(splits)).toEqual(['synth_train', 'synth_val']);
    expect([...splits.synth_train, ...splits.synth_val].sort()).toEqual(T.scene!.map((s) => s.name).sort());
    expect(splits.synth_val).toHaveLength(p.valScenes);
    const config = JSON.parse(readFileSync(join(dirA, SYNTH_VERSION, 'detection_config.json'), 'utf8'));
    expect(Object.keys(config.class_range).sort()).toEqual([...DETECTION_CLASSES].sort());
    expect(config).toMatchObject({ dist_fcn: 'center_distance', dist_ths: [0.5, 1, 2, 4], dist_th_tp: 2, min_recall: 0.1, min_precision: 0.1, max_boxes_per_sample: 500, mean_ap_weight: 5 });
    const manifest = JSON.parse(readFileSync(join(dirA, SYNTH_VERSION, 'bevzoo_synth.json'), 'utf8'));
    expect(manifest).toMatchObject({ seed: SEED, preset: { name: 'tiny' }, scenes: p.scenes, samples: p.scenes * p.samplesPerScene });
    expect(progress.at(-1)).toEqual({ done: 8, total: 8, phase: 'done' });
    expect(progress.filter((q) => q.phase === 'generate').map((q) => q.done)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('uses 32-hex tokens and resolves every link', () => {
    for (const n of TABLE_NAMES) {
      if (n === 'visibility') continue;
      for (const r of T[n]!) expect(r.token, n).toMatch(/^[0-9a-f]{32}$/);
      expect(new Set(T[n]!.map((r) => r.token)).size, `${n} tokens unique`).toBe(T[n]!.length);
    }
    const opt = (table: string, tok: string) => { if (tok !== '') get(table, tok); };
    for (const s of T.scene!) { get('log', s.log_token); get('sample', s.first_sample_token); get('sample', s.last_sample_token); }
    for (const s of T.sample!) { get('scene', s.scene_token); opt('sample', s.prev); opt('sample', s.next); }
    for (const sd of T.sample_data!) {
      get('sample', sd.sample_token); get('ego_pose', sd.ego_pose_token); get('calibrated_sensor', sd.calibrated_sensor_token);
      opt('sample_data', sd.prev); opt('sample_data', sd.next);
    }
    for (const a of T.sample_annotation!) {
      get('sample', a.sample_token); get('instance', a.instance_token); get('visibility', a.visibility_token);
      for (const at of a.attribute_tokens) get('attribute', at);
      opt('sample_annotation', a.prev); opt('sample_annotation', a.next);
      expect(a.num_radar_pts).toBe(0);
    }
    for (const i of T.instance!) { get('category', i.category_token); get('sample_annotation', i.first_annotation_token); get('sample_annotation', i.last_annotation_token); }
    for (const c of T.calibrated_sensor!) {
      const s = get('sensor', c.sensor_token);
      if (s.modality === 'lidar') expect(c.camera_intrinsic).toEqual([]);
      else expect(c.camera_intrinsic).toHaveLength(3);
    }
    const covered = new Set<string>();
    for (const m of T.map!) {
      for (const l of m.log_tokens) { get('log', l); covered.add(l); }
      expect(existsSync(join(dirA, m.filename))).toBe(true);
      expect(m.filename).toMatch(/^maps\/[0-9a-f]{32}\.png$/);
    }
    expect([...covered].sort()).toEqual(T.log!.map((l) => l.token).sort());
  });

  it('links samples, sample_data and annotations in prev/next chains', () => {
    for (const sc of T.scene!) {
      const chain: Rec[] = [];
      for (let s: Rec | undefined = get('sample', sc.first_sample_token); s; s = s.next ? get('sample', s.next) : undefined) chain.push(s);
      expect(chain.length).toBe(sc.nbr_samples);
      expect(chain.at(-1)!.token).toBe(sc.last_sample_token);
      expect(chain[0]!.prev).toBe('');
      for (let i = 1; i < chain.length; i++) {
        expect(chain[i]!.prev).toBe(chain[i - 1]!.token);
        expect(chain[i]!.timestamp - chain[i - 1]!.timestamp).toBe(500000);
      }
      // One keyframe per channel per sample; every sweep points to the sample that follows it most closely.
      for (const s of chain) for (const sens of T.sensor!) {
        const keys = T.sample_data!.filter((sd) => sd.sample_token === s.token && sd.is_key_frame && get('calibrated_sensor', sd.calibrated_sensor_token).sensor_token === sens.token);
        expect(keys, `${sens.channel}`).toHaveLength(1);
        expect(keys[0]!.timestamp).toBe(s.timestamp);
      }
    }
    const sweeps = T.sample_data!.filter((sd) => !sd.is_key_frame);
    expect(sweeps.length).toBeGreaterThan(0);
    for (const sd of sweeps) {
      const s = get('sample', sd.sample_token);
      expect(sd.filename.startsWith('sweeps/LIDAR_TOP/')).toBe(true);
      expect(s.timestamp).toBeGreaterThan(sd.timestamp);
      if (s.prev) expect(get('sample', s.prev).timestamp).toBeLessThan(sd.timestamp);
    }
    // sample_data chains: same calibrated sensor, increasing timestamps, consistent back links.
    for (const sd of T.sample_data!) {
      if (sd.next) {
        const n = get('sample_data', sd.next);
        expect(n.prev).toBe(sd.token);
        expect(n.calibrated_sensor_token).toBe(sd.calibrated_sensor_token);
        expect(n.timestamp).toBeGreaterThan(sd.timestamp);
      }
      expect(get('ego_pose', sd.ego_pose_token).timestamp).toBe(sd.timestamp);
    }
    for (const inst of T.instance!) {
      const chain: Rec[] = [];
      for (let a: Rec | undefined = get('sample_annotation', inst.first_annotation_token); a; a = a.next ? get('sample_annotation', a.next) : undefined) chain.push(a);
      expect(chain.length).toBe(inst.nbr_annotations);
      expect(chain.at(-1)!.token).toBe(inst.last_annotation_token);
      for (let i = 1; i < chain.length; i++) {
        expect(chain[i]!.prev).toBe(chain[i - 1]!.token);
        expect(get('sample', chain[i]!.sample_token).timestamp).toBeGreaterThan(get('sample', chain[i - 1]!.sample_token).timestamp);
      }
      for (const a of chain) expect(a.instance_token).toBe(inst.token);
    }
    expect(T.instance!.reduce((n, i) => n + i.nbr_annotations, 0)).toBe(T.sample_annotation!.length);
  });

  it('writes nuScenes categories, realistic sizes and attributes consistent with motion', () => {
    const catName = (a: Rec) => get('category', get('instance', a.instance_token).category_token).name as string;
    const attrName = (a: Rec) => a.attribute_tokens.map((t: string) => get('attribute', t).name);
    const cars = T.sample_annotation!.filter((a) => catName(a) === 'vehicle.car');
    expect(cars.length).toBeGreaterThan(20);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean(cars.map((a) => a.size[0]))).toBeCloseTo(1.95, 0);
    expect(Math.abs(mean(cars.map((a) => a.size[1])) - 4.62)).toBeLessThan(0.4);
    let checked = 0;
    for (const a of T.sample_annotation!) {
      const det = categoryToDetectionName(catName(a));
      const attrs = attrName(a);
      if (det === 'traffic_cone' || det === 'barrier') expect(attrs).toEqual([]);
      else if (det) expect(attrs).toHaveLength(1);
      const other = a.next ? get('sample_annotation', a.next) : a.prev ? get('sample_annotation', a.prev) : null;
      if (!other || !det || attrs.length === 0) continue;
      const dt = Math.abs(get('sample', other.sample_token).timestamp - get('sample', a.sample_token).timestamp) / 1e6;
      const speed = Math.hypot(other.translation[0] - a.translation[0], other.translation[1] - a.translation[1]) / dt;
      if (attrs[0] === 'vehicle.parked' || attrs[0] === 'pedestrian.standing' || attrs[0] === 'pedestrian.sitting_lying_down') expect(speed).toBeLessThan(0.3);
      if (attrs[0] === 'vehicle.moving' || attrs[0] === 'pedestrian.moving') { expect(speed).toBeGreaterThan(0.1); checked++; }
    }
    expect(checked).toBeGreaterThan(5);
  });

  it('has every detection class in the val split, with LiDAR points, within its class range', () => {
    const splits = JSON.parse(readFileSync(join(dirA, SYNTH_VERSION, 'splits.json'), 'utf8'));
    const config = JSON.parse(readFileSync(join(dirA, SYNTH_VERSION, 'detection_config.json'), 'utf8'));
    const valScenes = new Set(T.scene!.filter((s) => splits.synth_val.includes(s.name)).map((s) => s.token));
    const seen = new Set<string>();
    for (const a of T.sample_annotation!) {
      const s = get('sample', a.sample_token);
      if (!valScenes.has(s.scene_token) || a.num_lidar_pts === 0) continue;
      const det = categoryToDetectionName(get('category', get('instance', a.instance_token).category_token).name);
      const ep = get('ego_pose', keyframeData(s.token, 'LIDAR_TOP').ego_pose_token);
      if (det && Math.hypot(a.translation[0] - ep.translation[0], a.translation[1] - ep.translation[1]) < config.class_range[det]) seen.add(det);
    }
    expect([...seen].sort()).toEqual([...DETECTION_CLASSES].sort());
  });
});

describe('synthetic dataset: files', () => {
  it('writes every sample_data file with the right size and format', () => {
    for (const sd of T.sample_data!) {
      const p = join(dirA, sd.filename);
      expect(existsSync(p), sd.filename).toBe(true);
      if (sd.fileformat === 'pcd') {
        expect(sd.filename).toMatch(/^(samples|sweeps)\/LIDAR_TOP\/.+__LIDAR_TOP__\d+\.pcd\.bin$/);
        const size = statSync(p).size;
        expect(size % 20).toBe(0);
        expect(size / 20).toBeGreaterThan(5000);
        expect(sd.width).toBe(0);
      } else {
        expect(sd.fileformat).toBe('jpg');
        expect(sd.filename).toMatch(/^samples\/CAM_[A-Z_]+\/.+__CAM_[A-Z_]+__\d+\.jpg$/);
        const img = jpeg.decode(readFileSync(p), { useTArray: true });
        expect([img.width, img.height]).toEqual([SYNTH_PRESETS.tiny.imageWidth, SYNTH_PRESETS.tiny.imageHeight]);
        expect([sd.width, sd.height]).toEqual([img.width, img.height]);
        const seg = readSegmentIds(readFileSync(join(dirA, segmentPathFor(sd.filename))));
        expect([seg.width, seg.height]).toEqual([img.width, img.height]);
        const n = sampleAnns(sd.sample_token).length;
        let maxId = 0;
        for (const id of seg.ids) if (id > maxId) maxId = id;
        expect(maxId).toBeLessThanOrEqual(n);
      }
    }
    for (const s of T.sample!) {
      const scene = get('scene', s.scene_token);
      expect(existsSync(join(dirA, 'gts', scene.name, s.token, 'labels.npz'))).toBe(true);
    }
  });

  it('is byte-identical for the same seed (workers: 1 vs 2; both in-process from sources)', () => {
    const a = hashTree(dirA), b = hashTree(dirB);
    expect(a.size).toBeGreaterThan(100);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(b.get(k), k).toBe(v);
  });

  // The piscina pool exists only in the build (dist/synth/worker.js; from sources the scenes run in-process), and it
  // runs in a plain node process (worker threads of this one would resolve packages to their TypeScript sources).
  const built = new URL('../../dist/index.js', import.meta.url);
  it.skipIf(!existsSync(built))('with the built worker pool: the bytes of an in-process run, every keyframe counted, a failing scene named', () => {
    const script = `
      import { generateSynthetic, SYNTH_PRESETS } from ${JSON.stringify(built.href)};
      const done = [];
      await generateSynthetic({ preset: 'tiny', seed: ${SEED}, out: ${JSON.stringify(join(work, 'pool'))}, workers: 2, onProgress: (p) => p.phase === 'generate' && done.push(p.done) });
      await generateSynthetic({ preset: 'tiny', seed: ${SEED}, out: ${JSON.stringify(join(work, 'in-process'))}, workers: 1 });
      const huge = { ...SYNTH_PRESETS.tiny, imageWidth: 2 ** 31 };
      const error = await generateSynthetic({ preset: huge, seed: ${SEED}, out: ${JSON.stringify(join(work, 'bad'))}, workers: 2 }).then(() => null, (e) => e.message);
      console.log(JSON.stringify({ done, error }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { done, error } = JSON.parse(r.stdout) as { done: number[]; error: string | null };
    expect(hashTree(join(work, 'pool'))).toEqual(hashTree(join(work, 'in-process')));
    expect(done).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(error).toMatch(/^scene [01]: scene generation failed: Invalid typed array length/);
    expect(readdirSync(work).filter((n) => n.startsWith('bad'))).toEqual([]);
  }, 60_000);

  it('reuses a complete dataset of the same preset and seed, refuses to clobber another one', async () => {
    const t0 = Date.now();
    const r = await generateSynthetic({ preset: 'tiny', seed: SEED, out: dirA });
    expect(r).toMatchObject({ reused: true, version: SYNTH_VERSION, scenes: 2, samples: 8 });
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(generateSynthetic({ preset: 'tiny', seed: SEED + 1, out: dirA })).rejects.toBeInstanceOf(SynthError);
    expect(readdirSync(work).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe('synthetic dataset: geometry', () => {
  it('num_lidar_pts equals the keyframe LiDAR points inside each box', () => {
    let nonzero = 0;
    for (const s of T.sample!) {
      const sd = keyframeData(s.token, 'LIDAR_TOP');
      const pts = readPoints(dirA, sd.filename);
      const global = sensorPointsToGlobal(pts, 5, get('calibrated_sensor', sd.calibrated_sensor_token) as any, get('ego_pose', sd.ego_pose_token) as any);
      const anns = sampleAnns(s.token);
      const counts = countPointsInBoxes(global, anns.map((a) => annotationBox(a as any)));
      anns.forEach((a, i) => expect(counts[i], a.token).toBe(a.num_lidar_pts));
      // Brute force for a few boxes (checks the spatial hashing of countPointsInBoxes).
      for (const a of anns.slice(0, 6)) {
        const box = { center: a.translation as Vec3, size: a.size as Vec3, yaw: quatYaw(a.rotation as Quat) };
        let n = 0;
        for (let p = 0; p < global.length / 3; p++) if (pointInBox(box, [global[p * 3]!, global[p * 3 + 1]!, global[p * 3 + 2]!])) n++;
        expect(n).toBe(a.num_lidar_pts);
      }
      nonzero += anns.filter((a) => a.num_lidar_pts > 0).length;
      // Points: 5 floats, ring index 0..31, intensities 0..255.
      let bad = 0;
      for (let p = 0; p < pts.length; p += 5) {
        if (!(Number.isInteger(pts[p + 4]) && pts[p + 4]! >= 0 && pts[p + 4]! < 32)) bad++;
        if (!(pts[p + 3]! >= 0 && pts[p + 3]! <= 255)) bad++;
      }
      expect(bad).toBe(0);
    }
    expect(nonzero).toBeGreaterThan(100);
  });

  it("projects a visible box's centre onto a pixel of that box's segment id", () => {
    let checked = 0, hits = 0;
    for (const s of T.sample!) {
      const anns = sampleAnns(s.token);
      for (const sens of T.sensor!.filter((x) => x.modality === 'camera')) {
        const sd = keyframeData(s.token, sens.channel);
        const cs = get('calibrated_sensor', sd.calibrated_sensor_token), ep = get('ego_pose', sd.ego_pose_token);
        const seg = readSegmentIds(readFileSync(join(dirA, segmentPathFor(sd.filename))));
        const Re = quatToMatrix(ep.rotation), Rc = quatToMatrix(cs.rotation);
        anns.forEach((a, idx) => {
          if (a.visibility_token !== '4') return;
          // global → ego → camera (inverse rotations = transposes), then the intrinsics.
          const g = [0, 1, 2].map((k) => a.translation[k] - ep.translation[k]);
          const e = [0, 1, 2].map((k) => Re[k]! * g[0]! + Re[3 + k]! * g[1]! + Re[6 + k]! * g[2]! - cs.translation[k]);
          const c = [0, 1, 2].map((k) => Rc[k]! * e[0]! + Rc[3 + k]! * e[1]! + Rc[6 + k]! * e[2]!);
          if (c[2]! < 1) return;
          const K = cs.camera_intrinsic;
          const u = (K[0][0] * c[0]!) / c[2]! + K[0][2], v = (K[1][1] * c[1]!) / c[2]! + K[1][2];
          if (u < 0 || v < 0 || u >= seg.width || v >= seg.height) return;
          checked++;
          if (seg.ids[Math.floor(v) * seg.width + Math.floor(u)] === idx + 1) hits++;
        });
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect(hits / checked).toBeGreaterThan(0.9);
  });

  it('writes sane Occ3D labels', () => {
    let objectVoxels = 0, objectBoxes = 0;
    for (const s of T.sample!.slice(0, 3)) {
      const scene = get('scene', s.scene_token);
      const npz = readNpz(readFileSync(join(dirA, 'gts', scene.name, s.token, 'labels.npz')));
      expect(Object.keys(npz).sort()).toEqual(['mask_camera', 'mask_lidar', 'semantics']);
      for (const k of ['semantics', 'mask_lidar', 'mask_camera']) {
        expect(npz[k]!.shape).toEqual([200, 200, 16]);
        expect(npz[k]!.dtype).toBe('u1');
      }
      const sem = npz.semantics!.data as Uint8Array, ml = npz.mask_lidar!.data as Uint8Array, mc = npz.mask_camera!.data as Uint8Array;
      const hist = new Array(18).fill(0);
      for (const v of sem) hist[v]++;
      expect(hist.reduce((a, b) => a + b, 0)).toBe(sem.length);
      expect(hist[17]).toBeGreaterThan(sem.length * 0.5);
      expect(hist[11]).toBeGreaterThan(1000);
      expect(hist[4]).toBeGreaterThan(50);
      expect(hist[15] + hist[16]).toBeGreaterThan(100);
      const frac = (m: Uint8Array) => m.reduce((a, b) => a + b, 0) / m.length;
      expect(frac(ml)).toBeGreaterThan(0.01);
      expect(frac(ml)).toBeLessThan(0.9);
      expect(frac(mc)).toBeGreaterThan(0.01);
      expect(frac(mc)).toBeLessThan(0.9);
      // Object centres (in the ego frame of the keyframe) fall in voxels of the object's class.
      const ep = get('ego_pose', keyframeData(s.token, 'LIDAR_TOP').ego_pose_token);
      const Re = quatToMatrix(ep.rotation);
      const occOf: Record<string, number> = { car: 4, truck: 10, bus: 3, trailer: 9, construction_vehicle: 5, pedestrian: 7, motorcycle: 6, bicycle: 2, traffic_cone: 8, barrier: 1 };
      for (const a of sampleAnns(s.token)) {
        const det = categoryToDetectionName(get('category', get('instance', a.instance_token).category_token).name);
        if (!det || det === 'bicycle' || det === 'motorcycle') continue;
        const g = [0, 1, 2].map((k) => a.translation[k] - ep.translation[k]);
        const e = [0, 1, 2].map((k) => Re[k]! * g[0]! + Re[3 + k]! * g[1]! + Re[6 + k]! * g[2]!);
        const ijk = [0, 1, 2].map((k) => Math.floor((e[k]! - OCC_GRID.min[k]!) / OCC_GRID.voxel));
        if (ijk.some((v, k) => v < 0 || v >= OCC_GRID.size[k]!)) continue;
        objectBoxes++;
        let found = false;
        for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) for (let dk = -1; dk <= 1; dk++) {
          const i = ijk[0]! + di, j = ijk[1]! + dj, k = ijk[2]! + dk;
          if (i >= 0 && j >= 0 && k >= 0 && i < 200 && j < 200 && k < 16 && sem[(i * 200 + j) * 16 + k] === occOf[det]) found = true;
        }
        if (found) objectVoxels++;
      }
    }
    expect(objectBoxes).toBeGreaterThan(30);
    expect(objectVoxels / objectBoxes).toBeGreaterThan(0.95);
  });
});

describe('segmentPathFor', () => {
  it('maps a camera image to its segment PNG', () => {
    expect(segmentPathFor('samples/CAM_FRONT/log__CAM_FRONT__123.jpg')).toBe('segments/CAM_FRONT/log__CAM_FRONT__123.png');
    expect(segmentPathFor('/data/x/samples/CAM_BACK/a__CAM_BACK__1.jpg')).toBe('/data/x/segments/CAM_BACK/a__CAM_BACK__1.png');
    expect(() => segmentPathFor('foo.jpg')).toThrow(RangeError);
  });
});
