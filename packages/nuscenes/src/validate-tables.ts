/**
 * Validation of the 13 tables at load time, before anything else reads them: every field the reader, the frame
 * loader, the batcher and the evaluation use has the right type and shape (translations 3 finite numbers,
 * rotations 4 with a non-zero norm, sizes 3 numbers > 0, camera intrinsics 3×3), counts and timestamps are
 * non-negative, links point to existing records, and the prev/next chains are consistent (each link answered by
 * the record it points to, same scene / sensor / instance, strictly increasing in time, so no walk along a chain
 * can loop). Every problem is a NuScenesError naming the file, table, token, field, expected and found.
 */
import { join } from 'node:path';
import { NuScenesError } from './errors.js';
import { TABLE_NAMES, type TableName } from './tables.js';

/** Raw records of each table, as parsed. */
export type RawTables = Record<TableName, Record<string, unknown>[]>;
/** Token → row index of each table. */
export type TableIndexes = Record<TableName, Map<string, number>>;

interface Problem {
  field: string;
  expected: string;
  found: unknown;
  /** The error message, when the default "field: expected …, found …" says it less well. */
  message?: string;
}
/** Checks one field's value; `field` is its name (nested problems name the element, e.g. `size[1]`). */
type Check = (value: unknown, field: string) => Problem | undefined;

const isNumber = (v: unknown): v is number => typeof v === 'number';
const bad = (field: string, expected: string, found: unknown): Problem => ({ field, expected, found });

const string: Check = (v, f) => (typeof v === 'string' ? undefined : bad(f, 'a string', v));
const nonEmpty: Check = (v, f) => (typeof v === 'string' && v !== '' ? undefined : bad(f, 'a non-empty string', v));
const bool: Check = (v, f) => (typeof v === 'boolean' ? undefined : bad(f, 'true or false', v));
const count: Check = (v, f) => (isNumber(v) && Number.isInteger(v) && v >= 0 ? undefined : bad(f, 'an integer ≥ 0', v));
const time: Check = (v, f) => (isNumber(v) && Number.isFinite(v) && v >= 0 ? undefined : bad(f, 'a finite timestamp ≥ 0 (µs)', v));
const tokens: Check = (v, f) => {
  if (!Array.isArray(v)) return bad(f, 'an array of tokens', v);
  const i = v.findIndex((t) => typeof t !== 'string');
  return i < 0 ? undefined : bad(`${f}[${i}]`, 'a token string', v[i]);
};
const oneOf = (values: readonly string[]): Check => (v, f) =>
  typeof v === 'string' && values.includes(v) ? undefined : bad(f, `one of ${values.join(', ')}`, v);
const optional = (check: Check): Check => (v, f) => (v === undefined ? undefined : check(v, f));

/** An array of `n` numbers, each passing `ok`. */
const numbers = (n: number, what: string, ok: (x: number) => boolean): Check => (v, f) => {
  if (!Array.isArray(v) || v.length !== n) return bad(f, `an array of ${n} numbers`, v);
  const i = v.findIndex((x) => !(isNumber(x) && ok(x)));
  return i < 0 ? undefined : bad(`${f}[${i}]`, what, v[i]);
};
const translation = numbers(3, 'a finite number (m)', Number.isFinite);
const size = numbers(3, 'a finite size > 0 (m; width, length, height)', (x) => Number.isFinite(x) && x > 0);
const rotation: Check = (v, f) =>
  numbers(4, 'a finite number (quaternion w, x, y, z)', Number.isFinite)(v, f) ??
  ((v as number[]).some((x) => x !== 0) ? undefined : bad(f, 'a quaternion (w, x, y, z) of non-zero norm', v));

/** `[]` (not a camera) or a 3×3 matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0. */
const intrinsic: Check = (v, f) => {
  if (Array.isArray(v) && v.length === 0) return undefined;
  const what = '[] or a 3×3 matrix (3 rows of 3 numbers)';
  if (!Array.isArray(v) || v.length !== 3) return bad(f, what, v);
  for (let r = 0; r < 3; r++) {
    const row: unknown = v[r];
    if (!Array.isArray(row) || row.length !== 3) return bad(`${f}[${r}]`, `a row of 3 numbers (${what})`, row);
    const c = row.findIndex((x) => !(isNumber(x) && Number.isFinite(x)));
    if (c >= 0) return bad(`${f}[${r}][${c}]`, 'a finite number', row[c]);
  }
  const K = v as number[][];
  if (!(K[0]![0]! > 0)) return bad(`${f}[0][0]`, 'a focal length fx > 0', K[0]![0]);
  if (!(K[1]![1]! > 0)) return bad(`${f}[1][1]`, 'a focal length fy > 0', K[1]![1]);
  if (K[2]![0] !== 0 || K[2]![1] !== 0 || K[2]![2] !== 1) return bad(`${f}[2]`, 'the last row [0, 0, 1]', K[2]);
  return undefined;
};

/** The fields of each table and what they must hold (extra fields are allowed and ignored). */
const FIELDS: { [K in TableName]: Record<string, Check> } = {
  category: { name: nonEmpty, description: string, index: optional(count) },
  attribute: { name: nonEmpty, description: string },
  visibility: { level: string, description: string },
  instance: { category_token: string, nbr_annotations: count, first_annotation_token: string, last_annotation_token: string },
  sensor: { channel: nonEmpty, modality: oneOf(['camera', 'lidar', 'radar']) },
  calibrated_sensor: { sensor_token: string, translation, rotation, camera_intrinsic: intrinsic },
  ego_pose: { translation, rotation, timestamp: time },
  log: { logfile: string, vehicle: string, date_captured: string, location: string },
  scene: { name: nonEmpty, description: string, log_token: string, nbr_samples: count, first_sample_token: string, last_sample_token: string },
  sample: { timestamp: time, scene_token: string, prev: string, next: string },
  sample_data: {
    sample_token: string, ego_pose_token: string, calibrated_sensor_token: string, filename: nonEmpty, fileformat: string,
    width: count, height: count, timestamp: time, is_key_frame: bool, prev: string, next: string,
  },
  sample_annotation: {
    sample_token: string, instance_token: string, attribute_tokens: tokens, visibility_token: string, translation, size, rotation,
    num_lidar_pts: count, num_radar_pts: count, prev: string, next: string,
  },
  map: { log_tokens: tokens, category: string, filename: nonEmpty },
};

/** A link from a field to another table; `optional` says when "" is allowed. */
interface Link {
  field: string;
  target: TableName;
  many?: boolean;
  optional?: (rec: Record<string, unknown>) => boolean;
}
const always = () => true;
const LINKS: Partial<Record<TableName, Link[]>> = {
  scene: [
    { field: 'log_token', target: 'log' },
    { field: 'first_sample_token', target: 'sample', optional: (r) => r.nbr_samples === 0 },
    { field: 'last_sample_token', target: 'sample', optional: (r) => r.nbr_samples === 0 },
  ],
  sample: [
    { field: 'scene_token', target: 'scene' },
    { field: 'prev', target: 'sample', optional: always },
    { field: 'next', target: 'sample', optional: always },
  ],
  sample_data: [
    { field: 'sample_token', target: 'sample' },
    { field: 'ego_pose_token', target: 'ego_pose' },
    { field: 'calibrated_sensor_token', target: 'calibrated_sensor' },
    { field: 'prev', target: 'sample_data', optional: always },
    { field: 'next', target: 'sample_data', optional: always },
  ],
  sample_annotation: [
    { field: 'sample_token', target: 'sample' },
    { field: 'instance_token', target: 'instance' },
    { field: 'attribute_tokens', target: 'attribute', many: true },
    { field: 'visibility_token', target: 'visibility' },
    { field: 'prev', target: 'sample_annotation', optional: always },
    { field: 'next', target: 'sample_annotation', optional: always },
  ],
  instance: [
    { field: 'category_token', target: 'category' },
    { field: 'first_annotation_token', target: 'sample_annotation', optional: (r) => r.nbr_annotations === 0 },
    { field: 'last_annotation_token', target: 'sample_annotation', optional: (r) => r.nbr_annotations === 0 },
  ],
  calibrated_sensor: [{ field: 'sensor_token', target: 'sensor' }],
  map: [{ field: 'log_tokens', target: 'log', many: true }],
};

/** A value as an error's `found` shows it (strings as they are, "" as `""`). */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = typeof v === 'string' && v !== '' ? v : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Check fields, links and chains of all tables (in TABLE_NAMES order); throws the first problem found. */
export function validateTables(tables: RawTables, index: TableIndexes, tableRoot: string): void {
  const fail = (table: TableName, rec: Record<string, unknown>, p: Problem): never => {
    const token = rec.token as string;
    const found = describeValue(p.found);
    const shown = typeof p.found === 'string' ? JSON.stringify(p.found) : found;
    throw new NuScenesError(p.message ?? `${table}.json: record ${token} field "${p.field}": expected ${p.expected}, found ${shown}`, {
      file: join(tableRoot, `${table}.json`), table, token, field: p.field, expected: p.expected, found,
    });
  };
  for (const table of TABLE_NAMES) {
    const fields = Object.entries(FIELDS[table]);
    for (const rec of tables[table]) {
      for (const [field, check] of fields) {
        const p = check(rec[field], field);
        if (p) fail(table, rec, p);
      }
    }
  }
  for (const table of TABLE_NAMES) for (const rec of tables[table]) checkLinks(table, rec, index, fail);
  checkConsistency(tables, index, fail);
}

type Fail = (table: TableName, rec: Record<string, unknown>, p: Problem) => never;

function checkLinks(table: TableName, rec: Record<string, unknown>, index: TableIndexes, fail: Fail): void {
  for (const link of LINKS[table] ?? []) {
    const targets = index[link.target];
    const expected = `a ${link.target} token`;
    const dangling = (field: string, t: string): Problem => ({
      field, expected, found: t,
      message: `${table}.json: record ${String(rec.token)} field "${field}" links to ${link.target} token "${t}", which does not exist in ${link.target}.json`,
    });
    const v = rec[link.field];
    if (link.many) {
      (v as string[]).forEach((t, k) => {
        if (!targets.has(t)) fail(table, rec, dangling(`${link.field}[${k}]`, t));
      });
    } else if (v === '') {
      if (!link.optional?.(rec)) fail(table, rec, bad(link.field, expected, ''));
    } else if (!targets.has(v as string)) fail(table, rec, dangling(link.field, v as string));
  }
}

/** A chain table: the group its records must share along prev/next, and the time that must increase along it. */
interface Chain {
  table: 'sample' | 'sample_data' | 'sample_annotation';
  group: string;
  groupOf: (rec: Record<string, unknown>) => unknown;
  timeOf: (rec: Record<string, unknown>) => number;
}

function checkConsistency(t: RawTables, index: TableIndexes, fail: Fail): void {
  const get = (name: TableName, token: unknown) => t[name][index[name].get(token as string)!]!;
  const sampleTime = (rec: Record<string, unknown>) => get('sample', rec.sample_token).timestamp as number;
  const chains: Chain[] = [
    { table: 'sample', group: 'scene_token', groupOf: (r) => r.scene_token, timeOf: (r) => r.timestamp as number },
    { table: 'sample_data', group: 'sensor (through calibrated_sensor_token)', groupOf: (r) => get('calibrated_sensor', r.calibrated_sensor_token).sensor_token, timeOf: (r) => r.timestamp as number },
    { table: 'sample_annotation', group: 'instance_token', groupOf: (r) => r.instance_token, timeOf: sampleTime },
  ];
  for (const c of chains) {
    for (const rec of t[c.table]) {
      for (const [field, back, later] of [['next', 'prev', true], ['prev', 'next', false]] as const) {
        if (rec[field] === '') continue;
        const other = get(c.table, rec[field]);
        if (other[back] !== rec.token)
          fail(c.table, rec, bad(field, `a ${c.table} whose "${back}" is ${String(rec.token)}`, `${String(rec[field])} with "${back}" ${describeValue(other[back])}`));
        if (c.groupOf(other) !== c.groupOf(rec))
          fail(c.table, rec, bad(field, `a ${c.table} of the same ${c.group}`, `${String(rec[field])} of ${describeValue(c.groupOf(other))}`));
        const dt = c.timeOf(other) - c.timeOf(rec);
        if (later ? !(dt > 0) : !(dt < 0))
          fail(c.table, rec, bad(field, `a ${c.table} ${later ? 'later' : 'earlier'} in time`, `${String(rec[field])}, ${dt} µs ${later ? 'after' : 'before'}`));
      }
    }
  }
  for (const scene of t.scene) {
    if (scene.first_sample_token !== '') {
      const first = get('sample', scene.first_sample_token);
      if (first.scene_token !== scene.token || first.prev !== '')
        fail('scene', scene, bad('first_sample_token', 'the first sample of this scene (its scene_token, prev "")', `${String(first.token)} of scene ${String(first.scene_token)}, prev ${describeValue(first.prev)}`));
    }
    if (scene.last_sample_token !== '') {
      const last = get('sample', scene.last_sample_token);
      if (last.scene_token !== scene.token || last.next !== '')
        fail('scene', scene, bad('last_sample_token', 'the last sample of this scene (its scene_token, next "")', `${String(last.token)} of scene ${String(last.scene_token)}, next ${describeValue(last.next)}`));
    }
  }
  for (const inst of t.instance) {
    for (const [field, end] of [['first_annotation_token', 'prev'], ['last_annotation_token', 'next']] as const) {
      if (inst[field] === '') continue;
      const a = get('sample_annotation', inst[field]);
      if (a.instance_token !== inst.token || a[end] !== '')
        fail('instance', inst, bad(field, `an annotation of this instance with ${end} ""`, `${String(a.token)} of instance ${String(a.instance_token)}, ${end} ${describeValue(a[end])}`));
    }
  }
  for (const cs of t.calibrated_sensor) {
    const sensor = get('sensor', cs.sensor_token);
    if (sensor.modality === 'camera' && (cs.camera_intrinsic as unknown[]).length === 0)
      fail('calibrated_sensor', cs, bad('camera_intrinsic', `a 3×3 matrix (sensor ${String(sensor.channel)} is a camera)`, []));
  }
}
