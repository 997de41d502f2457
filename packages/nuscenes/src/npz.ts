/**
 * A small writer and reader of NumPy `.npy` arrays and `.npz` archives (a zip of `.npy` files), as written by
 * `np.save` / `np.savez` / `np.savez_compressed` and read by `np.load`. Used for Occ3D labels
 * (`gts/<scene>/<sample>/labels.npz`). The .npy format is ours; the zip is fflate's. Writing is deterministic:
 * fixed zip timestamps, stable entry order.
 */
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { BevzooError } from '@bevzoo/core';

/** NumPy dtype codes without byte-order prefix. */
export type NpyDtype = 'b1' | 'u1' | 'i1' | 'u2' | 'i2' | 'u4' | 'i4' | 'u8' | 'i8' | 'f4' | 'f8';
export type NpyData =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | BigUint64Array | BigInt64Array | Float32Array | Float64Array;

export interface NpyArray {
  /** Elements in C order (or Fortran order when `fortranOrder`). `b1` (bool) arrays are Uint8Array of 0/1. */
  data: NpyData;
  shape: number[];
  /** Defaults to the dtype of `data` (Uint8Array → u1). Give 'b1' to write a bool array. */
  dtype?: NpyDtype;
  fortranOrder?: boolean;
}

/** A malformed .npy / .npz file: what was expected, what was found, where. */
export class NpyFormatError extends BevzooError {
  constructor(message: string, readonly where: string) {
    super(`${where}: ${message}`, { where });
  }
}

const DTYPE_INFO: Record<NpyDtype, { bytes: number; ctor: new (buf: ArrayBuffer) => NpyData }> = {
  b1: { bytes: 1, ctor: Uint8Array }, u1: { bytes: 1, ctor: Uint8Array }, i1: { bytes: 1, ctor: Int8Array },
  u2: { bytes: 2, ctor: Uint16Array }, i2: { bytes: 2, ctor: Int16Array },
  u4: { bytes: 4, ctor: Uint32Array }, i4: { bytes: 4, ctor: Int32Array },
  u8: { bytes: 8, ctor: BigUint64Array }, i8: { bytes: 8, ctor: BigInt64Array },
  f4: { bytes: 4, ctor: Float32Array }, f8: { bytes: 8, ctor: Float64Array },
};

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Uint8Array) return 'u1';
  if (data instanceof Int8Array) return 'i1';
  if (data instanceof Uint16Array) return 'u2';
  if (data instanceof Int16Array) return 'i2';
  if (data instanceof Uint32Array) return 'u4';
  if (data instanceof Int32Array) return 'i4';
  if (data instanceof BigUint64Array) return 'u8';
  if (data instanceof BigInt64Array) return 'i8';
  if (data instanceof Float32Array) return 'f4';
  return 'f8';
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Serialise one array as a version 1.0 .npy file (header padded to a multiple of 64 bytes, as NumPy does). */
export function encodeNpy(arr: NpyArray): Uint8Array {
  const dtype = arr.dtype ?? dtypeOf(arr.data);
  const info = DTYPE_INFO[dtype];
  const count = arr.shape.reduce((a, b) => a * b, 1);
  if (count !== arr.data.length) {
    throw new NpyFormatError(`shape (${arr.shape.join(', ')}) holds ${count} elements, data has ${arr.data.length}`, 'encodeNpy');
  }
  if (info.bytes !== arr.data.BYTES_PER_ELEMENT) {
    throw new NpyFormatError(`dtype ${dtype} needs ${info.bytes}-byte elements, data has ${arr.data.BYTES_PER_ELEMENT}`, 'encodeNpy');
  }
  const descr = info.bytes === 1 ? `|${dtype}` : `${LITTLE_ENDIAN ? '<' : '>'}${dtype}`;
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${arr.fortranOrder ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + arr.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength), 10 + header.length);
  return out;
}

/** Parse a .npy file. Byte order is converted to the platform's; the data is a fresh, aligned copy. */
export function decodeNpy(bytes: Uint8Array, where = 'npy'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) throw new NpyFormatError('expected the \\x93NUMPY magic string', where);
  const major = bytes[6]!;
  let headerLen: number, offset: number;
  if (major === 1) {
    headerLen = bytes[8]! | (bytes[9]! << 8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16)) + bytes[11]! * 16777216;
    offset = 12;
  } else throw new NpyFormatError(`expected format version 1, 2 or 3, found ${major}`, where);
  let header = '';
  for (let i = 0; i < headerLen; i++) header += String.fromCharCode(bytes[offset + i]!);
  const descrM = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const fortranM = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descrM || !fortranM || !shapeM) throw new NpyFormatError(`unparseable header ${JSON.stringify(header)}`, where);
  const dtype = `${descrM[2]}${descrM[3]}` as NpyDtype;
  const info = DTYPE_INFO[dtype];
  if (!info) throw new NpyFormatError(`unsupported dtype '${descrM[1]}${dtype}' (expected one of ${Object.keys(DTYPE_INFO).join(', ')})`, where);
  const shape = shapeM[1]!.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = offset + headerLen;
  const nbytes = count * info.bytes;
  if (bytes.length < start + nbytes) throw new NpyFormatError(`expected ${nbytes} data bytes, found ${bytes.length - start}`, where);
  const copy = bytes.slice(start, start + nbytes);
  const swap = info.bytes > 1 && ((descrM[1] === '>' && LITTLE_ENDIAN) || (descrM[1] === '<' && !LITTLE_ENDIAN));
  if (swap) {
    for (let i = 0; i < nbytes; i += info.bytes) copy.subarray(i, i + info.bytes).reverse();
  }
  return { data: new info.ctor(copy.buffer), shape, dtype, fortranOrder: fortranM[1] === 'True' };
}

export interface WriteNpzOptions {
  /** Deflate the entries like np.savez_compressed (default true); false stores them like np.savez. */
  compress?: boolean;
  /** Deflate level 1–9 (default 6). */
  level?: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

/**
 * Build an .npz archive (entries `<name>.npy` in the order of the object's keys) with fflate's `zipSync`:
 * deflated (or stored) entries, no extra fields, and every entry dated 1980-01-01 00:00 (the earliest DOS date;
 * fflate writes a Date's local-time fields and this one is built from local-time fields, so the bytes do not
 * depend on the time zone): the same arrays give the same bytes.
 */
export function writeNpz(arrays: Record<string, NpyArray>, options: WriteNpzOptions = {}): Uint8Array {
  const level = options.compress === false ? 0 : options.level ?? 6;
  const files: Zippable = {};
  for (const [name, arr] of Object.entries(arrays)) files[`${name}.npy`] = encodeNpy(arr);
  return zipSync(files, { level, mtime: new Date(1980, 0, 1, 0, 0, 0) });
}

/** Read an .npz archive: array name (without `.npy`) → array. */
export function readNpz(bytes: Uint8Array, where = 'npz'): Record<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new NpyFormatError(`expected a zip archive: ${(e as Error).message}`, where);
  }
  const out: Record<string, NpyArray> = {};
  for (const [name, data] of Object.entries(files)) {
    if (!name.endsWith('.npy')) continue;
    out[name.slice(0, -4)] = decodeNpy(data, `${where}:${name}`);
  }
  return out;
}
