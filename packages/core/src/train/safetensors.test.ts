import '@tensorflow/tfjs-backend-cpu';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomic.js';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from './safetensors.js';
import { SafetensorsError } from './types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(path.join(tmpdir(), 'bevzoo-st-'));

/** A safetensors file assembled by hand (independent of the writer). */
function handMade(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips float32, int32, bool and scalars with metadata; the layout follows the format', async () => {
    const dir = tmp();
    const file = path.join(dir, 'a.safetensors');
    const t = {
      'layer.weight': tf.tensor2d([[1.5, -2], [3, 4.25]]),
      'bn.num_batches_tracked': tf.scalar(7, 'int32'),
      mask: tf.tensor1d([true, false, true], 'bool'),
    };
    await writeSafetensors(file, t, { note: 'hi', config: '{"a":1}' });
    const bytes = readFileSync(file);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toEqual({ note: 'hi', config: '{"a":1}' });
    expect(header['layer.weight']).toEqual({ dtype: 'F32', shape: [2, 2], data_offsets: [expect.any(Number), expect.any(Number)] });
    const [b, e] = header['layer.weight'].data_offsets;
    expect(Array.from(new Float32Array(new Uint8Array(bytes.subarray(8 + n + b, 8 + n + e)).buffer))).toEqual([1.5, -2, 3, 4.25]);
    expect(header['bn.num_batches_tracked']).toMatchObject({ dtype: 'I32', shape: [] });
    expect(header.mask).toMatchObject({ dtype: 'BOOL', shape: [3] });
    const back = await readSafetensors(file);
    expect(back.metadata).toEqual({ note: 'hi', config: '{"a":1}' });
    expect(back.tensors['layer.weight']!.arraySync()).toEqual([[1.5, -2], [3, 4.25]]);
    expect(back.tensors['bn.num_batches_tracked']!.dtype).toBe('int32');
    expect(back.tensors['bn.num_batches_tracked']!.arraySync()).toBe(7);
    expect(back.tensors.mask!.dtype).toBe('bool');
    expect(Array.from(back.tensors.mask!.dataSync())).toEqual([1, 0, 1]);
    tf.dispose([...Object.values(t), ...Object.values(back.tensors)]);
  });

  it('reads PyTorch dtypes (F64, F16, BF16, I64) written by hand', () => {
    const f64 = new Float64Array([0.5, -3]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555]); // 1, −2, 0.333251953125
    const bf16 = new Uint16Array([0x3f80, 0xc040]); // 1, −3
    const i64 = new BigInt64Array([5n, -9n]);
    const parts = [new Uint8Array(f64.buffer), new Uint8Array(f16.buffer), new Uint8Array(bf16.buffer), new Uint8Array(i64.buffer)];
    const offs: [number, number][] = [];
    let o = 0;
    for (const p of parts) {
      offs.push([o, o + p.length]);
      o += p.length;
    }
    const data = new Uint8Array(o);
    parts.forEach((p, i) => data.set(p, offs[i]![0]));
    const bytes = handMade({ a: { dtype: 'F64', shape: [2], data_offsets: offs[0] }, b: { dtype: 'F16', shape: [3], data_offsets: offs[1] }, c: { dtype: 'BF16', shape: [1, 2], data_offsets: offs[2] }, d: { dtype: 'I64', shape: [2], data_offsets: offs[3] } }, data);
    const { tensors } = parseSafetensors(bytes);
    expect(Array.from(tensors.a!.data)).toEqual([0.5, -3]);
    expect(Array.from(tensors.b!.data)).toEqual([1, -2, 0.333251953125]);
    expect(Array.from(tensors.c!.data)).toEqual([1, -3]);
    expect(tensors.c!.shape).toEqual([1, 2]);
    expect(tensors.d!.dtype).toBe('int32');
    expect(Array.from(tensors.d!.data)).toEqual([5, -9]);
  });

  it('rejects broken files with typed errors', () => {
    expect(() => parseSafetensors(new Uint8Array(4), 'x.safetensors')).toThrow(SafetensorsError);
    const good = serializeSafetensors({ a: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) } });
    const whole = new Uint8Array(good.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of good) {
      whole.set(c, o);
      o += c.length;
    }
    expect(parseSafetensors(whole).tensors.a!.data).toEqual(new Float32Array([1, 2]));
    expect(() => parseSafetensors(whole.subarray(0, whole.length - 1), 'cut.safetensors')).toThrow(/cut\.safetensors: tensor 'a': data_offsets/);
    expect(() => parseSafetensors(handMade({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)))).toThrow(/unsupported dtype/);
  });
});

describe('writeFileAtomic', () => {
  it('a failing write leaves the old file intact and no temporary file behind', async () => {
    const dir = tmp();
    const file = path.join(dir, 'ckpt.safetensors');
    writeFileSync(file, 'old contents');
    async function* failing() {
      yield new TextEncoder().encode('new partial');
      throw new Error('disk on fire');
    }
    await expect(writeFileAtomic(file, failing())).rejects.toThrow('disk on fire');
    expect(readFileSync(file, 'utf8')).toBe('old contents');
    expect(readdirSync(dir)).toEqual(['ckpt.safetensors']);
    await expect(writeSafetensors(file, { s: tf.tensor(['x']) })).rejects.toThrow(SafetensorsError);
    expect(readFileSync(file, 'utf8')).toBe('old contents');
    await writeFileAtomic(file, [new TextEncoder().encode('new')]);
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(readdirSync(dir)).toEqual(['ckpt.safetensors']);
  });
});
