/**
 * The nuScenes database: the 13 tables indexed by token, with the devkit's derived fields and links
 * validated at load. Tables are read asynchronously (streamed); everything after `openNuScenes` is sync.
 */
import { stat, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  composeTransforms, invertTransform, orientedBoxCorners, quatSlerp, transformOrientedBox,
  type Mat3, type OrientedBox3, type RigidTransform, type Vec3,
} from '@bevzoo/core';
import { NuScenesError } from './errors.js';
import { locateJsonError, readJsonRecords } from './json-records.js';
import { OFFICIAL_SPLIT_NAMES, officialSplit } from './official-splits.js';
import { describeValue, validateTables, type RawTables, type TableIndexes } from './validate-tables.js';
import {
  LIDAR_CHANNEL, TABLE_NAMES,
  type SampleAnnotationRecord, type SampleDataRecord, type SampleRecord, type SceneRecord, type TableName, type TableRecords,
} from './tables.js';

export interface OpenNuScenesOptions {
  /** Folder holding `<version>/`, `samples/`, `sweeps/`, `maps/`. */
  dataroot: string;
  /** Table folder name, default `v1.0-trainval`. */
  version?: string;
  /** Print table sizes and timings like the devkit. */
  verbose?: boolean;
  /** Check that every map record's PNG exists, as the devkit's MapMask does at load (default true). */
  checkMapFiles?: boolean;
}

/** An annotation box: centre, size (w, l, h), full rotation (core's OrientedBox3); `name` is the category name. */
export interface AnnotationBox extends OrientedBox3 {
  token: string;
  name: string;
}

type Tables = { [K in TableName]: TableRecords[K][] };
type Indexes = { [K in TableName]: Map<string, number> };

/** Load a nuScenes-format folder (real or synthetic). */
export async function openNuScenes(opts: OpenNuScenesOptions): Promise<NuScenes> {
  const dataroot = resolve(opts.dataroot);
  const version = opts.version ?? 'v1.0-trainval';
  const tableRoot = join(dataroot, version);
  const log = opts.verbose ? (m: string) => console.log(m) : () => {};
  try {
    const s = await stat(tableRoot);
    if (!s.isDirectory()) throw new Error('not a directory');
  } catch {
    throw new NuScenesError(`Database version not found: ${tableRoot} (expected <dataroot>/<version>/ with the 13 table JSON files)`, {
      file: tableRoot, expected: 'a folder with the table JSON files',
    });
  }
  const t0 = Date.now();
  log(`======\nLoading NuScenes tables for version ${version}...`);
  const tables = {} as RawTables;
  for (const name of TABLE_NAMES) tables[name] = await readJsonRecords(join(tableRoot, `${name}.json`));
  for (const name of TABLE_NAMES) log(`${tables[name].length} ${name},`);
  log(`Done loading in ${((Date.now() - t0) / 1000).toFixed(3)} seconds.\n======`);

  const splitsFile = join(tableRoot, 'splits.json');
  const splits = await readSplits(splitsFile);
  const t1 = Date.now();
  log('Reverse indexing ...');
  const nusc = createNuScenes({ dataroot, version, tables, splits, splitsFile });
  log(`Done reverse indexing in ${((Date.now() - t1) / 1000).toFixed(1)} seconds.\n======`);

  if (opts.checkMapFiles ?? true) {
    for (const m of nusc.table('map')) {
      const file = join(dataroot, m.filename);
      const ok = await stat(file).then((s) => s.isFile(), () => false);
      if (!ok)
        throw new NuScenesError(`map mask ${file} does not exist (map record ${m.token}, field "filename")`, {
          file, table: 'map', token: m.token, field: 'filename', expected: 'an existing PNG file',
        });
    }
  }
  return nusc;
}

export interface CreateNuScenesOptions {
  /** Folder the records' filenames are relative to. */
  dataroot: string;
  version: string;
  /** The 13 tables' records as parsed from JSON. They are validated, then extended with the derived fields in place. */
  tables: RawTables;
  /** Custom splits (the content of splits.json: split name → scene names), or null for none. */
  splits?: Record<string, string[]> | null;
  splitsFile?: string;
}

/**
 * A database from tables already in memory (openNuScenes reads them from disk, then calls this): tokens indexed,
 * every field, link and chain validated (a NuScenesError names the first problem), derived fields added. Data
 * files (map PNGs, sweeps, images) are not looked at.
 */
export function createNuScenes(opts: CreateNuScenesOptions): NuScenes {
  const dataroot = resolve(opts.dataroot);
  const tableRoot = join(dataroot, opts.version);
  const tables = opts.tables;
  const index = {} as TableIndexes;
  for (const name of TABLE_NAMES) {
    const file = join(tableRoot, `${name}.json`);
    const rows = tables[name];
    if (!Array.isArray(rows))
      throw new NuScenesError(`${name}.json must be a JSON array of records`, { file, table: name, expected: 'an array of records', found: describeValue(rows) });
    const idx = new Map<string, number>();
    rows.forEach((rec, i) => {
      if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
        throw new NuScenesError(`${name}.json: record #${i} is not an object (found ${describeValue(rec)})`, {
          file, table: name, field: `#${i}`, expected: 'a record object', found: describeValue(rec),
        });
      const token = rec.token;
      if (typeof token !== 'string' || token === '')
        throw new NuScenesError(`${name}.json: record #${i} has no string "token" (found ${JSON.stringify(token)})`, {
          file, table: name, field: 'token', expected: 'a non-empty string', found: describeValue(token),
        });
      if (idx.has(token))
        throw new NuScenesError(`${name}.json: duplicate token ${token} (records #${idx.get(token)} and #${i})`, { file, table: name, token, field: 'token' });
      idx.set(token, i);
    });
    index[name] = idx;
  }
  validateTables(tables, index, tableRoot);
  addDerivedFields(tables as unknown as Tables, index as Indexes, tableRoot);
  return new NuScenes(dataroot, opts.version, tables as unknown as Tables, index as Indexes, opts.splits ?? null, opts.splits ? opts.splitsFile : undefined);
}

function addDerivedFields(t: Tables, index: Indexes, tableRoot: string): void {
  const get = <K extends TableName>(name: K, token: string) => t[name][index[name].get(token)!]!;
  for (const rec of t.sample_annotation) {
    const inst = get('instance', rec.instance_token);
    rec.category_name = get('category', inst.category_token).name;
  }
  for (const rec of t.sample_data) {
    const cs = get('calibrated_sensor', rec.calibrated_sensor_token);
    const sensor = get('sensor', cs.sensor_token);
    rec.sensor_modality = sensor.modality;
    rec.channel = sensor.channel;
  }
  for (const rec of t.sample) {
    rec.data = {};
    rec.anns = [];
  }
  for (const rec of t.sample_data) if (rec.is_key_frame) get('sample', rec.sample_token).data![rec.channel!] = rec.token;
  for (const rec of t.sample_annotation) get('sample', rec.sample_token).anns!.push(rec.token);
  const logToMap = new Map<string, string>();
  for (const m of t.map) for (const l of m.log_tokens) logToMap.set(l, m.token);
  for (const l of t.log) {
    const m = logToMap.get(l.token);
    if (m === undefined)
      throw new NuScenesError(`log ${l.token} is not covered by any map record (map.json log_tokens)`, {
        file: join(tableRoot, 'map.json'), table: 'log', token: l.token, field: 'map_token', expected: 'a map whose log_tokens include this log',
      });
    l.map_token = m;
  }
}

async function readSplits(file: string): Promise<Record<string, string[]> | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new NuScenesError(`Cannot read ${file}: ${(e as Error).message}`, { file });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    const loc = locateJsonError(text);
    const before = text.slice(0, loc.offset);
    const line = before.split('\n').length;
    const column = loc.offset - before.lastIndexOf('\n');
    throw new NuScenesError(`Malformed JSON in ${file} at line ${line}, column ${column}: ${loc.reason}`, { file, line, column, expected: 'valid JSON' });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new NuScenesError(`${file} must be an object mapping split name → list of scene names`, { file, expected: 'an object' });
  for (const [k, v] of Object.entries(data)) {
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      throw new NuScenesError(`${file}: split "${k}" must be a list of scene names`, { file, field: k, expected: 'an array of strings', found: JSON.stringify(v).slice(0, 80) });
  }
  return data as Record<string, string[]>;
}

export interface CalibratedSensorInfo {
  /** sensor → ego */
  transform: RigidTransform;
  /** 3×3 row-major camera intrinsics, null for non-cameras. */
  intrinsic: Mat3 | null;
  channel: string;
  modality: string;
}

export type BoxVisibility = 'all' | 'any' | 'none';

export class NuScenes {
  readonly tableRoot: string;
  private readonly sceneByName = new Map<string, SceneRecord>();

  /** @internal use openNuScenes */
  constructor(
    readonly dataroot: string,
    readonly version: string,
    private readonly tables: Tables,
    private readonly index: Indexes,
    private readonly customSplits: Record<string, string[]> | null,
    readonly splitsFile: string | undefined,
  ) {
    this.tableRoot = join(dataroot, version);
    for (const s of tables.scene) this.sceneByName.set(s.name, s);
  }

  /** All records of a table, in file order. */
  table<K extends TableName>(name: K): readonly TableRecords[K][] {
    this.checkTable(name);
    return this.tables[name];
  }

  /** A record by token; throws a NuScenesError naming the table and token when absent. */
  get<K extends TableName>(name: K, token: string): TableRecords[K] {
    return this.tables[name][this.getind(name, token)]!;
  }

  has(name: TableName, token: string): boolean {
    this.checkTable(name);
    return this.index[name].has(token);
  }

  /** Index of a record in its table. */
  getind(name: TableName, token: string): number {
    this.checkTable(name);
    const i = this.index[name].get(token);
    if (i === undefined)
      throw new NuScenesError(`No ${name} record with token "${token}"`, { table: name, token, file: join(this.tableRoot, `${name}.json`) });
    return i;
  }

  /** Tokens of the records whose `field` equals `query` (linear time, like the devkit). */
  field2token<K extends TableName>(name: K, field: keyof TableRecords[K] & string, query: unknown): string[] {
    return this.table(name).filter((r) => (r as unknown as Record<string, unknown>)[field] === query).map((r) => r.token);
  }

  private checkTable(name: string): void {
    if (!(TABLE_NAMES as readonly string[]).includes(name))
      throw new NuScenesError(`Table ${name} not found (known: ${TABLE_NAMES.join(', ')})`, { table: name });
  }

  /** Absolute path of a sample_data file. */
  getSampleDataPath(sampleDataToken: string): string {
    return join(this.dataroot, this.get('sample_data', sampleDataToken).filename);
  }

  /** ego → global pose of a sample_data record. */
  egoPose(sampleDataToken: string): RigidTransform {
    const ep = this.get('ego_pose', this.get('sample_data', sampleDataToken).ego_pose_token);
    return { rotation: [...ep.rotation], translation: [...ep.translation] };
  }

  /** sensor → ego calibration of a sample_data record. */
  calibratedSensor(sampleDataToken: string): CalibratedSensorInfo {
    const sd = this.get('sample_data', sampleDataToken);
    const cs = this.get('calibrated_sensor', sd.calibrated_sensor_token);
    const k = cs.camera_intrinsic;
    const intrinsic = k.length === 3 ? (k.flat() as Mat3) : null; // validated at load: [] or 3×3
    return { transform: { rotation: [...cs.rotation], translation: [...cs.translation] }, intrinsic, channel: sd.channel!, modality: sd.sensor_modality! };
  }

  /** The keyframe sample_data token of `channel` in a sample (error when the sample has none). */
  sampleDataToken(sampleToken: string, channel: string): string {
    const s = this.get('sample', sampleToken);
    const t = s.data![channel];
    if (!t)
      throw new NuScenesError(`sample ${sampleToken} has no keyframe sample_data for channel ${channel}`, {
        table: 'sample', token: sampleToken, field: `data.${channel}`, expected: `a keyframe ${channel} sample_data`,
      });
    return t;
  }

  /** The scene record of a sample. */
  sceneOf(sampleToken: string): SceneRecord {
    return this.get('scene', this.get('sample', sampleToken).scene_token);
  }

  /** A scene by name (e.g. `scene-0061`). */
  sceneByNameOrToken(nameOrToken: string): SceneRecord {
    const s = this.sceneByName.get(nameOrToken) ?? (this.index.scene.has(nameOrToken) ? this.get('scene', nameOrToken) : undefined);
    if (!s)
      throw new NuScenesError(`No scene named "${nameOrToken}" in ${this.tableRoot}`, { table: 'scene', field: 'name', found: nameOrToken, file: join(this.tableRoot, 'scene.json') });
    return s;
  }

  /** Sample tokens of a scene in time order (first_sample_token → next). */
  sceneSampleTokens(sceneToken: string): string[] {
    const scene = this.get('scene', sceneToken);
    const out: string[] = [];
    let t = scene.first_sample_token;
    const limit = this.tables.sample.length;
    while (t !== '') {
      if (out.length > limit)
        throw new NuScenesError(`scene ${scene.name}: the sample chain loops`, { table: 'sample', token: t, field: 'next' });
      out.push(t);
      t = this.get('sample', t).next;
    }
    return out;
  }

  /** Sample tokens of the given scenes (names or tokens), scene by scene, each in time order. */
  sampleTokensForScenes(scenes: readonly string[]): string[] {
    return scenes.flatMap((s) => this.sceneSampleTokens(this.sceneByNameOrToken(s).token));
  }

  /** Split names available: the ones in splits.json, then the devkit's predefined ones. */
  splitNames(): string[] {
    const custom = this.customSplits ? Object.keys(this.customSplits) : [];
    return [...custom, ...OFFICIAL_SPLIT_NAMES.filter((n) => !custom.includes(n))];
  }

  /**
   * Scene names of a split. A split in `<dataroot>/<version>/splits.json` wins over a predefined split of the same
   * name (so a synthetic or custom dataset can define `train` / `val`); otherwise the devkit's predefined splits.
   */
  split(name: string): string[] {
    const custom = this.customSplits?.[name];
    if (custom) return [...custom];
    const official = officialSplit(name);
    if (official) return official;
    throw new NuScenesError(
      `Unknown split "${name}". Known splits: ${this.splitNames().join(', ')}${this.splitsFile ? ` (custom ones from ${this.splitsFile})` : ' (no splits.json in ' + this.tableRoot + ')'}`,
      { file: this.splitsFile, field: name, expected: this.splitNames().join(', '), found: name },
    );
  }

  /**
   * Sample tokens of a split's scenes. Predefined splits list scenes of the full dataset; scenes absent from this
   * version (e.g. `val` on v1.0-mini) are skipped only when `allowMissing` is set.
   */
  sampleTokensForSplit(name: string, allowMissing = false): string[] {
    const names = this.split(name);
    return this.sampleTokensForScenes(allowMissing ? names.filter((n) => this.sceneByName.has(n)) : names);
  }

  /**
   * The devkit's box_velocity: centred difference between prev and next annotation (or one-sided with the current
   * one), Δt from the sample timestamps; NaN when there is neither, or when Δt exceeds max_time_diff (doubled for
   * the centred difference). Global frame, m/s.
   */
  boxVelocity(annToken: string, maxTimeDiff = 1.5): Vec3 {
    const current = this.get('sample_annotation', annToken);
    const hasPrev = current.prev !== '', hasNext = current.next !== '';
    if (!hasPrev && !hasNext) return [NaN, NaN, NaN];
    const first = hasPrev ? this.get('sample_annotation', current.prev) : current;
    const last = hasNext ? this.get('sample_annotation', current.next) : current;
    const timeLast = 1e-6 * this.get('sample', last.sample_token).timestamp;
    const timeFirst = 1e-6 * this.get('sample', first.sample_token).timestamp;
    const dt = timeLast - timeFirst;
    const maxDt = hasPrev && hasNext ? maxTimeDiff * 2 : maxTimeDiff;
    if (dt > maxDt) return [NaN, NaN, NaN];
    return [
      (last.translation[0] - first.translation[0]) / dt,
      (last.translation[1] - first.translation[1]) / dt,
      (last.translation[2] - first.translation[2]) / dt,
    ];
  }

  /** An annotation as a box in the global frame. */
  getBox(annToken: string): AnnotationBox {
    const a = this.get('sample_annotation', annToken);
    return { token: a.token, name: a.category_name!, center: [...a.translation], size: [...a.size], rotation: [...a.rotation] };
  }

  /** The sample's annotations as global-frame boxes, in the row order of sample_annotation.json. */
  boxesForSample(sampleToken: string): AnnotationBox[] {
    return this.get('sample', sampleToken).anns!.map((t) => this.getBox(t));
  }

  /**
   * The devkit's get_boxes: the sample's boxes for a keyframe; for a sweep, boxes interpolated between the previous
   * and the current sample (centre linearly, rotation by slerp) for instances present in both. Global frame.
   */
  getBoxes(sampleDataToken: string): AnnotationBox[] {
    const sd = this.get('sample_data', sampleDataToken);
    const cur = this.get('sample', sd.sample_token);
    if (cur.prev === '' || sd.is_key_frame) return cur.anns!.map((t) => this.getBox(t));
    const prev = this.get('sample', cur.prev);
    const prevByInstance = new Map<string, SampleAnnotationRecord>();
    for (const t of prev.anns!) {
      const a = this.get('sample_annotation', t);
      prevByInstance.set(a.instance_token, a);
    }
    const t0 = prev.timestamp, t1 = cur.timestamp;
    const t = Math.max(t0, Math.min(t1, sd.timestamp));
    return cur.anns!.map((tok) => {
      const a = this.get('sample_annotation', tok);
      const p = prevByInstance.get(a.instance_token);
      if (!p) return this.getBox(tok);
      const center = a.translation.map((c1, k) => interp1(t, t0, t1, p.translation[k]!, c1)) as Vec3;
      const rotation = quatSlerp(p.rotation, a.rotation, (t - t0) / (t1 - t0));
      return { token: a.token, name: a.category_name!, center, size: [...a.size], rotation };
    });
  }

  /**
   * The devkit's get_sample_data: file path, the boxes moved into the sensor frame (for cameras only those visible
   * at `boxVisLevel`, default 'any'), and the camera intrinsic (null for other sensors).
   */
  getSampleData(sampleDataToken: string, opts: { boxVisLevel?: BoxVisibility; selectedAnnTokens?: string[] } = {}): {
    path: string; boxes: AnnotationBox[]; intrinsic: Mat3 | null; record: SampleDataRecord;
  } {
    const sd = this.get('sample_data', sampleDataToken);
    const cal = this.calibratedSensor(sampleDataToken);
    const sensorFromGlobal = invertTransform(composeTransforms(this.egoPose(sampleDataToken), cal.transform));
    const boxes = opts.selectedAnnTokens ? opts.selectedAnnTokens.map((t) => this.getBox(t)) : this.getBoxes(sampleDataToken);
    const out: AnnotationBox[] = [];
    for (const b of boxes) {
      const moved = transformOrientedBox(sensorFromGlobal, b);
      if (cal.modality === 'camera' && !boxInImage(moved, cal.intrinsic!, [sd.width, sd.height], opts.boxVisLevel ?? 'any')) continue;
      out.push(moved);
    }
    return { path: this.getSampleDataPath(sampleDataToken), boxes: out, intrinsic: cal.intrinsic, record: sd };
  }

  /** Keyframe LIDAR_TOP sample_data token of a sample. */
  lidarToken(sampleToken: string): string {
    return this.sampleDataToken(sampleToken, LIDAR_CHANNEL);
  }

  /** Count of records per table. */
  summary(): Record<TableName, number> {
    return Object.fromEntries(TABLE_NAMES.map((n) => [n, this.tables[n].length])) as Record<TableName, number>;
  }

  /** A sample record (shortcut). */
  sample(token: string): SampleRecord {
    return this.get('sample', token);
  }
}

function interp1(x: number, x0: number, x1: number, y0: number, y1: number): number {
  if (x <= x0) return y0;
  if (x >= x1) return y1;
  return y0 + ((x - x0) * (y1 - y0)) / (x1 - x0);
}

/** The devkit's box_in_image (box in the camera frame). */
export function boxInImage(box: AnnotationBox, intrinsic: Mat3, imsize: [number, number], level: BoxVisibility): boolean {
  if (level === 'none') return true;
  const corners = orientedBoxCorners(box);
  let anyVisible = false, allVisible = true, allInFront = true;
  for (const [x, y, z] of corners) {
    const u = (intrinsic[0] * x + intrinsic[1] * y + intrinsic[2] * z) / z;
    const v = (intrinsic[3] * x + intrinsic[4] * y + intrinsic[5] * z) / z;
    const vis = u > 0 && u < imsize[0] && v < imsize[1] && v > 0 && z > 1;
    anyVisible ||= vis;
    allVisible &&= vis;
    allInFront &&= z > 0.1;
  }
  return level === 'all' ? allVisible && allInFront : anyVisible && allInFront;
}
