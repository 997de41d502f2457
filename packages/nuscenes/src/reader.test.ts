import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeTransforms, invertTransform, quatYaw, transformPoint } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from './errors.js';
import { readJsonRecords } from './json-records.js';
import { openNuScenes, type NuScenes } from './reader.js';
import { CAMERA_CHANNELS } from './tables.js';
import { buildFixture, FIX_K, FIX_MARKER, type Fixture } from './test-fixture.js';

let fx: Fixture;
let nusc: NuScenes;
beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
});

describe('openNuScenes', () => {
  it('loads the 13 tables and indexes them by token', () => {
    expect(nusc.summary()).toEqual({
      category: 3, attribute: 2, visibility: 4, instance: 3, sensor: 7, calibrated_sensor: 7, ego_pose: 24, log: 1,
      scene: 1, sample: 3, sample_data: 24, sample_annotation: 5, map: 1,
    });
    expect(nusc.get('sample', fx.samples[1]!).prev).toBe(fx.samples[0]);
    expect(nusc.getind('sample', fx.samples[2]!)).toBe(2);
    expect(nusc.table('scene')[0]!.name).toBe('scene-0001');
    expect(nusc.version).toBe('v1.0-mini');
  });

  it('adds the devkit derived fields', () => {
    expect(nusc.get('sample_annotation', fx.car[0]!).category_name).toBe('vehicle.car');
    expect(nusc.get('sample_annotation', fx.animal).category_name).toBe('animal');
    const lidar = nusc.get('sample_data', fx.lidarKeyframes[0]!);
    expect([lidar.channel, lidar.sensor_modality]).toEqual(['LIDAR_TOP', 'lidar']);
    const s0 = nusc.get('sample', fx.samples[0]!);
    expect(Object.keys(s0.data!).sort()).toEqual([...CAMERA_CHANNELS, 'LIDAR_TOP'].sort());
    expect(s0.data!.LIDAR_TOP).toBe(fx.lidarKeyframes[0]); // keyframe, not the sweep of the same sample
    // anns in the row order of sample_annotation.json
    expect(s0.anns).toEqual([fx.car[0], fx.animal]);
    expect(nusc.get('sample', fx.samples[1]!).anns).toEqual([fx.car[1], fx.pedestrian]);
    expect(nusc.table('log')[0]!.map_token).toBe(nusc.table('map')[0]!.token);
  });

  it('names the table and token of an unknown record', () => {
    const e = catchErr(() => nusc.get('sample', 'nope'));
    expect(e).toBeInstanceOf(NuScenesError);
    expect(e).toMatchObject({ table: 'sample', token: 'nope' });
    expect(() => nusc.table('lidarseg' as never)).toThrow(/Table lidarseg not found/);
  });

  it('gives poses, calibration and scene samples', () => {
    expect(nusc.egoPose(fx.lidarKeyframes[1]!)).toEqual(fx.ego[fx.lidarKeyframes[1]!]);
    const cal = nusc.calibratedSensor(nusc.sampleDataToken(fx.samples[0]!, 'CAM_FRONT'));
    expect(cal.intrinsic).toEqual(FIX_K);
    expect(cal.channel).toBe('CAM_FRONT');
    expect(nusc.calibratedSensor(fx.lidarKeyframes[0]!).intrinsic).toBeNull();
    expect(nusc.sampleTokensForScenes(['scene-0001'])).toEqual(fx.samples);
    expect(nusc.sampleTokensForScenes([nusc.table('scene')[0]!.token])).toEqual(fx.samples);
    expect(() => nusc.sampleTokensForScenes(['scene-9999'])).toThrow(/No scene named "scene-9999"/);
    expect(nusc.getSampleDataPath(fx.lidarKeyframes[0]!)).toBe(join(fx.dataroot, nusc.get('sample_data', fx.lidarKeyframes[0]!).filename));
  });

  it('reads custom splits and knows the predefined ones', () => {
    expect(nusc.split('fixture_train')).toEqual(['scene-0001']);
    expect(nusc.sampleTokensForSplit('fixture_train')).toEqual(fx.samples);
    expect(nusc.split('mini_val')).toEqual(['scene-0103', 'scene-0916']);
    const train = nusc.split('train'), val = nusc.split('val'), test = nusc.split('test');
    expect([train.length, val.length, test.length]).toEqual([700, 150, 150]);
    expect(new Set([...train, ...val, ...test]).size).toBe(1000);
    expect(val[0]).toBe('scene-0003');
    expect(nusc.sampleTokensForSplit('mini_val', true)).toEqual([]);
    const e = catchErr(() => nusc.split('nonexistent'));
    expect(e).toBeInstanceOf(NuScenesError);
    expect((e as Error).message).toMatch(/Unknown split "nonexistent"\. Known splits: fixture_train, fixture_val, train, val, test, mini_train/);
  });

  it('computes box_velocity by the devkit rule', () => {
    // centred difference (car2 − car0) / 1.0 s, one-sided at the ends; the car moves at 5 m/s along global x.
    expect(nusc.boxVelocity(fx.car[1]!)).toEqual([5, 0, 0]);
    const v0 = nusc.boxVelocity(fx.car[0]!);
    expect(v0[0]).toBeCloseTo(5, 9);
    expect(nusc.boxVelocity(fx.pedestrian).every(Number.isNaN)).toBe(true);
    // Δt limits: 1.5 s one-sided, 3.0 s centred. Move sample 2 to t0 + 2.9 s, then 3.1 s.
    const s2 = nusc.get('sample', fx.samples[2]!);
    const orig = s2.timestamp;
    const t0 = nusc.get('sample', fx.samples[0]!).timestamp;
    try {
      s2.timestamp = t0 + 2_900_000;
      expect(Number.isNaN(nusc.boxVelocity(fx.car[1]!)[0])).toBe(false); // centred 2.9 s ≤ 3.0
      expect(nusc.boxVelocity(fx.car[2]!).every(Number.isNaN)).toBe(true); // one-sided 2.4 s > 1.5
      const a0 = nusc.get('sample_annotation', fx.car[0]!), a2 = nusc.get('sample_annotation', fx.car[2]!);
      const dt = 1e-6 * s2.timestamp - 1e-6 * t0;
      expect(nusc.boxVelocity(fx.car[1]!)[0]).toBe((a2.translation[0] - a0.translation[0]) / dt);
      s2.timestamp = t0 + 3_100_000;
      expect(nusc.boxVelocity(fx.car[1]!).every(Number.isNaN)).toBe(true);
      expect(nusc.boxVelocity(fx.car[1]!, 1.6).every(Number.isNaN)).toBe(false);
    } finally {
      s2.timestamp = orig;
    }
  });

  it('returns global boxes and the devkit get_sample_data view', () => {
    const boxes = nusc.boxesForSample(fx.samples[0]!);
    expect(boxes.map((b) => b.token)).toEqual([fx.car[0], fx.animal]);
    expect(boxes[0]).toMatchObject({ name: 'vehicle.car', center: [110, 203, 1], size: [1.9, 4.5, 1.6] });
    const lidar = nusc.getSampleData(fx.lidarKeyframes[0]!);
    expect(lidar.intrinsic).toBeNull();
    const sensorFromGlobal = invertTransform(composeTransforms(fx.ego[fx.lidarKeyframes[0]!]!, fx.lidarCalib));
    const c = transformPoint(sensorFromGlobal, [110, 203, 1]);
    lidar.boxes[0]!.center.forEach((v, k) => expect(v).toBeCloseTo(c[k]!, 9));
    expect(quatYaw(lidar.boxes[0]!.rotation)).toBeCloseTo(0.1 - 0.3 - Math.PI / 2, 9);
    // In CAM_BACK nothing of sample 0 is visible; 'none' keeps every box.
    const back = nusc.sampleDataToken(fx.samples[0]!, 'CAM_BACK');
    expect(nusc.getSampleData(back).boxes.length).toBe(0);
    expect(nusc.getSampleData(back, { boxVisLevel: 'none' }).boxes.length).toBe(2);
    // A sweep gets boxes interpolated between the previous and the current sample.
    const sweep1 = fx.lidarChain[2]!; // sweep before keyframe 1, halfway between samples 0 and 1
    const interp = nusc.getBoxes(sweep1);
    expect(interp.map((b) => b.token)).toEqual([fx.car[1], fx.pedestrian]);
    expect(interp[0]!.center[0]).toBeCloseTo(110 + 5 * 0.25, 9);
    expect(interp[1]!.center).toEqual([105, 195, 0.9]);
  });

  it('uses the marker geometry consistently (fixture self-check)', () => {
    const cam = nusc.sampleDataToken(fx.samples[0]!, 'CAM_FRONT');
    const camFromGlobal = invertTransform(composeTransforms(nusc.egoPose(cam), nusc.calibratedSensor(cam).transform));
    const p = transformPoint(camFromGlobal, fx.markerGlobal);
    expect(p[2]).toBeCloseTo(FIX_MARKER.depth, 9);
    expect((FIX_K[0] * p[0]) / p[2] + FIX_K[2]).toBeCloseTo(FIX_MARKER.u, 9);
  });
});

describe('readJsonRecords', () => {
  it('splits records across chunk boundaries, with braces and escapes inside strings', async () => {
    const rows = [
      { token: 'a', s: 'x{y}[z]"q"\\', n: [1, { m: 2 }] },
      { token: 'b', s: 'ü€😀', t: true, z: null },
      { token: 'c', nested: { deep: [[[]], {}] }, e: -1.5e-7 },
    ];
    const file = join(fx.dataroot, 'rows.json');
    await writeFile(file, '\ufeff' + JSON.stringify(rows, null, 2));
    for (const chunk of [1, 3, 7, 64, 1 << 20]) expect(await readJsonRecords(file, chunk)).toEqual(rows);
    await writeFile(file, '[]');
    expect(await readJsonRecords(file)).toEqual([]);
    // the same error position whether the bad record spans chunks or is parsed with its neighbours
    await writeFile(file, '[\n {"token": "a"},\n {"token": "b",\n  "x": tru},\n {"token": "c"}\n]');
    for (const chunk of [4, 13, 1 << 20]) {
      const e = await readJsonRecords(file, chunk).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(NuScenesError);
      expect(e).toMatchObject({ file, line: 4, column: 8 });
    }
  });
});

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}
