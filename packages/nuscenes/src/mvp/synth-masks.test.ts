import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quatToMatrix } from '@bevzoo/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNuScenes, type NuScenes } from '../reader.js';
import { generateSynthetic, readSegmentIds, segmentPathFor } from '../synth/index.js';
import { categoryToDetectionName, DETECTION_CLASSES, type DetectionClass, type SampleDataRecord } from '../tables.js';
import { maskPathFor, readInstanceMasks } from './masks.js';
import {
  CONFUSABLE, DEFAULT_SYNTH_MASK_OPTIONS, resolveSynthMaskOptions, synthesizeImageMasks, synthesizeMasks, synthImageInstances,
  type SynthMaskOptions,
} from './synth-masks.js';

let work: string, nusc: NuScenes, images: SampleDataRecord[];
const segs = new Map<string, { width: number; height: number; ids: Uint16Array }>();

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bevzoo-synth-masks-'));
  await generateSynthetic({ preset: 'tiny', seed: 3, out: join(work, 'data'), workers: 1 });
  nusc = await openNuScenes({ dataroot: join(work, 'data'), version: 'v1.0-synth' });
  images = nusc.table('sample_data').filter((sd) => sd.sensor_modality === 'camera' && sd.is_key_frame);
  for (const sd of images) segs.set(sd.token, readSegmentIds(readFileSync(join(nusc.dataroot, segmentPathFor(sd.filename)))));
}, 120_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** sha256 of every file under masks/, by relative path. */
function hashMasks(): Map<string, string> {
  const out = new Map<string, string>();
  const dir = join(nusc.dataroot, 'masks');
  for (const ch of readdirSync(dir, { withFileTypes: true }))
    if (ch.isDirectory())
      for (const f of readdirSync(join(dir, ch.name)).sort()) out.set(`${ch.name}/${f}`, createHash('sha256').update(readFileSync(join(dir, ch.name, f))).digest('hex'));
  return out;
}

/** The true detection class of segment id k of an image (null: a category outside the detection classes). */
function trueClass(sd: SampleDataRecord, k: number): DetectionClass | null {
  return categoryToDetectionName(nusc.get('sample_annotation', nusc.sample(sd.sample_token).anns![k - 1]!).category_name!);
}

/** Run the simulated segmenter in memory over every image, for several seeds. */
function runAll(seeds: number[], over: Partial<SynthMaskOptions> = {}) {
  const out: { sd: SampleDataRecord; seed: number; res: ReturnType<typeof synthesizeImageMasks> }[] = [];
  for (const seed of seeds) {
    const o = resolveSynthMaskOptions({ ...over, seed });
    for (const sd of images) out.push({ sd, seed, res: synthesizeImageMasks(segs.get(sd.token)!, synthImageInstances(nusc, sd.token), sd.token, o) });
  }
  return out;
}

describe('segment id → annotation', () => {
  it("projects a visible box's centre (camera frame of synthImageInstances) onto its segment id", () => {
    let checked = 0, hits = 0;
    for (const sd of images) {
      const seg = segs.get(sd.token)!;
      const inst = synthImageInstances(nusc, sd.token);
      const anns = nusc.sample(sd.sample_token).anns!;
      expect(inst.cls.length).toBe(anns.length);
      // The centres are the annotations' global centres moved into the camera: check one against the tables directly.
      const a0 = nusc.get('sample_annotation', anns[0]!);
      const ep = nusc.get('ego_pose', sd.ego_pose_token), cs = nusc.get('calibrated_sensor', sd.calibrated_sensor_token);
      const Re = quatToMatrix(ep.rotation), Rc = quatToMatrix(cs.rotation);
      const g = [0, 1, 2].map((k) => a0.translation[k]! - ep.translation[k]!);
      const e = [0, 1, 2].map((k) => Re[k]! * g[0]! + Re[3 + k]! * g[1]! + Re[6 + k]! * g[2]! - cs.translation[k]!);
      const c = [0, 1, 2].map((k) => Rc[k]! * e[0]! + Rc[3 + k]! * e[1]! + Rc[6 + k]! * e[2]!);
      inst.centres[0]!.forEach((v, k) => expect(v).toBeCloseTo(c[k]!, 6));
      anns.forEach((t, idx) => {
        if (nusc.get('sample_annotation', t).visibility_token !== '4') return;
        const [x, y, z] = inst.centres[idx]!;
        if (z < 1) return;
        const K = inst.intrinsic;
        const u = (K[0]! * x) / z + K[2]!, v = (K[4]! * y) / z + K[5]!;
        if (u < 0 || v < 0 || u >= seg.width || v >= seg.height) return;
        checked++;
        if (seg.ids[Math.floor(v) * seg.width + Math.floor(u)] === idx + 1) hits++;
      });
    }
    expect(checked).toBeGreaterThan(30);
    expect(hits / checked).toBeGreaterThan(0.9);
  });
});

describe('synthesizeMasks', () => {
  it('writes a readable PNG + JSON pair per keyframe camera image, then skips them (idempotent), and reports progress', async () => {
    const progress: [number, number][] = [];
    const r1 = await synthesizeMasks(nusc, { onProgress: (d, t) => progress.push([d, t]) });
    expect(r1).toMatchObject({ dir: join(nusc.dataroot, 'masks'), written: images.length, skipped: 0 });
    expect(r1.stats.instances).toBeGreaterThan(200);
    expect(progress.length).toBe(images.length);
    expect(progress.at(-1)).toEqual([images.length, images.length]);
    const manifest = JSON.parse(readFileSync(join(nusc.dataroot, 'masks/manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ complete: true, options: { ...DEFAULT_SYNTH_MASK_OPTIONS } });
    for (const sd of images) {
      const m = readInstanceMasks(nusc.dataroot, sd.filename);
      expect(m, sd.filename).not.toBeNull();
      expect([m!.width, m!.height]).toEqual([sd.width, sd.height]);
    }
    const before = hashMasks();
    const r2 = await synthesizeMasks(nusc, {});
    expect(r2).toMatchObject({ written: 0, skipped: images.length });
    // A deleted file is written again; the rest is skipped.
    rmSync(join(nusc.dataroot, `${maskPathFor(images[5]!.filename)}.json`));
    expect(await synthesizeMasks(nusc, {})).toMatchObject({ written: 1, skipped: images.length - 1 });
    expect(hashMasks()).toEqual(before);
  });

  it('rewrites everything for other options, and the same seed gives the same bytes again', async () => {
    const seed0 = hashMasks();
    expect((await synthesizeMasks(nusc, { seed: 1 })).written).toBe(images.length);
    const seed1 = hashMasks();
    expect([...seed1.keys()]).toEqual([...seed0.keys()]);
    expect([...seed1].filter(([k, h]) => seed0.get(k) !== h).length).toBeGreaterThan(images.length / 2);
    expect(JSON.parse(readFileSync(join(nusc.dataroot, 'masks/manifest.json'), 'utf8')).options.seed).toBe(1);
    expect((await synthesizeMasks(nusc, { seed: 0 })).written).toBe(images.length);
    expect(hashMasks()).toEqual(seed0);
  });

  it('does not depend on the order images are processed in', () => {
    // The files (processed in table order) against the images processed in reverse order, in memory.
    const o = resolveSynthMaskOptions({ seed: 0 });
    for (const sd of [...images].reverse()) {
      const res = synthesizeImageMasks(segs.get(sd.token)!, synthImageInstances(nusc, sd.token), sd.token, o);
      const m = readInstanceMasks(nusc.dataroot, sd.filename)!;
      expect(Array.from(m.ids)).toEqual(Array.from(res.ids));
      expect(m.instances).toEqual(res.instances.map((i) => ({ id: i.id, label: DETECTION_CLASSES.indexOf(i.label), score: i.score })));
    }
  });

  it('rejects bad options, naming them', async () => {
    await expect(synthesizeMasks(nusc, { confusionRate: 1.5 })).rejects.toThrow(/confusionRate must be in \[0, 1\], found 1\.5/);
    await expect(synthesizeMasks(nusc, { smallAreaPx: [100, 10] })).rejects.toThrow(/smallAreaPx must be \[lo, hi\]/);
    await expect(synthesizeMasks(nusc, { confusion: 0.1 } as never)).rejects.toThrow(/unknown option 'confusion'/);
    expect(resolveSynthMaskOptions({ seed: undefined, missBase: 0.1 })).toEqual({ ...DEFAULT_SYNTH_MASK_OPTIONS, missBase: 0.1 });
  });
});

describe('the simulated segmenter', () => {
  it('keeps masks inside their instance (dilated by boundaryPx), false positives on background, no mask for other categories', () => {
    let nonDetection = 0, fps = 0, changedBoundary = 0, kept = 0;
    const bad: string[] = [];
    for (const { sd, res } of runAll([0, 1])) {
      const seg = segs.get(sd.token)!, W = seg.width, H = seg.height;
      const n = nusc.sample(sd.sample_token).anns!.length;
      for (let k = 1; k <= n; k++) if (!trueClass(sd, k) && seg.ids.includes(k)) nonDetection++;
      const listed = new Set(res.instances.map((i) => i.id));
      for (let p = 0; p < W * H; p++) {
        const id = res.ids[p]!;
        if (id === 0) continue;
        const x = p % W, y = (p - x) / W, where = `${sd.filename} id ${id} pixel (${x}, ${y})`;
        if (!listed.has(id)) bad.push(`${where}: not listed`);
        else if (id > n) {
          if (seg.ids[p] !== 0) bad.push(`${where}: false positive off the background`);
        } else if (!trueClass(sd, id)) bad.push(`${where}: a category outside the detection classes`);
        else {
          // Within Chebyshev distance boundaryPx (2) of a pixel of the true segment.
          let near = false;
          for (let dy = -2; dy <= 2 && !near; dy++) for (let dx = -2; dx <= 2 && !near; dx++) {
            const xx = x + dx, yy = y + dy;
            if (xx >= 0 && yy >= 0 && xx < W && yy < H && seg.ids[yy * W + xx] === id) near = true;
          }
          if (!near) bad.push(`${where}: outside the dilated segment`);
        }
      }
      for (const inst of res.instances) {
        if (inst.id > n) { fps++; continue; }
        kept++;
        let a = 0, b = 0;
        for (let p = 0; p < W * H; p++) { if (res.ids[p] === inst.id) a++; if (seg.ids[p] === inst.id) b++; }
        if (a !== b) changedBoundary++;
        expect(inst.score).toBeGreaterThan(0);
        expect(inst.score).toBeLessThanOrEqual(1);
      }
    }
    expect(bad.slice(0, 5)).toEqual([]);
    expect(nonDetection).toBeGreaterThan(0); // the dataset has such categories, and none got a mask
    expect(fps).toBeGreaterThan(0);
    expect(changedBoundary / kept).toBeGreaterThan(0.8);
  });

  it('misses small and far instances more often than large near ones', () => {
    const stat = { largeNear: [0, 0], smallFar: [0, 0] };
    for (const { sd, res } of runAll([0, 1, 2, 3, 4])) {
      const seg = segs.get(sd.token)!;
      const anns = nusc.sample(sd.sample_token).anns!;
      const ego = nusc.get('ego_pose', sd.ego_pose_token).translation;
      const area = new Int32Array(anns.length + 1);
      for (const id of seg.ids) area[id]++;
      const found = new Set(res.instances.map((i) => i.id));
      for (let k = 1; k <= anns.length; k++) {
        if (!trueClass(sd, k) || area[k] === 0) continue;
        const a = nusc.get('sample_annotation', anns[k - 1]!);
        const d = Math.hypot(a.translation[0] - ego[0], a.translation[1] - ego[1]);
        const areaAt1600 = area[k]! * (1600 / seg.width) ** 2;
        const g = areaAt1600 >= 4096 && d < 20 ? stat.largeNear : areaAt1600 < 1024 && d >= 30 ? stat.smallFar : null;
        if (!g) continue;
        g[0]++;
        if (found.has(k)) g[1]++;
      }
    }
    const recall = (g: number[]) => g[1]! / g[0]!;
    expect(stat.largeNear[0]).toBeGreaterThan(100);
    expect(stat.smallFar[0]).toBeGreaterThan(100);
    expect(recall(stat.largeNear)).toBeGreaterThan(0.9);
    expect(recall(stat.smallFar)).toBeGreaterThan(0.5);
    expect(recall(stat.smallFar)).toBeLessThan(0.85);
    expect(recall(stat.largeNear) - recall(stat.smallFar)).toBeGreaterThan(0.1);
  });

  it('confuses classes at the set rate, only with similar classes, and scores them lower', () => {
    for (const rate of [DEFAULT_SYNTH_MASK_OPTIONS.confusionRate, 0.2]) {
      let kept = 0, confused = 0;
      const scores = { right: [] as number[], wrong: [] as number[] };
      for (const { sd, res } of runAll([0, 1, 2, 3, 4, 5, 6, 7], { confusionRate: rate, pedestrianConfusionRate: rate, falsePositivesPerImage: 0 })) {
        for (const inst of res.instances) {
          const truth = trueClass(sd, inst.id)!;
          kept++;
          if (inst.label === truth) scores.right.push(inst.score);
          else {
            confused++;
            scores.wrong.push(inst.score);
            expect(CONFUSABLE[truth].map(([c]) => c)).toContain(inst.label);
          }
        }
      }
      expect(kept).toBeGreaterThan(2000);
      expect(Math.abs(confused / kept - rate)).toBeLessThan(0.25 * rate);
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(mean(scores.wrong)).toBeLessThan(0.75 * mean(scores.right));
    }
  });

  it('gives higher scores to large clear instances than to small ones', () => {
    const big: number[] = [], small: number[] = [];
    for (const { sd, res } of runAll([0, 1])) {
      const seg = segs.get(sd.token)!;
      const n = nusc.sample(sd.sample_token).anns!.length;
      for (const inst of res.instances) {
        if (inst.id > n || trueClass(sd, inst.id) !== inst.label) continue;
        let a = 0;
        for (const id of seg.ids) if (id === inst.id) a++;
        (a * (1600 / seg.width) ** 2 >= 4096 ? big : a * (1600 / seg.width) ** 2 < 512 ? small : []).push(inst.score);
      }
    }
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(big.length).toBeGreaterThan(50);
    expect(small.length).toBeGreaterThan(50);
    expect(mean(big)).toBeGreaterThan(mean(small) + 0.1);
  });

  it('misses nothing and changes nothing with every error rate at 0', () => {
    const exact = runAll([0], {
      missBase: 0, missSmall: 0, missOccluded: 0, missFar: 0, boundaryPx: 0, confusionRate: 0, pedestrianConfusionRate: 0, falsePositivesPerImage: 0,
    });
    for (const { sd, res } of exact) {
      const seg = segs.get(sd.token)!;
      const expected = seg.ids.map((id) => (id > 0 && trueClass(sd, id) ? id : 0));
      expect(Array.from(res.ids)).toEqual(Array.from(expected));
      for (const inst of res.instances) expect(inst.label).toBe(trueClass(sd, inst.id));
    }
  });
});
