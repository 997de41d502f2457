/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 header length N, N bytes
 * of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}} (padded with
 * spaces to a multiple of 8), then the raw little-endian tensor bytes; offsets are relative to the data start.
 *
 * Written: F32 (float32), I32 (int32), BOOL (bool). Read: F32, F64, F16, BF16 → float32; I64, I32, I16, I8, U8 →
 * int32 (I64 must fit in 32 bits); BOOL → bool. So PyTorch exports load directly.
 */
import { promises as fsp } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic } from './atomic.js';
import { SafetensorsError } from './types.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export type TypedTensorData = Float32Array | Int32Array | Uint8Array;

/** One tensor as plain data. `dtype` is the tfjs dtype of `data`; `fileDtype` the dtype stored in the file. */
export interface RawTensor {
  dtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  data: TypedTensorData;
  fileDtype?: SafetensorsDtype;
}

export interface SafetensorsContent {
  tensors: Record<string, RawTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new SafetensorsError('safetensors: this platform is big-endian; only little-endian hosts are supported');
}

function fileDtypeOf(dtype: string, name: string, where: string): SafetensorsDtype {
  switch (dtype) {
    case 'float32': return 'F32';
    case 'int32': return 'I32';
    case 'bool': return 'BOOL';
    default:
      throw new SafetensorsError(`${where}: tensor '${name}' has dtype ${dtype}; expected float32, int32 or bool`, { name, found: dtype });
  }
}

/**
 * Serialise to safetensors as a list of chunks (header, then each tensor's bytes, names sorted), so large
 * checkpoints are streamed to disk without one big copy.
 */
export function serializeSafetensors(tensors: Record<string, RawTensor>, metadata: Record<string, string> = {}, where = 'serializeSafetensors'): Uint8Array[] {
  assertLittleEndian();
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`${where}: __metadata__['${k}'] must be a string, found ${typeof v}`, { field: k });
    }
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new SafetensorsError(`${where}: '__metadata__' is reserved and cannot name a tensor`);
    const t = tensors[name]!;
    const dtype = fileDtypeOf(t.dtype, name, where);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new SafetensorsError(`${where}: tensor '${name}' has shape [${t.shape}] (${n} values) but ${t.data.length} values`, { name });
    const bytes = dtype === 'BOOL' ? Uint8Array.from(t.data as Uint8Array | Int32Array, (v) => (v ? 1 : 0)) : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    chunks.push(bytes);
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const pad = (8 - (headerBytes.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    headerBytes = encoder.encode(json);
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  return [prefix, headerBytes, ...chunks];
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Parse safetensors bytes. `where` (a file path) is quoted in errors. */
export function parseSafetensors(bytes: Uint8Array, where = '<buffer>'): SafetensorsContent {
  assertLittleEndian();
  if (bytes.byteLength < 8) throw new SafetensorsError(`${where}: expected at least 8 bytes (header length), found ${bytes.byteLength}`, { file: where });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.byteLength - 8)))
    throw new SafetensorsError(`${where}: header length ${n} exceeds the file (${bytes.byteLength} bytes) or ${MAX_HEADER}`, { file: where });
  const hlen = Number(n);
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new SafetensorsError(`${where}: header is not valid JSON (${(e as Error).message})`, { file: where });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(`${where}: header must be a JSON object`, { file: where });
  const dataStart = 8 + hlen;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, RawTensor> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries(info ?? {})) {
        if (typeof v !== 'string') throw new SafetensorsError(`${where}: __metadata__['${k}'] must be a string, found ${typeof v}`, { file: where, field: k });
        metadata[k] = v;
      }
      continue;
    }
    const dtype = info?.dtype as SafetensorsDtype;
    if (!(dtype in BYTES)) throw new SafetensorsError(`${where}: tensor '${name}': unsupported dtype ${JSON.stringify(info?.dtype)} (expected one of ${Object.keys(BYTES).join(', ')})`, { file: where, name });
    const shape = info.shape as number[];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new SafetensorsError(`${where}: tensor '${name}': shape must be a list of non-negative integers, found ${JSON.stringify(info.shape)}`, { file: where, name });
    const [b, e] = info.data_offsets as [number, number];
    const count = shape.reduce((a, c) => a * c, 1);
    if (!(Number.isInteger(b) && Number.isInteger(e) && b >= 0 && e <= dataLen && e - b === count * BYTES[dtype]))
      throw new SafetensorsError(`${where}: tensor '${name}': data_offsets [${b}, ${e}] do not fit ${dtype}[${shape}] (${count * BYTES[dtype]} bytes) in ${dataLen} data bytes`, { file: where, name });
    const raw = new Uint8Array(bytes.subarray(dataStart + b, dataStart + e)); // a copy: aligned and owned (Buffer.slice would be a view)
    tensors[name] = { ...decode(raw, dtype, count, name, where), shape, fileDtype: dtype };
  }
  return { tensors, metadata };
}

function decode(raw: Uint8Array, dtype: SafetensorsDtype, count: number, name: string, where: string): Omit<RawTensor, 'shape'> {
  const buf = raw.buffer;
  switch (dtype) {
    case 'F32': return { dtype: 'float32', data: new Float32Array(buf, 0, count) };
    case 'F64': return { dtype: 'float32', data: Float32Array.from(new Float64Array(buf, 0, count)) };
    case 'F16': return { dtype: 'float32', data: Float32Array.from(new Uint16Array(buf, 0, count), f16ToF32) };
    case 'BF16': {
      const u = new Uint16Array(buf, 0, count), out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = u[i]! << 16;
      return { dtype: 'float32', data: new Float32Array(out.buffer) };
    }
    case 'I32': return { dtype: 'int32', data: new Int32Array(buf, 0, count) };
    case 'I64': {
      const big = new BigInt64Array(buf, 0, count), out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = big[i]!;
        if (v > 2147483647n || v < -2147483648n) throw new SafetensorsError(`${where}: tensor '${name}': I64 value ${v} does not fit in int32`, { file: where, name });
        out[i] = Number(v);
      }
      return { dtype: 'int32', data: out };
    }
    case 'I16': return { dtype: 'int32', data: Int32Array.from(new Int16Array(buf, 0, count)) };
    case 'I8': return { dtype: 'int32', data: Int32Array.from(new Int8Array(buf, 0, count)) };
    case 'U8': return { dtype: 'int32', data: Int32Array.from(raw) };
    case 'BOOL': return { dtype: 'bool', data: raw };
  }
}

/** Tensor → RawTensor (reads the data synchronously; the tensor stays owned by the caller). */
export function tensorToRaw(t: tf.Tensor, name = '?'): RawTensor {
  if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool')
    throw new SafetensorsError(`tensor '${name}' has dtype ${t.dtype}; expected float32, int32 or bool`, { name, found: t.dtype });
  return { dtype: t.dtype, shape: [...t.shape], data: t.dataSync() as TypedTensorData };
}

/** Write tensors (and string metadata) to a safetensors file, atomically. */
export async function writeSafetensors(file: string, tensors: Record<string, tf.Tensor | RawTensor>, metadata: Record<string, string> = {}): Promise<void> {
  const raw: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(tensors)) raw[k] = t instanceof tf.Tensor ? tensorToRaw(t, k) : t;
  await writeFileAtomic(file, serializeSafetensors(raw, metadata, file));
}

/** Read a safetensors file into new tensors (the caller disposes them) and its metadata. */
export async function readSafetensors(file: string): Promise<{ tensors: Record<string, tf.Tensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(file);
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot read (${(e as Error).message})`, { file });
  }
  const { tensors, metadata } = parseSafetensors(bytes, file);
  const out: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = tf.tensor(t.data, t.shape, t.dtype);
  return { tensors: out, metadata };
}
