/**
 * Field, shape and chain validation at read time: each broken table is refused by openNuScenes with a NuScenesError
 * naming the file, table, token, field, what was expected and what was found.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from './errors.js';
import { loadFrame } from './frame.js';
import { openNuScenes } from './reader.js';
import type { TableName } from './tables.js';
import { buildFixture, type Fixture } from './test-fixture.js';

type Row = Record<string, unknown>;
let fx: Fixture;
beforeAll(async () => {
  fx = await buildFixture();
});
afterAll(() => rmSync(fx.dataroot, { recursive: true, force: true }));

const tableFile = (name: TableName) => join(fx.dataroot, fx.version, `${name}.json`);

/** openNuScenes with `name`.json rewritten by `edit` (as rows, or as text); the file is restored afterwards. */
async function openEdited(name: TableName, edit: ((rows: Row[]) => void) | ((text: string) => string), asText = false): Promise<unknown> {
  const original = readFileSync(tableFile(name), 'utf8');
  try {
    if (asText) writeFileSync(tableFile(name), (edit as (t: string) => string)(original));
    else {
      const rows = JSON.parse(original) as Row[];
      (edit as (r: Row[]) => void)(rows);
      writeFileSync(tableFile(name), JSON.stringify(rows, null, 1));
    }
    return await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
  } finally {
    writeFileSync(tableFile(name), original);
  }
}

async function refusal(name: TableName, edit: (rows: Row[]) => void): Promise<NuScenesError> {
  const e = await openEdited(name, edit).then(() => undefined, (err: unknown) => err);
  if (!(e instanceof NuScenesError)) throw new Error(`expected a NuScenesError, got ${e === undefined ? 'an accepted table' : String(e)}`);
  expect(e.file).toBe(tableFile(name));
  expect(e.table).toBe(name);
  return e;
}
const byToken = (rows: Row[], token: string) => rows.find((r) => r.token === token)!;
const tok = (s: string) => s.padEnd(32, '0').slice(0, 32);

describe('matrix and vector shapes', () => {
  it('refuses a camera intrinsic with 8 values', async () => {
    const e = await refusal('calibrated_sensor', (rows) => {
      byToken(rows, tok('cs_CAM_FRONT')).camera_intrinsic = [[60, 0, 47.5], [0, 60, 26.5], [0, 1]];
    });
    expect(e).toMatchObject({ token: tok('cs_CAM_FRONT'), field: 'camera_intrinsic[2]', found: '[0,1]' });
    expect(e.expected).toMatch(/a row of 3 numbers/);
    expect(e.message).toBe(`calibrated_sensor.json: record ${tok('cs_CAM_FRONT')} field "camera_intrinsic[2]": expected ${e.expected}, found [0,1]`);
  });

  it('refuses intrinsics that are not 3×3, a camera without one, and non-positive focal lengths', async () => {
    let e = await refusal('calibrated_sensor', (rows) => {
      byToken(rows, tok('cs_CAM_BACK')).camera_intrinsic = [60, 0, 47.5, 0, 60, 26.5, 0, 0, 1];
    });
    expect(e).toMatchObject({ token: tok('cs_CAM_BACK'), field: 'camera_intrinsic' });
    e = await refusal('calibrated_sensor', (rows) => {
      byToken(rows, tok('cs_CAM_BACK')).camera_intrinsic = [];
    });
    expect(e).toMatchObject({ field: 'camera_intrinsic', found: '[]' });
    expect(e.expected).toMatch(/3×3 matrix \(sensor CAM_BACK is a camera\)/);
    e = await refusal('calibrated_sensor', (rows) => {
      byToken(rows, tok('cs_CAM_BACK')).camera_intrinsic = [[-60, 0, 47.5], [0, 60, 26.5], [0, 0, 1]];
    });
    expect(e).toMatchObject({ field: 'camera_intrinsic[0][0]', found: '-60' });
  });

  it('refuses rotations without 4 values, translations without 3, sizes without 3', async () => {
    let e = await refusal('ego_pose', (rows) => {
      rows[2]!.rotation = [1, 0, 0];
    });
    expect(e).toMatchObject({ token: (rows0('ego_pose')[2] as Row).token, field: 'rotation', expected: 'an array of 4 numbers', found: '[1,0,0]' });
    e = await refusal('calibrated_sensor', (rows) => {
      rows[0]!.translation = [0.94, 0];
    });
    expect(e).toMatchObject({ field: 'translation', expected: 'an array of 3 numbers' });
    e = await refusal('sample_annotation', (rows) => {
      byToken(rows, fx.car[1]!).size = [1.9, 4.5, 1.6, 1];
    });
    expect(e).toMatchObject({ token: fx.car[1], field: 'size', expected: 'an array of 3 numbers' });
  });

  it('refuses a rotation of zero norm', async () => {
    const e = await refusal('calibrated_sensor', (rows) => {
      rows[0]!.rotation = [0, 0, 0, 0];
    });
    expect(e).toMatchObject({ field: 'rotation', found: '[0,0,0,0]' });
    expect(e.expected).toMatch(/non-zero norm/);
  });
});

function rows0(name: TableName): Row[] {
  return JSON.parse(readFileSync(tableFile(name), 'utf8')) as Row[];
}

describe('null, missing, non-finite and negative values', () => {
  it('refuses an annotation whose size is null', async () => {
    const e = await refusal('sample_annotation', (rows) => {
      byToken(rows, fx.car[0]!).size = null;
    });
    expect(e).toMatchObject({ token: fx.car[0], field: 'size', expected: 'an array of 3 numbers', found: 'null' });
  });

  it('refuses a missing field', async () => {
    let e = await refusal('sample_data', (rows) => {
      delete byToken(rows, fx.lidarKeyframes[0]!).timestamp;
    });
    expect(e).toMatchObject({ token: fx.lidarKeyframes[0], field: 'timestamp', found: 'nothing (the field is missing)' });
    e = await refusal('sample_annotation', (rows) => {
      delete byToken(rows, fx.pedestrian).num_lidar_pts;
    });
    expect(e).toMatchObject({ token: fx.pedestrian, field: 'num_lidar_pts' });
  });

  it('refuses a number too large for a double (JSON 1e400 reads as Infinity)', async () => {
    const e = await openEdited('ego_pose', (text: string) => text.replace(/"translation": \[\n\s*([-\d.e]+)/, '"translation": [\n 1e400'), true)
      .then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(NuScenesError);
    expect(e).toMatchObject({ table: 'ego_pose', field: 'translation[0]', expected: 'a finite number (m)', found: 'Infinity' });
  });

  it('refuses negative sizes, counts and timestamps, and fractional counts', async () => {
    let e = await refusal('sample_annotation', (rows) => {
      byToken(rows, fx.car[2]!).size = [1.9, -4.5, 1.6];
    });
    expect(e).toMatchObject({ token: fx.car[2], field: 'size[1]', found: '-4.5' });
    e = await refusal('sample_annotation', (rows) => {
      byToken(rows, fx.car[2]!).size = [1.9, 0, 1.6];
    });
    expect(e).toMatchObject({ field: 'size[1]', found: '0' });
    e = await refusal('sample_annotation', (rows) => {
      byToken(rows, fx.car[2]!).num_radar_pts = -1;
    });
    expect(e).toMatchObject({ field: 'num_radar_pts', expected: 'an integer ≥ 0', found: '-1' });
    e = await refusal('sample', (rows) => {
      rows[0]!.timestamp = -5;
    });
    expect(e).toMatchObject({ token: fx.samples[0], field: 'timestamp', found: '-5' });
    e = await refusal('scene', (rows) => {
      rows[0]!.nbr_samples = 2.5;
    });
    expect(e).toMatchObject({ field: 'nbr_samples', found: '2.5' });
  });

  it('refuses wrong types and empty names', async () => {
    let e = await refusal('sample_data', (rows) => {
      byToken(rows, fx.lidarKeyframes[1]!).is_key_frame = 'true';
    });
    expect(e).toMatchObject({ field: 'is_key_frame', expected: 'true or false', found: 'true' });
    expect(e.message).toMatch(/found "true"$/);
    e = await refusal('sensor', (rows) => {
      rows[0]!.modality = 'sonar';
    });
    expect(e).toMatchObject({ field: 'modality', expected: 'one of camera, lidar, radar', found: 'sonar' });
    e = await refusal('category', (rows) => {
      rows[0]!.name = '';
    });
    expect(e).toMatchObject({ field: 'name', expected: 'a non-empty string', found: '""' });
  });
});

describe('links and chains', () => {
  it("refuses a sample chain that loops or goes back in time", async () => {
    let e = await refusal('sample', (rows) => {
      rows[1]!.next = rows[1]!.token; // a loop
    });
    expect(e).toMatchObject({ token: fx.samples[1], field: 'next' });
    e = await refusal('sample', (rows) => {
      rows[2]!.timestamp = rows[0]!.timestamp; // next is not later
    });
    expect(e.field).toMatch(/^(next|prev)$/);
    expect(e.expected).toMatch(/(later|earlier) in time/);
  });

  it('refuses an annotation chain across instances and scene / instance ends that are not the chain ends', async () => {
    let e = await refusal('sample_annotation', (rows) => {
      byToken(rows, fx.car[1]!).instance_token = tok('inst_ped');
    });
    expect(e).toMatchObject({ table: 'sample_annotation', field: 'next', token: fx.car[0] });
    expect(e.expected).toMatch(/same instance_token/);
    e = await refusal('scene', (rows) => {
      rows[0]!.first_sample_token = fx.samples[1];
    });
    expect(e).toMatchObject({ field: 'first_sample_token' });
    e = await refusal('instance', (rows) => {
      byToken(rows, tok('inst_car')).last_annotation_token = fx.car[1];
    });
    expect(e).toMatchObject({ token: tok('inst_car'), field: 'last_annotation_token' });
  });

  it('refuses a sample_data chain that mixes sensors', async () => {
    const e = await refusal('sample_data', (rows) => {
      byToken(rows, fx.lidarKeyframes[0]!).calibrated_sensor_token = tok('cs_CAM_FRONT');
    });
    expect(e.field).toMatch(/^(next|prev)$/);
    expect(e.expected).toMatch(/same sensor/);
  });

  it('accepts the unedited fixture', async () => {
    await expect(openNuScenes({ dataroot: fx.dataroot, version: fx.version })).resolves.toBeDefined();
  });
});

describe('LiDAR files', () => {
  it('refuses a .pcd.bin with a non-finite value, naming the point', async () => {
    const nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
    const path = nusc.getSampleDataPath(fx.lidarKeyframes[2]!);
    const original = readFileSync(path);
    try {
      const pts = new Float32Array(original.buffer.slice(original.byteOffset, original.byteOffset + original.byteLength));
      pts[3 * 5 + 2] = NaN; // z of point 3
      writeFileSync(path, Buffer.from(pts.buffer));
      const e = await loadFrame(nusc, fx.samples[2]!, { cameras: false }).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(NuScenesError);
      expect(e).toMatchObject({ file: path, table: 'sample_data', token: fx.lidarKeyframes[2], field: 'filename', expected: 'finite float32 values', found: 'z = NaN at point 3' });
    } finally {
      writeFileSync(path, original);
    }
  });
});
