import { rm } from 'node:fs/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { mat3Inverse, mat3MulVec, type Mat3 } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from './errors.js';
import { resizeTransform } from './io.js';
import { createLoader } from './loader.js';
import { openNuScenes, type NuScenes } from './reader.js';
import { CAMERA_CHANNELS } from './tables.js';
import { encodePng } from './synth/png.js';
import { segmentPathFor } from './synth/meta.js';
import { buildFixture, FIX_H, FIX_W, type Fixture } from './test-fixture.js';

let fx: Fixture;
let nusc: NuScenes;

/** Every source pixel (u, v) gets its own id 1 + u + 1000·v, so that a resampled map says where each pixel came from. */
const idOf = (u: number, v: number) => 1 + u + 1000 * v;

beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
  const ids = new Uint16Array(FIX_W * FIX_H);
  for (let v = 0; v < FIX_H; v++) for (let u = 0; u < FIX_W; u++) ids[v * FIX_W + u] = idOf(u, v);
  const png = encodePng({ width: FIX_W, height: FIX_H, channels: 1, bitDepth: 16, data: ids });
  for (const s of fx.samples)
    for (const ch of CAMERA_CHANNELS) {
      const file = join(fx.dataroot, segmentPathFor(nusc.get('sample_data', nusc.sampleDataToken(s, ch)).filename));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, png);
    }
});

const H = 36, W = 64;

describe('segment maps in batches (loader option segments)', () => {
  it('are resized and augmented as the images are (two stages, as the images), by nearest neighbour', async () => {
    for (const augment of [false, true]) {
      const loader = createLoader({ nusc, sampleTokens: fx.samples, batchSize: 2, imageSize: [H, W], sweeps: 0, points: false, segments: true, augment, seed: 4, shuffle: false });
      const b = await loader.batch(0, 0);
      expect(b.segments!.length).toBe(2 * 6 * H * W);
      expect(b.shapes.segments).toEqual([2, 6, H, W]);
      const r = resizeTransform(FIX_W, FIX_H, W, H, 'crop');
      let checked = 0, outside = 0;
      for (let k = 0; k < 12; k++) {
        const Pinv = mat3Inverse(Array.from(b.postAug.subarray(k * 9, k * 9 + 9)) as Mat3);
        for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
          const [xr, yr] = mat3MulVec(Pinv, [x, y, 1]); // the resized image's pixel
          const u = (xr - r.tx) / r.sx, v = (yr - r.ty) / r.sy; // the source pixel (centres at integers)
          const id = b.segments![k * H * W + y * W + x]!;
          if (u < -0.5 || v < -0.5 || u >= FIX_W - 0.5 || v >= FIX_H - 0.5) {
            expect(id).toBe(0);
            outside++;
            continue;
          }
          const su = (id - 1) % 1000, sv = Math.floor((id - 1) / 1000);
          // the nearest resized pixel (≤ ½ of a resized pixel), then its nearest source pixel (≤ ½ source pixel)
          expect(Math.abs(su - u)).toBeLessThanOrEqual(augment ? 0.5 + 0.5 / r.sx + 1e-6 : 0.5 + 1e-6);
          expect(Math.abs(sv - v)).toBeLessThanOrEqual(augment ? 0.5 + 0.5 / r.sy + 1e-6 : 0.5 + 1e-6);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(12 * H * W * 0.8);
      if (!augment) expect(outside).toBe(0);
    }
  });

  it('a missing PNG is an error naming the file; without the option nothing is read', async () => {
    const token = nusc.sampleDataToken(fx.samples[2]!, 'CAM_BACK');
    const file = join(fx.dataroot, segmentPathFor(nusc.get('sample_data', token).filename));
    await rm(file);
    const loader = createLoader({ nusc, sampleTokens: [fx.samples[2]!], batchSize: 1, imageSize: [H, W], sweeps: 0, points: false, segments: true });
    const err = await loader.batch(0, 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NuScenesError);
    expect((err as NuScenesError).file).toBe(file);
    expect((err as Error).message).toContain(`Missing segment map ${file}`);
    expect((err as Error).message).toMatch(/segments\/<CHANNEL>\/<image name>\.png/);
    const plain = await createLoader({ nusc, sampleTokens: [fx.samples[2]!], batchSize: 1, imageSize: [H, W], sweeps: 0, points: false }).batch(0, 0);
    expect(plain.segments).toBeUndefined();
  });
});
