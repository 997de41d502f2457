/**
 * A cache of preprocessed frame parts (decoded + resized camera images, assembled multi-sweep points): in memory
 * (LRU by bytes) and optionally on disk, so that an epoch after the first does no JPEG decoding.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@bevzoo/core';

export interface FrameCacheOptions {
  /** Folder for the on-disk cache (created when needed). Without it the cache is memory-only. */
  cacheDir?: string;
  /** Memory budget in bytes (least recently used entries are dropped beyond it). Default 2 GiB; 0 = no memory cache. */
  memoryBytes?: number;
}

/** Counters a test (or a progress line) can read. */
export interface FrameCacheStats {
  /** Images decoded (JPEG/PNG). */
  decodes: number;
  /** LiDAR .pcd.bin files read. */
  pointFiles: number;
  memoryHits: number;
  diskHits: number;
  diskWrites: number;
  /** Entries computed from the dataset files. */
  misses: number;
}

type Typed = Uint8Array | Float32Array;

/** How a cached value becomes typed arrays plus JSON metadata and back. */
export interface CacheCodec<T> {
  encode(value: T): { meta: unknown; arrays: Typed[] };
  decode(meta: unknown, arrays: Typed[]): T;
}

const MAGIC = 0x3143_5a42; // "BZC1" little-endian

export class FrameCache {
  readonly stats: FrameCacheStats = { decodes: 0, pointFiles: 0, memoryHits: 0, diskHits: 0, diskWrites: 0, misses: 0 };
  readonly cacheDir?: string;
  /** The memory budget in bytes (`memoryBytes` of the options; 0 = no memory cache). */
  readonly memoryLimit: number;
  private readonly memory = new Map<string, { value: unknown; bytes: number }>();
  private memoryUsed = 0;
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(opts: FrameCacheOptions = {}) {
    this.cacheDir = opts.cacheDir;
    this.memoryLimit = opts.memoryBytes ?? 2 * 1024 ** 3;
  }

  /** Bytes held in memory. */
  get memoryBytes(): number {
    return this.memoryUsed;
  }

  /** The cached value for `key` (a relative path-like string), computing and storing it on a miss. */
  async get<T>(key: string, codec: CacheCodec<T>, compute: () => Promise<T>): Promise<T> {
    const hit = this.memory.get(key);
    if (hit) {
      this.memory.delete(key);
      this.memory.set(key, hit);
      this.stats.memoryHits++;
      return hit.value as T;
    }
    const pending = this.inflight.get(key);
    if (pending) return pending as Promise<T>;
    const p = this.load(key, codec, compute).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async load<T>(key: string, codec: CacheCodec<T>, compute: () => Promise<T>): Promise<T> {
    let value: T | undefined;
    const file = this.cacheDir ? join(this.cacheDir, `${key}.bin`) : undefined;
    if (file) {
      const buf = await readFile(file).catch(() => undefined);
      if (buf) {
        const parsed = parseEntry(buf);
        if (parsed) {
          value = codec.decode(parsed.meta, parsed.arrays);
          this.stats.diskHits++;
        }
      }
    }
    if (value === undefined) {
      this.stats.misses++;
      value = await compute();
      if (file) {
        const { meta, arrays } = codec.encode(value);
        await writeFileAtomic(file, [serializeEntry(meta, arrays)]);
        this.stats.diskWrites++;
      }
    }
    this.remember(key, value, codec);
    return value;
  }

  private remember<T>(key: string, value: T, codec: CacheCodec<T>): void {
    if (this.memoryLimit <= 0) return;
    const bytes = codec.encode(value).arrays.reduce((s, a) => s + a.byteLength, 0);
    if (bytes > this.memoryLimit) return;
    this.memory.set(key, { value, bytes });
    this.memoryUsed += bytes;
    for (const [k, v] of this.memory) {
      if (this.memoryUsed <= this.memoryLimit) break;
      this.memory.delete(k);
      this.memoryUsed -= v.bytes;
    }
  }

  /** Drop the memory cache (the disk cache stays). */
  clearMemory(): void {
    this.memory.clear();
    this.memoryUsed = 0;
  }
}

function serializeEntry(meta: unknown, arrays: Typed[]): Buffer {
  const header = Buffer.from(JSON.stringify({ meta, arrays: arrays.map((a) => ({ dtype: a instanceof Float32Array ? 'f32' : 'u8', length: a.length })) }), 'utf8');
  const align = (n: number) => (n + 7) & ~7;
  let offset = align(8 + header.length);
  const offsets = arrays.map((a) => {
    const o = offset;
    offset = align(offset + a.byteLength);
    return o;
  });
  const out = Buffer.alloc(offset);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(header.length, 4);
  header.copy(out, 8);
  arrays.forEach((a, i) => out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offsets[i]!));
  return out;
}

function parseEntry(buf: Buffer): { meta: unknown; arrays: Typed[] } | undefined {
  try {
    if (buf.length < 8 || buf.readUInt32LE(0) !== MAGIC) return undefined;
    const hlen = buf.readUInt32LE(4);
    const header = JSON.parse(buf.toString('utf8', 8, 8 + hlen)) as { meta: unknown; arrays: { dtype: string; length: number }[] };
    const align = (n: number) => (n + 7) & ~7;
    let offset = align(8 + hlen);
    const arrays: Typed[] = [];
    for (const a of header.arrays) {
      const bytes = a.dtype === 'f32' ? a.length * 4 : a.length;
      if (offset + bytes > buf.length) return undefined;
      const out = a.dtype === 'f32' ? new Float32Array(a.length) : new Uint8Array(a.length);
      new Uint8Array(out.buffer).set(buf.subarray(offset, offset + bytes));
      arrays.push(out);
      offset = align(offset + bytes);
    }
    return { meta: header.meta, arrays };
  } catch {
    return undefined;
  }
}

