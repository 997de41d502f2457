/**
 * CenterPoint training targets, ported from mmdet3d's CenterHead.get_targets_single. Pure JS on typed arrays (no
 * tensors, nothing on the tape).
 *
 * Conventions (shared with the loss and the decoder):
 * - A feature map is NHWC [B, H, W, C]; row r is the y cell, column c the x cell (mmdet3d's heatmap is
 *   [C, H = y, W = x]); flat index = y·W + x.
 * - A box is in the ego BEV frame: centre (x, y, z) at the geometric centre (mmdet3d's gravity_center), size
 *   (w, l, h) in nuScenes order — l along the heading, w across it — and yaw about +z from +x.
 * - anno_box = [x − ⌊x⌋, y − ⌊y⌋ (in feature cells), z, log w, log l, log h, sin yaw, cos yaw, vx, vy].
 *   mmdet3d 1.x stores dims as (l, w, h) = (dx, dy, dz); a checkpoint converted from mmdet3d needs the first two
 *   output channels of the `dim` branch swapped.
 */
import { CODE_SIZE, CenterHeadError, featureMapSize, type CenterHeadConfig } from './config.js';

/** A ground-truth box in the ego BEV frame. */
export interface GtBox {
  center: [number, number, number];
  /** (w, l, h) metres. */
  size: [number, number, number];
  yaw: number;
  /** (vx, vy) m/s; NaN entries get no loss. */
  velocity?: [number, number];
  /** Index into the config's classNames. */
  label: number;
}

/** Targets of one task for a whole batch. */
export interface TaskTargets {
  /** Classes of the task (channels of its heatmap). */
  numClasses: number;
  /** [B, H, W, numClasses] Gaussian heatmap. */
  heatmap: Float32Array;
  /** [B, maxObjects, 10] anno_box (see the module comment). */
  annoBox: Float32Array;
  /** [B, maxObjects] flat cell index y·W + x. */
  ind: Int32Array;
  /** [B, maxObjects] 1 where the slot holds an object. */
  mask: Float32Array;
}

export interface CenterHeadTargets {
  batch: number;
  height: number;
  width: number;
  maxObjects: number;
  tasks: TaskTargets[];
}

/**
 * CornerNet's gaussian_radius exactly as mmdet3d ports it (each of the three roots divided by 2, not by 2a):
 * the radius such that a box shifted by it keeps IoU ≥ minOverlap with the true box, in the three cases
 * (both corners inside, both outside, one of each). det = (height, width) in cells; symmetric in the two.
 */
export function gaussianRadius(det: [number, number], minOverlap: number): number {
  const [height, width] = det;
  const b1 = height + width;
  const c1 = (width * height * (1 - minOverlap)) / (1 + minOverlap);
  const r1 = (b1 + Math.sqrt(b1 * b1 - 4 * c1)) / 2;
  const a2 = 4;
  const b2 = 2 * (height + width);
  const c2 = (1 - minOverlap) * width * height;
  const r2 = (b2 + Math.sqrt(b2 * b2 - 4 * a2 * c2)) / 2;
  const a3 = 4 * minOverlap;
  const b3 = -2 * minOverlap * (height + width);
  const c3 = (minOverlap - 1) * width * height;
  const r3 = (b3 + Math.sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return Math.min(r1, r2, r3);
}

/** The (2r+1)² Gaussian kernel with σ = (2r+1)/6, tiny values (< ε·max) zeroed, as mmdet3d's gaussian_2d. */
export function gaussianKernel(radius: number): Float64Array {
  const d = 2 * radius + 1;
  const sigma = d / 6;
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const y = i - radius, x = j - radius;
      const v = Math.exp(-(x * x + y * y) / (2 * sigma * sigma));
      out[i * d + j] = v < Number.EPSILON ? 0 : v; // max is 1 at the centre
    }
  }
  return out;
}

/**
 * Draw a Gaussian of the given radius at integer cell (cx, cy) into channel `channel` of an [H, W, C] heatmap
 * (starting at `offset`), merging by max (mmdet3d draw_heatmap_gaussian).
 */
export function drawHeatmapGaussian(
  heatmap: Float32Array,
  dims: { height: number; width: number; channels: number; channel: number; offset?: number },
  cx: number,
  cy: number,
  radius: number,
): void {
  const { height, width, channels, channel } = dims;
  const base = dims.offset ?? 0;
  const g = gaussianKernel(radius);
  const d = 2 * radius + 1;
  const left = Math.min(cx, radius), right = Math.min(width - cx, radius + 1);
  const top = Math.min(cy, radius), bottom = Math.min(height - cy, radius + 1);
  for (let dy = -top; dy < bottom; dy++) {
    for (let dx = -left; dx < right; dx++) {
      const v = Math.fround(g[(radius + dy) * d + radius + dx]!);
      const k = base + ((cy + dy) * width + cx + dx) * channels + channel;
      if (v > heatmap[k]!) heatmap[k] = v;
    }
  }
}

/** Where each global class goes: [task index, class index within the task], or null when in no task. */
export function classToTask(cfg: Pick<CenterHeadConfig, 'classNames' | 'tasks'>): ([number, number] | null)[] {
  return cfg.classNames.map((name) => {
    for (const [t, names] of cfg.tasks.entries()) {
      const j = names.indexOf(name);
      if (j >= 0) return [t, j] as [number, number];
    }
    return null;
  });
}

/**
 * Heatmaps and regression targets of every task for a batch of samples (`boxes[b]` = GT boxes of sample b).
 * Per task, objects are taken in the order given, the first maxObjects only; a box whose centre falls outside the
 * grid, or whose size is not positive, gets nothing (its slot keeps mask 0), as in mmdet3d.
 */
export function buildTargets(boxes: readonly (readonly GtBox[])[], cfg: CenterHeadConfig): CenterHeadTargets {
  const [H, W] = featureMapSize(cfg.grid);
  const B = boxes.length;
  const M = cfg.maxObjects;
  const { range, cellSize, stride } = cfg.grid;
  const map = classToTask(cfg);
  const tasks: TaskTargets[] = cfg.tasks.map((names) => ({
    numClasses: names.length,
    heatmap: new Float32Array(B * H * W * names.length),
    annoBox: new Float32Array(B * M * CODE_SIZE),
    ind: new Int32Array(B * M),
    mask: new Float32Array(B * M),
  }));
  for (let b = 0; b < B; b++) {
    const count = new Array<number>(tasks.length).fill(0);
    for (const [i, box] of boxes[b]!.entries()) {
      const where = map[box.label];
      if (where === undefined || !Number.isInteger(box.label))
        throw new CenterHeadError(`buildTargets: sample ${b} box ${i}: label must be an index into classNames (0..${cfg.classNames.length - 1}), found ${box.label}`, { sample: b, box: i, field: 'label', found: box.label });
      if (where === null) continue;
      const [t, c] = where;
      const k = count[t]!++;
      if (k >= M) continue;
      const tt = tasks[t]!;
      const [w, l, h] = box.size;
      // Footprint in feature cells: l lies along x and w along y at yaw 0 (mmdet3d uses dx/voxel_x, dy/voxel_y);
      // gaussian_radius is symmetric, so only the cell sizes matter.
      const lc = l / cellSize[0] / stride, wc = w / cellSize[1] / stride;
      if (!(lc > 0 && wc > 0)) continue;
      const radius = Math.max(cfg.minRadius, Math.trunc(gaussianRadius([lc, wc], cfg.gaussianOverlap)));
      const fx = (box.center[0] - range[0]) / cellSize[0] / stride;
      const fy = (box.center[1] - range[1]) / cellSize[1] / stride;
      // torch .to(int32) truncates toward zero; centres in (−1, 0) truncate to 0 there too.
      const ix = Math.trunc(Math.fround(fx)), iy = Math.trunc(Math.fround(fy));
      if (!(ix >= 0 && ix < W && iy >= 0 && iy < H)) continue;
      drawHeatmapGaussian(tt.heatmap, { height: H, width: W, channels: tt.numClasses, channel: c, offset: b * H * W * tt.numClasses }, ix, iy, radius);
      const slot = b * M + k;
      tt.ind[slot] = iy * W + ix;
      tt.mask[slot] = 1;
      const v = box.velocity ?? [Number.NaN, Number.NaN];
      const o = slot * CODE_SIZE;
      tt.annoBox.set([fx - ix, fy - iy, box.center[2], Math.log(w), Math.log(l), Math.log(h), Math.sin(box.yaw), Math.cos(box.yaw), v[0], v[1]], o);
    }
  }
  return { batch: B, height: H, width: W, maxObjects: M, tasks };
}
