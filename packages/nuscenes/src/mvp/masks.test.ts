import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from '../errors.js';
import { decodePng, encodePng } from '../synth/png.js';
import { decodeIdPng, encodeGray16Png, imageSizeOf, maskPathFor, readInstanceMasks } from './masks.js';

const W = 12, H = 7;
const IMAGE = 'samples/CAM_FRONT/log__CAM_FRONT__1.jpg';
let root: string;

function ids(fill: (x: number, y: number) => number, w = W, h = H): Uint16Array {
  const a = new Uint16Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) a[y * w + x] = fill(x, y);
  return a;
}
const twoBlobs = ids((x, y) => (x < 4 && y < 3 ? 1 : x >= 8 && y >= 4 ? 7 : 0));
const goodJson = { instances: [{ id: 1, label: 'car', score: 0.93 }, { id: 7, label: 'traffic_cone', score: 0.4 }] };

/** Write the pair of IMAGE's masks (undefined leaves a file out). */
function writePair(png: Uint8Array | undefined, json: unknown): void {
  const base = join(root, maskPathFor(IMAGE));
  rmSync(`${base}.png`, { force: true });
  rmSync(`${base}.json`, { force: true });
  mkdirSync(join(root, 'masks/CAM_FRONT'), { recursive: true });
  if (png) writeFileSync(`${base}.png`, png);
  if (json !== undefined) writeFileSync(`${base}.json`, typeof json === 'string' ? json : JSON.stringify(json));
}
const png16 = (data: Uint16Array, w = W, h = H) => encodePng({ width: w, height: h, channels: 1, bitDepth: 16, data });

function expectError(field: string, message: RegExp, file: 'png' | 'json'): void {
  let err: unknown;
  try {
    readInstanceMasks(root, IMAGE);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NuScenesError);
  const e = err as NuScenesError;
  expect(e.message).toMatch(message);
  expect(e.field).toBe(field);
  expect(e.file).toBe(join(root, maskPathFor(IMAGE)) + `.${file}`);
  expect(e.message).toContain(e.file!);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'bevzoo-masks-'));
  mkdirSync(join(root, 'samples/CAM_FRONT'), { recursive: true });
  const rgba = new Uint8Array(W * H * 4).fill(128);
  writeFileSync(join(root, IMAGE), jpeg.encode({ width: W, height: H, data: rgba }, 90).data);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('maskPathFor', () => {
  it('maps keyframe and sweep images to masks/<CHANNEL>/<name> without extension', () => {
    expect(maskPathFor('samples/CAM_FRONT/x__CAM_FRONT__1.jpg')).toBe('masks/CAM_FRONT/x__CAM_FRONT__1');
    expect(maskPathFor('sweeps/CAM_BACK/y.jpg')).toBe('masks/CAM_BACK/y');
    expect(maskPathFor('/data/n/samples/CAM_BACK_LEFT/z.png')).toBe('/data/n/masks/CAM_BACK_LEFT/z');
    expect(() => maskPathFor('CAM_FRONT/x.jpg')).toThrow(RangeError);
  });
});

describe('readInstanceMasks', () => {
  it('is null when the image has no masks', () => {
    writePair(undefined, undefined);
    expect(readInstanceMasks(root, IMAGE)).toBeNull();
  });

  it('reads ids and instances, labels as DETECTION_CLASSES indices', () => {
    writePair(png16(twoBlobs), goodJson);
    const m = readInstanceMasks(root, IMAGE)!;
    expect([m.width, m.height]).toEqual([W, H]);
    expect(Array.from(m.ids)).toEqual(Array.from(twoBlobs));
    expect(m.instances).toEqual([{ id: 1, label: 0, score: 0.93 }, { id: 7, label: 8, score: 0.4 }]);
    // An instance listed but covered by another mask (no pixel) is fine.
    writePair(png16(twoBlobs), { instances: [...goodJson.instances, { id: 9, label: 'barrier', score: 0.2 }] });
    expect(readInstanceMasks(root, IMAGE)!.instances.map((i) => i.id)).toEqual([1, 7, 9]);
    // The expected size may be given instead of read from the image.
    expect(() => readInstanceMasks(root, IMAGE, { width: W + 1, height: H })).toThrow(/mask is 12×7 but its image .* is 13×7/);
  });

  it('says which file of a half-present pair is missing', () => {
    writePair(png16(twoBlobs), undefined);
    expectError('instances', /Missing mask file .*\.json \(its pair .*\.png exists/, 'json');
    writePair(undefined, goodJson);
    expectError('ids', /Missing mask file .*\.png \(its pair .*\.json exists/, 'png');
  });

  it('rejects a PNG that is not 16-bit gray', () => {
    writePair(encodePng({ width: W, height: H, channels: 1, bitDepth: 8, data: new Uint8Array(W * H) }), goodJson);
    expectError('ids', /expected a 16-bit grayscale instance-id PNG, found 1 channel\(s\) at 8 bit/, 'png');
    writePair(encodePng({ width: W, height: H, channels: 3, bitDepth: 16, data: new Uint16Array(W * H * 3) }), goodJson);
    expectError('ids', /found 3 channel\(s\) at 16 bit/, 'png');
    writePair(new Uint8Array([1, 2, 3, 4]), goodJson);
    expectError('ids', /expected a readable PNG file/, 'png');
  });

  it("rejects a mask whose size is not the image's", () => {
    writePair(png16(ids(() => 0, W, H + 1), W, H + 1), goodJson);
    expectError('ids', /mask is 12×8 but its image samples\/CAM_FRONT\/log__CAM_FRONT__1\.jpg is 12×7/, 'png');
  });

  it('rejects bad JSON records, naming the instance and field', () => {
    writePair(png16(twoBlobs), { instances: [goodJson.instances[0], { id: 7, label: 'tram', score: 0.5 }] });
    expectError('instances[1].label', /instances\[1\]\.label must be one of the detection classes \(car, .*barrier\), found "tram"/, 'json');
    writePair(png16(twoBlobs), { instances: [{ id: 1, label: 'car', score: 1.5 }, goodJson.instances[1]] });
    expectError('instances[0].score', /instances\[0\]\.score must be a number in \[0, 1\], found 1\.5/, 'json');
    writePair(png16(twoBlobs), { instances: [{ id: 0, label: 'car', score: 0.5 }] });
    expectError('instances[0].id', /an integer in 1\.\.65535, found 0/, 'json');
    writePair(png16(twoBlobs), { instances: [goodJson.instances[0], { id: 1, label: 'bus', score: 0.5 }] });
    expectError('instances[1].id', /not used by another instance, found 1/, 'json');
    writePair(png16(twoBlobs), { masks: [] });
    expectError('instances', /expected \{"instances": \[\.\.\.\]\}/, 'json');
    writePair(png16(twoBlobs), '{"instances": [');
    expectError(undefined as unknown as string, /malformed JSON/, 'json');
  });

  it('rejects a pixel id the JSON does not list', () => {
    writePair(png16(twoBlobs), { instances: [goodJson.instances[0]] });
    expectError('ids', /pixel \(8, 4\) has instance id 7, which .*\.json does not list/, 'png');
  });
});

describe('16-bit id PNG codec', () => {
  const w = 37, h = 23;
  const data = ids((x, y) => ((x * 7919 + y * 104729) * 2654435761) % 65536, w, h);

  it('writes the same bytes as encodePng (pngjs) and reads what pngjs writes with every row filter', () => {
    const mine = encodeGray16Png(w, h, data);
    expect(Buffer.from(mine).equals(Buffer.from(png16(data, w, h)))).toBe(true);
    expect(Array.from(decodePng(mine, 'x').data)).toEqual(Array.from(data));
    for (let filterType = 0; filterType <= 4; filterType++) {
      const bytes = PNG.sync.write({ width: w, height: h, data: data.slice() } as unknown as PNG, {
        colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 16, filterType,
      });
      const d = decodeIdPng(bytes, 'x');
      expect([d.width, d.height, d.channels, d.bitDepth]).toEqual([w, h, 1, 16]);
      expect(Array.from(d.data), `filter ${filterType}`).toEqual(Array.from(data));
    }
  });

  it('passes other PNGs to pngjs and names the file of a corrupt one', () => {
    const rgb = decodeIdPng(encodePng({ width: 2, height: 2, channels: 3, bitDepth: 8, data: new Uint8Array(12) }), 'a.png');
    expect([rgb.channels, rgb.bitDepth]).toEqual([3, 8]);
    const good = encodeGray16Png(w, h, data);
    const broken = good.slice();
    broken.fill(0, 45, 60); // inside the IDAT's deflate stream
    expect(() => decodeIdPng(broken, 'masks/CAM_FRONT/b.png')).toThrow(/^masks\/CAM_FRONT\/b\.png: expected a readable PNG file/);
  });

  it('reads the size of a JPEG or a PNG from its header', () => {
    expect(imageSizeOf(join(root, IMAGE))).toEqual({ width: W, height: H });
    const p = join(root, 'size.png');
    writeFileSync(p, encodeGray16Png(5, 3, new Uint16Array(15)));
    expect(imageSizeOf(p)).toEqual({ width: 5, height: 3 });
    expect(() => imageSizeOf(join(root, 'missing.jpg'))).toThrow(NuScenesError);
  });
});
