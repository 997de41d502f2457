/**
 * Imperfect 2-D instance masks for the synthetic dataset: its exact instance segments stand in for a 2-D instance
 * segmenter (CenterNet2 trained on nuImages in the MVP paper), made as imperfect as one. Per instance, seeded by
 * (seed, sample_data token, instance id) so that nothing depends on the order of processing:
 *   - missed with a probability that rises for small pixel area, strong occlusion and distance;
 *   - the mask eroded or dilated by 1..boundaryPx pixels;
 *   - its class confused with a similar class at `confusionRate` (a lower score then);
 *   - a score in (0, 1], higher for large, clear, near instances;
 * plus a few false-positive blobs on the background. Categories without a detection class give no mask.
 * Output: `masks/<CHANNEL>/<image name>.{png,json}` (see masks.ts) and `masks/manifest.json`.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRng, orientedBoxCorners, type Rng, type Vec3 } from '@bevzoo/core';
import { NuScenesError } from '../errors.js';
import type { NuScenes } from '../reader.js';
import { segmentPathFor } from '../synth/meta.js';
import { categoryToDetectionName, type DetectionClass } from '../tables.js';
import { decodeIdPng, encodeGray16Png, maskPathFor } from './masks.js';

/** Rates and sizes of the simulated segmenter's errors. Defaults: DEFAULT_SYNTH_MASK_OPTIONS (see the README). */
export interface SynthMaskOptions {
  /** Seed of every random draw. */
  seed: number;
  /** Miss probability of a large, unoccluded, near instance. */
  missBase: number;
  /** Extra miss probability at (and below) smallAreaPx[0] visible pixels, falling linearly in log area to 0 at smallAreaPx[1]. */
  missSmall: number;
  /** Visible-area range (pixels at `referenceWidth` image width) over which missSmall fades out. */
  smallAreaPx: [number, number];
  /** Extra miss probability of a fully occluded instance, falling linearly to 0 at visibleFull. */
  missOccluded: number;
  /** Visible fraction (InstanceView.visibleFraction) from which an instance counts as unoccluded. */
  visibleFull: number;
  /** Extra miss probability at (and beyond) farRange[1] metres from the camera, rising linearly from 0 at farRange[0]. */
  missFar: number;
  farRange: [number, number];
  /** Image width that pixel areas are expressed at (nuScenes' 1600: the synthetic images are smaller). */
  referenceWidth: number;
  /** Boundary error: each kept mask is eroded or dilated (even odds) by 1..boundaryPx pixels (8-neighbourhood). */
  boundaryPx: number;
  /** Probability that a vehicle, cycle or barrier/cone mask gets a similar class (see CONFUSABLE). */
  confusionRate: number;
  /** The same for pedestrians (taken for a bicycle or motorcycle rider). */
  pedestrianConfusionRate: number;
  /** Score multiplier of a confused mask. */
  confusedScoreFactor: number;
  /** Mean number of false-positive blobs per image (Poisson), on background pixels, scores 0.3..0.55. */
  falsePositivesPerImage: number;
}

export const DEFAULT_SYNTH_MASK_OPTIONS: Readonly<SynthMaskOptions> = Object.freeze({
  seed: 0,
  missBase: 0.03,
  missSmall: 0.25,
  smallAreaPx: [64, 1024] as [number, number],
  missOccluded: 0.3,
  visibleFull: 0.7,
  missFar: 0.15,
  farRange: [20, 60] as [number, number],
  referenceWidth: 1600,
  boundaryPx: 2,
  confusionRate: 0.07,
  pedestrianConfusionRate: 0.01,
  confusedScoreFactor: 0.6,
  falsePositivesPerImage: 0.1,
});

/** Classes a segmenter takes a class for, with relative odds. */
export const CONFUSABLE: Readonly<Record<DetectionClass, readonly (readonly [DetectionClass, number])[]>> = {
  car: [['truck', 1]],
  truck: [['car', 2], ['bus', 1], ['trailer', 1], ['construction_vehicle', 1]],
  bus: [['truck', 1]],
  trailer: [['truck', 1]],
  construction_vehicle: [['truck', 1]],
  pedestrian: [['bicycle', 1], ['motorcycle', 1]],
  motorcycle: [['bicycle', 1]],
  bicycle: [['motorcycle', 1]],
  traffic_cone: [['barrier', 1]],
  barrier: [['traffic_cone', 1]],
};

/** Version of the mask synthesis, recorded in the manifest; bump when the output for given options changes. */
export const SYNTH_MASKS_VERSION = '1';

const FP_CLASSES: readonly (readonly [DetectionClass, number])[] = [['pedestrian', 0.35], ['barrier', 0.2], ['traffic_cone', 0.2], ['car', 0.15], ['bicycle', 0.1]];

export interface SynthMaskStats {
  /** Detection-class instances visible in the images written (one per image they appear in). */
  instances: number;
  missed: number;
  confused: number;
  falsePositives: number;
}

export interface SynthesizeMasksResult {
  /** The masks folder, `<dataroot>/masks`. */
  dir: string;
  /** Images whose PNG + JSON were written by this call. */
  written: number;
  /** Images left as they were (same options, both files present). */
  skipped: number;
  /** What happened to the instances of the images written by this call. */
  stats: SynthMaskStats;
}

interface Manifest {
  generator: string;
  version: string;
  options: SynthMaskOptions;
  complete: boolean;
}

/** Options merged over the defaults (undefined values keep the default) and checked (a RangeError names the bad one). */
export function resolveSynthMaskOptions(opts: Partial<SynthMaskOptions> = {}): SynthMaskOptions {
  const o = { ...DEFAULT_SYNTH_MASK_OPTIONS } as SynthMaskOptions;
  for (const k of Object.keys(DEFAULT_SYNTH_MASK_OPTIONS) as (keyof SynthMaskOptions)[]) if (opts[k] !== undefined) (o as unknown as Record<string, unknown>)[k] = opts[k];
  for (const k of Object.keys(opts)) if (!(k in DEFAULT_SYNTH_MASK_OPTIONS)) throw new RangeError(`synthesizeMasks: unknown option '${k}' (known: ${Object.keys(DEFAULT_SYNTH_MASK_OPTIONS).join(', ')}, onProgress)`);
  const prob = ['missBase', 'missSmall', 'missOccluded', 'missFar', 'confusionRate', 'pedestrianConfusionRate', 'confusedScoreFactor', 'visibleFull'] as const;
  for (const k of prob) if (typeof o[k] !== 'number' || !(o[k] >= 0 && o[k] <= 1)) throw new RangeError(`synthesizeMasks: ${k} must be in [0, 1], found ${String(o[k])}`);
  if (!Number.isInteger(o.seed)) throw new RangeError(`synthesizeMasks: seed must be an integer, found ${String(o.seed)}`);
  if (!Number.isInteger(o.boundaryPx) || o.boundaryPx < 0 || o.boundaryPx > 8) throw new RangeError(`synthesizeMasks: boundaryPx must be an integer in 0..8, found ${String(o.boundaryPx)}`);
  if (!(o.referenceWidth > 0)) throw new RangeError(`synthesizeMasks: referenceWidth must be positive, found ${String(o.referenceWidth)}`);
  if (!(o.falsePositivesPerImage >= 0 && o.falsePositivesPerImage <= 20)) throw new RangeError(`synthesizeMasks: falsePositivesPerImage must be in [0, 20], found ${String(o.falsePositivesPerImage)}`);
  for (const k of ['smallAreaPx', 'farRange'] as const) {
    const r = o[k];
    if (!Array.isArray(r) || r.length !== 2 || !(r[0] >= 0 && r[1] > r[0])) throw new RangeError(`synthesizeMasks: ${k} must be [lo, hi] with 0 ≤ lo < hi, found ${JSON.stringify(r)}`);
  }
  return { ...o, smallAreaPx: [o.smallAreaPx[0], o.smallAreaPx[1]], farRange: [o.farRange[0], o.farRange[1]] };
}

/** What the simulated segmenter knows of one instance in one image. */
export interface InstanceView {
  /** Visible pixels of the instance in the image. */
  area: number;
  /** Visible pixels / pixels an unoccluded object would cover (projected 3-D box clipped to the image × SYNTH_SHAPE_FILL), in [0, 1]. */
  visibleFraction: number;
  /** Distance (m) from the camera to the box centre. */
  distance: number;
}

/** What the simulated segmenter did with one instance of one image. */
export interface InstanceDecision extends InstanceView {
  /** Segment id (= mask id when kept). */
  id: number;
  /** True class. */
  cls: DetectionClass;
  pMiss: number;
  missed: boolean;
  /** Class given (null when missed), and score. */
  label: DetectionClass | null;
  score?: number;
}

/** Miss probability of an instance under the options (the product of the independent chances to be found). */
export function missProbability(v: InstanceView, o: SynthMaskOptions, imageWidth: number): number {
  const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
  const areaRef = v.area * (o.referenceWidth / imageWidth) ** 2;
  const [a0, a1] = o.smallAreaPx;
  const small = clamp01((Math.log(a1) - Math.log(Math.max(areaRef, 1e-9))) / (Math.log(a1) - Math.log(Math.max(a0, 1e-9))));
  const occ = o.visibleFull > 0 ? clamp01((o.visibleFull - v.visibleFraction) / o.visibleFull) : 0;
  const far = clamp01((v.distance - o.farRange[0]) / (o.farRange[1] - o.farRange[0]));
  return 1 - (1 - o.missBase) * (1 - o.missSmall * small) * (1 - o.missOccluded * occ) * (1 - o.missFar * far);
}

/** Area of the convex hull of 2-D points clipped to [0, W]×[0, H]. */
function clippedHullArea(pts: [number, number][], W: number, H: number): number {
  const p = [...pts].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: [number, number], a: [number, number], b: [number, number]) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: [number, number][] = [], upper: [number, number][] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, q) <= 0) lower.pop();
    lower.push(q);
  }
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, q) <= 0) upper.pop();
    upper.push(q);
  }
  let poly = lower.slice(0, -1).concat(upper.slice(0, -1));
  // Sutherland–Hodgman against the four image edges.
  const edges: [(q: [number, number]) => number][] = [[(q) => q[0]], [(q) => W - q[0]], [(q) => q[1]], [(q) => H - q[1]]];
  for (const [inside] of edges) {
    const out: [number, number][] = [];
    for (let i = 0; i < poly.length; i++) {
      const a = poly[i]!, b = poly[(i + 1) % poly.length]!;
      const da = inside(a), db = inside(b);
      if (da >= 0) out.push(a);
      if ((da >= 0) !== (db >= 0)) {
        const t = da / (da - db);
        out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
      }
    }
    poly = out;
    if (poly.length < 3) return 0;
  }
  let area = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!, b = poly[(i + 1) % poly.length]!;
    area += a[0] * b[1] - b[0] * a[1];
  }
  return Math.abs(area) / 2;
}

/**
 * Share of its projected 3-D box (hull of the 8 corners) that an unoccluded object of the class covers in the
 * synthetic renderer's images (median over visibility-4 annotations of the small dataset, seed 0): the visible
 * fraction is measured against it, so that a slim pedestrian or a cone does not count as occluded.
 */
export const SYNTH_SHAPE_FILL: Readonly<Record<DetectionClass, number>> = {
  car: 0.84, truck: 0.9, bus: 0.87, trailer: 0.86, construction_vehicle: 0.64,
  pedestrian: 0.55, motorcycle: 0.61, bicycle: 0.55, traffic_cone: 0.41, barrier: 0.87,
};

const VISIBILITY_MID: Record<string, number> = { '1': 0.2, '2': 0.5, '3': 0.7, '4': 0.9 };

/** Morphology of a binary mask with a square (8-neighbourhood) element of radius r, separable; `grow` = dilate. */
function morph(a: Uint8Array, w: number, h: number, r: number, grow: boolean): Uint8Array {
  const tmp = new Uint8Array(w * h), out = new Uint8Array(w * h);
  const pass = (src: Uint8Array, dst: Uint8Array, n: number, m: number, at: (i: number, j: number) => number) => {
    for (let j = 0; j < m; j++) for (let i = 0; i < n; i++) {
      let v = grow ? 0 : 1;
      for (let d = Math.max(0, i - r); d <= Math.min(n - 1, i + r); d++) {
        const s = src[at(d, j)]!;
        if (grow ? s : !s) { v = s; break; }
      }
      dst[at(i, j)] = v;
    }
  };
  pass(a, tmp, w, h, (i, j) => j * w + i);
  pass(tmp, out, h, w, (i, j) => i * w + j);
  return out;
}

/** Poisson draw (Knuth; small means). */
function poisson(rng: Rng, mean: number): number {
  const L = Math.exp(-mean);
  let k = 0, p = rng.next();
  while (p > L) { k++; p *= rng.next(); }
  return k;
}

/** What a keyframe camera image's segment ids stand for: entry k − 1 is segment id k = `sample.anns[k − 1]`. */
export interface SynthImageInstances {
  /** Detection class, or null for categories outside the 10 detection classes (no mask). */
  cls: (DetectionClass | null)[];
  /** Mid-point of the annotation's visibility bin (all cameras), for boxes reaching behind the camera. */
  visibility: number[];
  /** Box corners and centre in the camera frame. */
  corners: Vec3[][];
  centres: Vec3[];
  /** Camera intrinsic, row-major 3×3. */
  intrinsic: number[];
}

/** The instances behind the segment ids of a keyframe camera image (segment id k = the sample's k-th annotation). */
export function synthImageInstances(nusc: NuScenes, sdToken: string): SynthImageInstances {
  const sd = nusc.get('sample_data', sdToken);
  const anns = nusc.get('sample', sd.sample_token).anns!;
  // Keyframe: the boxes of sample.anns in their order, moved into the camera frame (boxVisLevel 'none' keeps them all).
  const { boxes, intrinsic } = nusc.getSampleData(sdToken, { boxVisLevel: 'none' });
  if (!intrinsic) throw new NuScenesError(`sample_data ${sdToken} is not a camera image`, { table: 'sample_data', token: sdToken, field: 'calibrated_sensor_token' });
  return {
    cls: anns.map((t) => categoryToDetectionName(nusc.get('sample_annotation', t).category_name!)),
    visibility: anns.map((t) => VISIBILITY_MID[nusc.get('sample_annotation', t).visibility_token] ?? 0.5),
    corners: boxes.map((b) => orientedBoxCorners(b)),
    centres: boxes.map((b) => b.center),
    intrinsic: [...intrinsic],
  };
}

/**
 * The simulated segmenter on one image: exact segment ids in, imperfect mask ids and instance list out. Pure: depends
 * only on the inputs, the options and (seed, sdToken, id).
 */
export function synthesizeImageMasks(
  seg: { width: number; height: number; ids: Uint16Array },
  inst: SynthImageInstances,
  sdToken: string,
  o: SynthMaskOptions,
  stats?: SynthMaskStats,
  onInstance?: (d: InstanceDecision) => void,
): { ids: Uint16Array; instances: { id: number; label: DetectionClass; score: number }[] } {
  const { width: W, height: H, ids: orig } = seg;
  const n = inst.cls.length;
  // Area and pixel bbox per segment id.
  const area = new Int32Array(n + 1), x0 = new Int32Array(n + 1).fill(W), y0 = new Int32Array(n + 1).fill(H), x1 = new Int32Array(n + 1).fill(-1), y1 = new Int32Array(n + 1).fill(-1);
  for (let y = 0, p = 0; y < H; y++) for (let x = 0; x < W; x++, p++) {
    const id = orig[p]!;
    if (id === 0) continue;
    if (id > n) throw new NuScenesError(`segment id ${id} at pixel (${x}, ${y}) but the sample has ${n} annotations`, { table: 'sample_data', token: sdToken, field: 'segments', expected: `ids 0..${n}`, found: String(id) });
    area[id]++;
    if (x < x0[id]!) x0[id] = x;
    if (x > x1[id]!) x1[id] = x;
    if (y < y0[id]!) y0[id] = y;
    if (y > y1[id]!) y1[id] = y;
  }
  const K = inst.intrinsic;
  const imageRng = createRng(o.seed).fork(sdToken);
  const kept: { id: number; label: DetectionClass; score: number; mask: Uint8Array; bx: number; by: number; bw: number; bh: number }[] = [];
  for (let id = 1; id <= n; id++) {
    const cls = inst.cls[id - 1];
    if (!cls || area[id] === 0) continue;
    if (stats) stats.instances++;
    const rng = imageRng.fork(id);
    // Occlusion: visible pixels over the projected box (its 8 corners' hull, clipped to the image); boxes reaching behind the camera use the annotation's visibility.
    const cs = inst.corners[id - 1]!;
    let visibleFraction: number;
    if (cs.every((c) => c[2] > 0.1)) {
      const hull = clippedHullArea(cs.map((c) => [(K[0]! * c[0] + K[1]! * c[1]) / c[2] + K[2]!, (K[4]! * c[1]) / c[2] + K[5]!] as [number, number]), W, H);
      visibleFraction = hull > 0 ? Math.min(1, area[id]! / hull / SYNTH_SHAPE_FILL[cls]) : 1;
    } else visibleFraction = inst.visibility[id - 1]!;
    const c = inst.centres[id - 1]!;
    const pMiss = missProbability({ area: area[id]!, visibleFraction, distance: Math.hypot(c[0], c[1], c[2]) }, o, W);
    const uMiss = rng.next(), grow = rng.next() < 0.5, r = o.boundaryPx > 0 ? 1 + rng.int(o.boundaryPx) : 0;
    const uConf = rng.next(), confPick = rng.next(), uScore = rng.uniform(0.85, 1);
    const view: InstanceView = { area: area[id]!, visibleFraction, distance: Math.hypot(c[0], c[1], c[2]) };
    if (uMiss < pMiss) {
      if (stats) stats.missed++;
      onInstance?.({ id, cls, ...view, pMiss, missed: true, label: null });
      continue;
    }
    // Boundary error in a window of the bbox padded by r (clipped to the image: nothing crosses its border).
    const bx = Math.max(0, x0[id]! - r), by = Math.max(0, y0[id]! - r);
    const bw = Math.min(W - 1, x1[id]! + r) - bx + 1, bh = Math.min(H - 1, y1[id]! + r) - by + 1;
    const local = new Uint8Array(bw * bh);
    for (let j = 0; j < bh; j++) for (let i = 0; i < bw; i++) local[j * bw + i] = orig[(by + j) * W + bx + i] === id ? 1 : 0;
    let mask = r > 0 ? morph(local, bw, bh, r, grow) : local;
    if (!mask.some((v) => v)) mask = local; // eroded away: keep the exact mask
    let label = cls;
    let score = (1 - pMiss) * uScore;
    const rate = cls === 'pedestrian' ? o.pedestrianConfusionRate : o.confusionRate;
    if (uConf < rate) {
      const opts = CONFUSABLE[cls];
      const total = opts.reduce((s, [, w]) => s + w, 0);
      let x = confPick * total, k = 0;
      while (k < opts.length - 1 && (x -= opts[k]![1]) >= 0) k++;
      label = opts[k]![0];
      score *= o.confusedScoreFactor;
      if (stats) stats.confused++;
    }
    score = Math.max(0.01, Math.round(score * 1000) / 1000);
    onInstance?.({ id, cls, ...view, pMiss, missed: false, label, score });
    kept.push({ id, label, score, mask, bx, by, bw, bh });
  }
  // One id per pixel: an instance keeps its own (true) pixels; other pixels go to the highest-scoring mask that covers them.
  const out = new Uint16Array(W * H);
  const claim = new Float32Array(W * H);
  for (const k of kept)
    for (let j = 0; j < k.bh; j++) for (let i = 0; i < k.bw; i++) {
      const p = (k.by + j) * W + k.bx + i;
      if (k.mask[j * k.bw + i] && orig[p] === k.id) { out[p] = k.id; claim[p] = 2; }
    }
  for (const k of kept)
    for (let j = 0; j < k.bh; j++) for (let i = 0; i < k.bw; i++) {
      const p = (k.by + j) * W + k.bx + i;
      if (k.mask[j * k.bw + i] && orig[p] !== k.id && k.score > claim[p]!) { out[p] = k.id; claim[p] = k.score; }
    }
  const instances = kept.filter((k) => {
    for (let j = 0; j < k.bh; j++) for (let i = 0; i < k.bw; i++) if (out[(k.by + j) * W + k.bx + i] === k.id) return true;
    return false;
  }).map((k) => ({ id: k.id, label: k.label, score: k.score }));
  // False positives: elliptic blobs on pixels no instance (true or masked) has.
  const fpRng = imageRng.fork('false-positives');
  const nFp = o.falsePositivesPerImage > 0 ? poisson(fpRng, o.falsePositivesPerImage) : 0;
  for (let f = 0; f < nFp; f++) {
    const id = n + 1 + f;
    const cx = fpRng.uniform(0, W), cy = fpRng.uniform(0, H);
    const rx = fpRng.uniform(0.01, 0.04) * W, ry = rx * fpRng.uniform(0.6, 2);
    const label = FP_CLASSES[fpRng.weighted(FP_CLASSES.map(([, w]) => w))]![0];
    const score = Math.round(fpRng.uniform(0.3, 0.55) * 1000) / 1000;
    let painted = 0;
    for (let y = Math.max(0, Math.floor(cy - ry)); y <= Math.min(H - 1, Math.ceil(cy + ry)); y++)
      for (let x = Math.max(0, Math.floor(cx - rx)); x <= Math.min(W - 1, Math.ceil(cx + rx)); x++) {
        const p = y * W + x;
        if (((x + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2 > 1 || orig[p] !== 0 || out[p] !== 0) continue;
        out[p] = id;
        painted++;
      }
    if (painted > 0) {
      instances.push({ id, label, score });
      if (stats) stats.falsePositives++;
    }
  }
  return { ids: out, instances };
}

/** Write a file through a temporary file beside it and a rename (a reader never sees half a file). */
function writeReplace(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

function readManifest(file: string): Manifest | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

/**
 * Write imperfect instance masks (`masks/<CHANNEL>/<image name>.png` + `.json`) for every keyframe camera image of a
 * synthetic dataset, from its exact segments (`segments/…`). A run with the options of the last complete run skips
 * images whose two files exist; other options rewrite every image (`masks/manifest.json` records the options, and
 * is marked complete only once every image is written).
 */
export async function synthesizeMasks(
  nusc: NuScenes,
  opts: Partial<SynthMaskOptions> & { onProgress?: (done: number, total: number) => void } = {},
): Promise<SynthesizeMasksResult> {
  const { onProgress, ...rest } = opts;
  const o = resolveSynthMaskOptions(rest);
  const dir = join(nusc.dataroot, 'masks');
  const manifestFile = join(dir, 'manifest.json');
  const images = nusc.table('sample_data').filter((sd) => sd.is_key_frame && sd.sensor_modality === 'camera');
  const prev = readManifest(manifestFile);
  const same = prev !== null && prev.complete === true && prev.version === SYNTH_MASKS_VERSION && JSON.stringify(prev.options) === JSON.stringify(o);
  const manifest = (complete: boolean): string => `${JSON.stringify({ generator: '@bevzoo/nuscenes synthesizeMasks', version: SYNTH_MASKS_VERSION, options: o, complete } satisfies Manifest, null, 2)}\n`;
  mkdirSync(dir, { recursive: true });
  if (!same) writeReplace(manifestFile, manifest(false));
  const stats: SynthMaskStats = { instances: 0, missed: 0, confused: 0, falsePositives: 0 };
  const made = new Set<string>();
  let written = 0, skipped = 0;
  for (const [i, sd] of images.entries()) {
    const base = join(nusc.dataroot, maskPathFor(sd.filename));
    if (same && existsSync(`${base}.png`) && existsSync(`${base}.json`)) skipped++;
    else {
      const segFile = join(nusc.dataroot, segmentPathFor(sd.filename));
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(segFile);
      } catch (e) {
        throw new NuScenesError(
          `Missing instance segments ${segFile} for image ${sd.filename} (sample_data ${sd.token}): synthesizeMasks makes masks from the synthetic dataset's exact segments; real nuScenes needs masks from a 2-D instance segmenter (see the README)${(e as NodeJS.ErrnoException).code === 'ENOENT' ? '' : `: ${(e as Error).message}`}`,
          { file: segFile, table: 'sample_data', token: sd.token, field: 'segments', expected: 'a 16-bit grayscale PNG of instance ids' },
        );
      }
      const img = decodeIdPng(bytes, segFile);
      if (img.channels !== 1 || img.bitDepth !== 16 || img.width !== sd.width || img.height !== sd.height)
        throw new NuScenesError(`${segFile}: expected a 16-bit gray ${sd.width}×${sd.height} segment PNG, found ${img.channels} channel(s) at ${img.bitDepth} bit, ${img.width}×${img.height}`, {
          file: segFile, table: 'sample_data', token: sd.token, field: 'segments', expected: `1 channel, 16 bit, ${sd.width}×${sd.height}`,
        });
      const res = synthesizeImageMasks({ width: img.width, height: img.height, ids: img.data as Uint16Array }, synthImageInstances(nusc, sd.token), sd.token, o, stats);
      const d = dirname(base);
      if (!made.has(d)) { mkdirSync(d, { recursive: true }); made.add(d); }
      writeReplace(`${base}.png`, encodeGray16Png(img.width, img.height, res.ids));
      writeReplace(`${base}.json`, `${JSON.stringify({ instances: res.instances })}\n`);
      written++;
    }
    onProgress?.(i + 1, images.length);
    if (i % 64 === 63) await new Promise((r) => setImmediate(r)); // let timers and I/O callbacks run
  }
  if (!same) writeReplace(manifestFile, manifest(true));
  return { dir, written, skipped, stats };
}
