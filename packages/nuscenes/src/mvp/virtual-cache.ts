/**
 * The virtual-point cache beside the dataset: `<dataroot>/virtual_points/<key>/<LiDAR filename>.bin`, one file per
 * LiDAR file (keyframes and sweeps), holding its paintings and virtual points (`SweepVirtualPoints`). `<key>` is a
 * short hash of the masks (their manifest, see `virtualPointsKey`), `numVirtual` and the format version.
 *
 * File layout (little-endian): a 24-byte header — magic "BZVP", format version, real points P_all of the LiDAR file,
 * painted points P, virtual points V, 0 — then P uint32 indices, P·11 float32 paintings and V·14 float32 virtual
 * points. The size follows from the header, so a truncated file is detected.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@bevzoo/core';
import { NuScenesError } from '../errors.js';
import { parsePcdBin, readDataFile } from '../io.js';
import type { NuScenes } from '../reader.js';
import { CAMERA_CHANNELS, LIDAR_CHANNEL } from '../tables.js';
import {
  DEFAULT_NUM_VIRTUAL, PAINT_FEATURES, VIRTUAL_POINT_VALUES, computeVirtualPoints, maskViews, virtualRng, type SweepVirtualPoints,
} from './virtual.js';

const MAGIC = 0x5056_5a42; // "BZVP" little-endian
/** Bump when the cache's content for the same masks changes (file layout or algorithm). */
export const VIRTUAL_CACHE_VERSION = 1;
const HEADER_BYTES = 24;
/** LiDAR files prepared at once by `prepareVirtualPoints`. */
const IN_FLIGHT = 8;

/** Folder of the masks (`masks/<CHANNEL>/<image name>.png|json`). */
export function masksDir(nusc: NuScenes): string {
  return join(nusc.dataroot, 'masks');
}

/**
 * What identifies the masks: the bytes of `masks/manifest.json` when it exists (the synthetic masks write one; a
 * segmenter's output should too: any JSON that changes when the masks do), else the modification times of the
 * `masks/<CHANNEL>` folders (they change when files are added, removed or replaced by a rename). A missing `masks/`
 * folder is a NuScenesError naming it.
 */
async function masksId(nusc: NuScenes): Promise<string> {
  const dir = masksDir(nusc);
  const manifest = await readFile(join(dir, 'manifest.json')).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
  if (manifest) return `manifest:${createHash('sha1').update(manifest).digest('hex')}`;
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory())
    throw new NuScenesError(
      `No masks folder ${dir}: virtual points (MVP) are made from 2-D instance masks at masks/<CHANNEL>/<image name>.png + .json beside samples/ ` +
        `(real nuScenes: your 2-D instance segmenter's output; the synthetic dataset: synthesizeMasks); see "2-D instance masks" in the @bevzoo/nuscenes README`,
      { file: dir, field: 'masks', expected: 'a folder of instance masks' },
    );
  const parts = await Promise.all(CAMERA_CHANNELS.map(async (ch) => `${ch}:${(await stat(join(dir, ch)).catch(() => null))?.mtimeMs ?? '-'}`));
  return `dirs:${parts.join(',')}`;
}

/** The cache key of the current masks and `numVirtual` (12 hex digits). */
export async function virtualPointsKey(nusc: NuScenes, numVirtual = DEFAULT_NUM_VIRTUAL): Promise<string> {
  const id = await masksId(nusc);
  return createHash('sha1').update(`bevzoo-mvp-virtual v${VIRTUAL_CACHE_VERSION}|n${numVirtual}|${id}`).digest('hex').slice(0, 12);
}

/** The cache folder of the current masks and `numVirtual`: `<dataroot>/virtual_points/<key>`. */
export async function virtualPointsDir(nusc: NuScenes, numVirtual = DEFAULT_NUM_VIRTUAL): Promise<string> {
  return join(nusc.dataroot, 'virtual_points', await virtualPointsKey(nusc, numVirtual));
}

/** The cache file of a LiDAR file (`filename` as in sample_data). */
export function virtualPointsFile(dir: string, lidarFilename: string): string {
  return join(dir, `${lidarFilename}.bin`);
}

const expectedBytes = (P: number, V: number) => HEADER_BYTES + P * 4 + P * PAINT_FEATURES * 4 + V * VIRTUAL_POINT_VALUES * 4;

function encode(v: SweepVirtualPoints): Buffer {
  const P = v.paintedIndex.length, V = v.virtual.length / VIRTUAL_POINT_VALUES;
  const out = Buffer.alloc(expectedBytes(P, V));
  [MAGIC, VIRTUAL_CACHE_VERSION, v.numReal, P, V, 0].forEach((x, i) => out.writeUInt32LE(x, i * 4));
  let o = HEADER_BYTES;
  for (const a of [v.paintedIndex, v.painting, v.virtual]) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), o);
    o += a.byteLength;
  }
  return out;
}

/** Where a cache file came from, for errors. */
export interface VirtualFileOrigin {
  /** The LiDAR sample_data token. */
  token?: string;
  /** The LiDAR file (dataroot-relative). */
  lidarFile?: string;
}

/** Parse a cache file; a bad magic, version or size is a NuScenesError naming the file. */
export function decodeVirtualPoints(buf: Uint8Array, file: string, origin: VirtualFileOrigin = {}): SweepVirtualPoints {
  const fail = (field: string, expected: string, found: string) => {
    throw new NuScenesError(
      `${file}: not a whole virtual-point cache file (${field}: expected ${expected}, found ${found}); delete it and prepare the virtual points again (prepareVirtualPoints; the runner does it for data.virtualPoints)`,
      { file, table: 'sample_data', token: origin.token, field, expected, found },
    );
  };
  if (buf.length < HEADER_BYTES) fail('header', `${HEADER_BYTES} bytes`, `${buf.length} bytes`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.readUInt32LE(0) !== MAGIC) fail('magic', '"BZVP"', JSON.stringify(b.toString('latin1', 0, 4)));
  if (b.readUInt32LE(4) !== VIRTUAL_CACHE_VERSION) fail('version', String(VIRTUAL_CACHE_VERSION), String(b.readUInt32LE(4)));
  const numReal = b.readUInt32LE(8), P = b.readUInt32LE(12), V = b.readUInt32LE(16);
  if (b.length !== expectedBytes(P, V)) fail('size', `${expectedBytes(P, V)} bytes for ${P} painted and ${V} virtual points`, `${b.length} bytes`);
  const copy = new Uint8Array(b.subarray(HEADER_BYTES)); // aligned
  const paintedIndex = new Uint32Array(copy.buffer, 0, P);
  const painting = new Float32Array(copy.buffer, P * 4, P * PAINT_FEATURES);
  const virtual = new Float32Array(copy.buffer, P * 4 * (1 + PAINT_FEATURES), V * VIRTUAL_POINT_VALUES);
  for (let i = 0; i < P; i++)
    if (paintedIndex[i]! >= numReal || (i > 0 && paintedIndex[i]! <= paintedIndex[i - 1]!)) fail(`paintedIndex[${i}]`, `ascending indices below ${numReal}`, String(paintedIndex[i]));
  return { numReal, paintedIndex, painting, virtual };
}

/**
 * Read the cache file of a LiDAR file holding `numReal` points. A missing file is a NuScenesError naming it and how to
 * prepare it; so is one made for another number of points (a stale cache).
 */
export async function readVirtualPoints(file: string, numReal: number, origin: VirtualFileOrigin = {}): Promise<SweepVirtualPoints> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NuScenesError(
      `Missing virtual points ${file}${origin.lidarFile ? ` of ${origin.lidarFile}` : ''}${origin.token ? ` (sample_data ${origin.token})` : ''}: prepare them with ` +
        `prepareVirtualPoints(nusc, { sampleTokens, sweeps }) over the samples and sweeps you load (the runner does it for data.virtualPoints); ` +
        `see "Virtual points (MVP)" in the @bevzoo/nuscenes README${err.code === 'ENOENT' ? '' : `: ${err.message}`}`,
      { file, table: 'sample_data', token: origin.token, field: 'virtual_points', expected: 'a virtual-point cache file' },
    );
  }
  const v = decodeVirtualPoints(buf, file, origin);
  if (v.numReal !== numReal)
    throw new NuScenesError(`${file}: made for ${v.numReal} LiDAR points but ${origin.lidarFile ?? 'its LiDAR file'} has ${numReal}; delete the folder and prepare the virtual points again`, {
      file, table: 'sample_data', token: origin.token, field: 'numReal', expected: String(numReal), found: String(v.numReal),
    });
  return v;
}

/** Whether a cache file is there and whole (header and size agree). */
async function isComplete(file: string): Promise<boolean> {
  const buf = await readFile(file).catch(() => null);
  if (!buf) return false;
  try {
    decodeVirtualPoints(buf, file);
    return true;
  } catch {
    return false;
  }
}

/** The virtual points of one LiDAR sample_data, computed from its file and the masks of its cameras. */
export async function computeSweepVirtualPoints(nusc: NuScenes, lidarToken: string, numVirtual = DEFAULT_NUM_VIRTUAL): Promise<SweepVirtualPoints & { cameras: number }> {
  const sd = nusc.get('sample_data', lidarToken);
  const path = join(nusc.dataroot, sd.filename);
  const origin = { table: 'sample_data', token: lidarToken, field: 'filename' };
  const views = await maskViews(nusc, lidarToken);
  if (views.length === 0) {
    // No camera image with masks within CAMERA_MAX_LAG_US: nothing to paint; the file's size gives its point count.
    const st = await stat(path).catch(() => null);
    const numReal = st && st.size % 20 === 0 ? st.size / 20 : parsePcdBin(await readDataFile(path, origin), path, origin).length / 5;
    return { numReal, paintedIndex: new Uint32Array(0), painting: new Float32Array(0), virtual: new Float32Array(0), cameras: 0 };
  }
  const points = parsePcdBin(await readDataFile(path, origin), path, origin);
  return { ...computeVirtualPoints(points, 5, views, numVirtual, virtualRng(lidarToken)), cameras: views.length };
}

export interface PrepareVirtualPointsOptions {
  /** Keyframe samples whose LiDAR keyframe and previous sweeps are prepared. */
  sampleTokens: readonly string[];
  /** Previous LiDAR sweeps per sample (as loaded: `sweeps` of the loader). */
  sweeps: number;
  /** Virtual points per mask (default 50, as MVP). */
  numVirtual?: number;
  /** Called after each LiDAR file. */
  onProgress?: (done: number, total: number) => void;
}

export interface PrepareVirtualPointsResult {
  /** The cache folder (`virtual_points/<key>`). */
  dir: string;
  key: string;
  /** LiDAR files covered. */
  files: number;
  /** Files computed now / already there. */
  written: number;
  skipped: number;
  /** Over the files written now: camera images used, painted real points, virtual points. */
  cameras: number;
  painted: number;
  virtual: number;
  seconds: number;
}

/**
 * Compute and cache the paintings and virtual points of every LiDAR file the given samples load (each keyframe and its
 * `sweeps` previous sweeps), one file per LiDAR file (temporary file, then rename). Idempotent: a whole file already
 * there is kept. Needs the masks (`masks/`).
 */
export async function prepareVirtualPoints(nusc: NuScenes, opts: PrepareVirtualPointsOptions): Promise<PrepareVirtualPointsResult> {
  const t0 = performance.now();
  const numVirtual = opts.numVirtual ?? DEFAULT_NUM_VIRTUAL;
  if (!(Number.isInteger(numVirtual) && numVirtual >= 1))
    throw new NuScenesError(`prepareVirtualPoints: numVirtual must be an integer ≥ 1, found ${numVirtual}`, { field: 'numVirtual', expected: 'an integer ≥ 1', found: String(numVirtual) });
  if (!(Number.isInteger(opts.sweeps) && opts.sweeps >= 0))
    throw new NuScenesError(`prepareVirtualPoints: sweeps must be an integer ≥ 0, found ${opts.sweeps}`, { field: 'sweeps', expected: 'an integer ≥ 0', found: String(opts.sweeps) });
  const key = await virtualPointsKey(nusc, numVirtual);
  const dir = join(nusc.dataroot, 'virtual_points', key);
  const tokens: string[] = [];
  const seen = new Set<string>();
  for (const s of opts.sampleTokens) {
    let sd = nusc.get('sample_data', nusc.sampleDataToken(s, LIDAR_CHANNEL));
    for (let k = 0; k <= opts.sweeps; k++) {
      if (!seen.has(sd.token)) { seen.add(sd.token); tokens.push(sd.token); }
      if (sd.prev === '') break;
      sd = nusc.get('sample_data', sd.prev);
    }
  }
  await writeFileAtomic(join(dir, 'manifest.json'), `${JSON.stringify({ format: 'bevzoo-mvp-virtual-points', version: VIRTUAL_CACHE_VERSION, numVirtual, masks: await masksId(nusc) }, null, 1)}\n`);
  const r = { written: 0, skipped: 0, cameras: 0, painted: 0, virtual: 0 };
  let done = 0, next = 0;
  // A few files in flight: the computation is synchronous, so this overlaps only the reads, writes and fsyncs.
  const work = async () => {
    while (next < tokens.length) {
      const token = tokens[next++]!;
      const file = virtualPointsFile(dir, nusc.get('sample_data', token).filename);
      if (await isComplete(file)) r.skipped++;
      else {
        const v = await computeSweepVirtualPoints(nusc, token, numVirtual);
        await writeFileAtomic(file, [encode(v)]);
        r.written++;
        r.cameras += v.cameras;
        r.painted += v.paintedIndex.length;
        r.virtual += v.virtual.length / VIRTUAL_POINT_VALUES;
      }
      opts.onProgress?.(++done, tokens.length);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, work));
  return { dir, key, files: tokens.length, ...r, seconds: (performance.now() - t0) / 1000 };
}
