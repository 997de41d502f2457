/**
 * 2-D instance masks of camera images (the input of the MVP teacher's virtual points): per image a 16-bit gray PNG
 * of instance ids and a JSON list of the instances' class and score, at `masks/<CHANNEL>/<image name>.{png,json}`
 * beside `samples/`. Real nuScenes: written by the user's 2-D instance segmenter; the synthetic dataset: by
 * `synthesizeMasks`. See "2-D instance masks" in the package README.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { NuScenesError } from '../errors.js';
import { decodePng, PngFormatError, type PngImage } from '../synth/png.js';
import { DETECTION_CLASSES } from '../tables.js';

/** One instance of a mask file: its pixel id, class (index into DETECTION_CLASSES) and segmenter score in [0, 1]. */
export interface MaskInstance {
  id: number;
  label: number;
  score: number;
}

/** The instance masks of one image: per-pixel ids (row-major, 0 = none) and the instances they name. */
export interface InstanceMasks {
  width: number;
  height: number;
  ids: Uint16Array;
  instances: MaskInstance[];
}

/**
 * Path (relative to the dataroot, without extension) of the masks of a camera image:
 * `samples/CAM_FRONT/x.jpg` → `masks/CAM_FRONT/x` (add `.png` / `.json`); `sweeps/…` likewise.
 */
export function maskPathFor(imageFilename: string): string {
  const parts = imageFilename.replace(/\\/g, '/').split('/');
  const i = parts.findIndex((p) => p === 'samples' || p === 'sweeps');
  if (i < 0 || i + 2 >= parts.length) throw new RangeError(`maskPathFor: expected samples/<CHANNEL>/<file>.jpg or sweeps/<CHANNEL>/<file>.jpg, found '${imageFilename}'`);
  parts[i] = 'masks';
  const last = parts.length - 1;
  parts[last] = parts[last]!.replace(/\.(jpg|jpeg|png)$/i, '');
  return parts.join('/');
}

const isFile = (p: string): boolean => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** Width and height from a JPEG's SOF segment or a PNG's IHDR, reading only the file's head. */
export function imageSizeOf(file: string): { width: number; height: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new NuScenesError(`Cannot read image ${file}: ${(e as Error).message}`, { file, field: 'filename', expected: 'an existing JPEG or PNG image' });
  }
  try {
    const head = Buffer.alloc(65536);
    const n = readSync(fd, head, 0, head.length, 0);
    const b = head.subarray(0, n);
    if (n >= 24 && b.readUInt32BE(0) === 0x89504e47) return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
    if (n >= 4 && b[0] === 0xff && b[1] === 0xd8) {
      let o = 2;
      while (o + 9 < n) {
        if (b[o] !== 0xff) break;
        const m = b[o + 1]!;
        if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { o += 2; continue; }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): [len 2][precision 1][height 2][width 2].
        if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return { width: b.readUInt16BE(o + 7), height: b.readUInt16BE(o + 5) };
        o += 2 + b.readUInt16BE(o + 2);
      }
    }
    throw new NuScenesError(`${file}: cannot find the image size (expected a JPEG with a frame header or a PNG)`, { file, field: 'filename', expected: 'a JPEG or PNG image' });
  } finally {
    closeSync(fd);
  }
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = -1;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * Encode a 16-bit grayscale id map as PNG (row filter "Up", deflate level 6): the same PNG as `encodePng` writes for
 * 1 channel at 16 bit, ~3× faster than pngjs' generic path (which dominated `synthesizeMasks`).
 */
export function encodeGray16Png(width: number, height: number, ids: Uint16Array): Uint8Array {
  if (ids.length !== width * height) throw new RangeError(`encodeGray16Png: expected ${width * height} ids, found ${ids.length}`);
  const stride = width * 2;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = 2; // Up
    for (let x = 0; x < width; x++) {
      const v = ids[y * width + x]!, up = y > 0 ? ids[(y - 1) * width + x]! : 0;
      raw[o + 1 + 2 * x] = ((v >> 8) - (up >> 8)) & 0xff;
      raw[o + 2 + 2 * x] = ((v & 0xff) - (up & 0xff)) & 0xff;
    }
  }
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const b = Buffer.alloc(12 + data.length);
    b.writeUInt32BE(data.length, 0);
    b.write(type, 4, 'latin1');
    b.set(data, 8);
    b.writeUInt32BE(crc32(b.subarray(4, 8 + data.length)), 8 + data.length);
    return b;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16; // bit depth; color type 0 (gray), compression 0, filter 0, interlace 0
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 6 })), chunk('IEND', new Uint8Array(0))]);
}

/**
 * Decode a PNG that should hold 16-bit gray ids. Non-interlaced 16-bit grayscale files (what segmenters and
 * `encodeGray16Png` / `encodePng` write) take a direct zlib path, ~7× faster than pngjs' generic 16-bit decoder;
 * anything else goes through `decodePng` (pngjs), whose channels and bit depth the caller then checks.
 */
export function decodeIdPng(bytes: Uint8Array, where: string): PngImage {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sig = b.length >= 33 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a && b.toString('latin1', 12, 16) === 'IHDR';
  if (!sig || b[24] !== 16 || b[25] !== 0 || b[28] !== 0) return decodePng(bytes, where);
  const W = b.readUInt32BE(16), H = b.readUInt32BE(20);
  const idat: Buffer[] = [];
  let o = 8;
  while (o + 12 <= b.length) {
    const len = b.readUInt32BE(o), type = b.toString('latin1', o + 4, o + 8);
    if (o + 12 + len > b.length) throw new PngFormatError(`expected a readable PNG file: chunk ${type} runs past the end of the file`, where);
    if (type === 'IDAT') idat.push(b.subarray(o + 8, o + 8 + len));
    if (type === 'IEND') break;
    o += 12 + len;
  }
  const stride = W * 2;
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new PngFormatError(`expected a readable PNG file: ${(e as Error).message}`, where);
  }
  if (raw.length < (stride + 1) * H) throw new PngFormatError(`expected a readable PNG file: ${(stride + 1) * H} bytes of image data, found ${raw.length}`, where);
  // Unfilter in place (bytes per pixel 2); row y's bytes start at y·(stride + 1) + 1, after its filter byte.
  const zero = new Uint8Array(stride);
  const data = new Uint16Array(W * H);
  for (let y = 0; y < H; y++) {
    const f = raw[y * (stride + 1)]!, r = y * (stride + 1) + 1;
    const up = y > 0 ? raw.subarray(r - stride - 1, r - 1) : zero;
    const cur = raw.subarray(r, r + stride);
    if (f === 1) for (let i = 2; i < stride; i++) cur[i] = cur[i]! + cur[i - 2]!;
    else if (f === 2) for (let i = 0; i < stride; i++) cur[i] = cur[i]! + up[i]!;
    else if (f === 3) for (let i = 0; i < stride; i++) cur[i] = cur[i]! + (((i >= 2 ? cur[i - 2]! : 0) + up[i]!) >> 1);
    else if (f === 4)
      for (let i = 0; i < stride; i++) {
        const a = i >= 2 ? cur[i - 2]! : 0, b = up[i]!, c = i >= 2 ? up[i - 2]! : 0;
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        cur[i] = cur[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
    else if (f !== 0) throw new PngFormatError(`expected a readable PNG file: unknown row filter ${f} in row ${y}`, where);
    for (let x = 0, o = y * W; x < W; x++) data[o + x] = (cur[2 * x]! << 8) | cur[2 * x + 1]!;
  }
  return { width: W, height: H, channels: 1, bitDepth: 16, data };
}

/**
 * Read the instance masks of a camera image (`maskPathFor(imageFilename)` + `.png` / `.json` under `dataroot`).
 * Null when neither file exists. Checked: the PNG is 1-channel 16-bit of the image's size (`imageSize`, else read
 * from the image file's header), the JSON is `{"instances": [{id, label, score}, …]}` with distinct integer ids in
 * 1..65535, labels among the 10 detection classes and scores in [0, 1], and every id found in the PNG is listed. An
 * instance listed but absent from the PNG (fully covered by another mask) is kept. A half-present pair or any
 * failed check is a NuScenesError naming the file and the field.
 */
export function readInstanceMasks(dataroot: string, imageFilename: string, imageSize?: { width: number; height: number }): InstanceMasks | null {
  const base = join(dataroot, maskPathFor(imageFilename));
  const pngFile = `${base}.png`, jsonFile = `${base}.json`;
  const hasPng = isFile(pngFile), hasJson = isFile(jsonFile);
  if (!hasPng && !hasJson) return null;
  if (!hasPng || !hasJson) {
    const [missing, present] = hasPng ? [jsonFile, pngFile] : [pngFile, jsonFile];
    throw new NuScenesError(`Missing mask file ${missing} (its pair ${present} exists; masks of ${imageFilename} need both)`, {
      file: missing, field: hasPng ? 'instances' : 'ids', expected: 'both masks/<CHANNEL>/<name>.png and .json',
    });
  }
  const instances = parseMaskJson(readFileSync(jsonFile, 'utf8'), jsonFile);

  let img;
  try {
    img = decodeIdPng(readFileSync(pngFile), pngFile);
  } catch (e) {
    if (e instanceof PngFormatError) throw new NuScenesError(e.message, { file: pngFile, field: 'ids', expected: 'a readable PNG file' });
    throw e;
  }
  if (img.channels !== 1 || img.bitDepth !== 16)
    throw new NuScenesError(`${pngFile}: expected a 16-bit grayscale instance-id PNG, found ${img.channels} channel(s) at ${img.bitDepth} bit`, {
      file: pngFile, field: 'ids', expected: '1 channel, 16 bit', found: `${img.channels} channel(s), ${img.bitDepth} bit`,
    });
  const size = imageSize ?? imageSizeOf(join(dataroot, imageFilename));
  if (img.width !== size.width || img.height !== size.height)
    throw new NuScenesError(`${pngFile}: mask is ${img.width}×${img.height} but its image ${imageFilename} is ${size.width}×${size.height}`, {
      file: pngFile, field: 'ids', expected: `${size.width}×${size.height}`, found: `${img.width}×${img.height}`,
    });
  const ids = img.data as Uint16Array;
  const listed = new Uint8Array(65536);
  for (const inst of instances) listed[inst.id] = 1;
  for (let p = 0; p < ids.length; p++) {
    const id = ids[p]!;
    if (id !== 0 && !listed[id]) {
      const x = p % img.width, y = (p - x) / img.width;
      throw new NuScenesError(`${pngFile}: pixel (${x}, ${y}) has instance id ${id}, which ${jsonFile} does not list`, {
        file: pngFile, field: 'ids', expected: `ids listed in ${jsonFile} (${instances.map((i) => i.id).join(', ') || 'none'}) or 0`, found: String(id),
      });
    }
  }
  return { width: img.width, height: img.height, ids, instances };
}

/** Parse and check the JSON half of a mask pair (`file` names it in errors). */
export function parseMaskJson(text: string, file: string): MaskInstance[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new NuScenesError(`${file}: malformed JSON (${(e as Error).message})`, { file, expected: 'valid JSON' });
  }
  const list = (data as { instances?: unknown } | null)?.instances;
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !Array.isArray(list))
    throw new NuScenesError(`${file}: expected {"instances": [...]}, found ${JSON.stringify(data)?.slice(0, 80)}`, {
      file, field: 'instances', expected: 'an object with an "instances" array',
    });
  const seen = new Set<number>();
  return list.map((rec: unknown, i: number): MaskInstance => {
    const fail = (field: string, expected: string, found: unknown): never => {
      throw new NuScenesError(`${file}: instances[${i}].${field} must be ${expected}, found ${JSON.stringify(found) ?? String(found)}`, {
        file, field: `instances[${i}].${field}`, expected, found: JSON.stringify(found) ?? String(found),
      });
    };
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) {
      throw new NuScenesError(`${file}: instances[${i}] must be an object {id, label, score}, found ${JSON.stringify(rec)}`, {
        file, field: `instances[${i}]`, expected: 'an object {id, label, score}', found: JSON.stringify(rec),
      });
    }
    const { id, label, score } = rec as Record<string, unknown>;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 65535) fail('id', 'an integer in 1..65535', id);
    if (seen.has(id as number)) fail('id', 'an id not used by another instance', id);
    seen.add(id as number);
    const k = typeof label === 'string' ? (DETECTION_CLASSES as readonly string[]).indexOf(label) : -1;
    if (k < 0) fail('label', `one of the detection classes (${DETECTION_CLASSES.join(', ')})`, label);
    if (typeof score !== 'number' || !(score >= 0 && score <= 1)) fail('score', 'a number in [0, 1]', score);
    return { id: id as number, label: k, score: score as number };
  });
}
