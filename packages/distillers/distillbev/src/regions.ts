/**
 * DistillBEV's region decomposition and adaptive scaling, per sample and per distilled layer, in plain JS on
 * typed arrays (no tensors, nothing on the gradient tape). Maps are flat [Y·X], row = y cell, column = x cell,
 * index y·X + x — the layout of an NHWC feature of one sample with one channel.
 */
import { pointInBoxBev, type Box3, type GridSpec } from '@bevzoo/core';
import { drawHeatmapGaussian, gaussianRadius } from '@bevzoo/nn';
import type { DetBoxes } from './batch.js';
import { DistillBevError } from './errors.js';

/** A BEV grid as the masks need it. */
export interface LayerGrid {
  /** Cells along x (columns) and y (rows). */
  x: number;
  y: number;
  /** Metres per cell. */
  cellX: number;
  cellY: number;
  xmin: number;
  ymin: number;
}

export function layerGrid(g: GridSpec): LayerGrid {
  const [x, y] = g.cells as [number, number];
  const [xmin, ymin, xmax, ymax] = g.range as [number, number, number, number];
  if (!(x > 0 && y > 0 && xmax > xmin && ymax > ymin))
    throw new DistillBevError(`layerGrid: expected a BEV grid with cells [X, Y] > 0 and range [xmin, ymin, xmax, ymax]; found cells [${g.cells}], range [${g.range}]`);
  return { x, y, cellX: (xmax - xmin) / x, cellY: (ymax - ymin) / y, xmin, ymin };
}

/** Box k of a sample as a core Box3; null when its size is not positive and finite. */
export function boxAt(boxes: DetBoxes, k: number): Box3 | null {
  const c = boxes.center, s = boxes.size;
  const box: Box3 = { center: [c[3 * k]!, c[3 * k + 1]!, c[3 * k + 2]!], size: [s[3 * k]!, s[3 * k + 1]!, s[3 * k + 2]!], yaw: boxes.yaw[k]! };
  const [w, l] = box.size;
  return w > 0 && l > 0 && Number.isFinite(w * l) && Number.isFinite(box.center[0] + box.center[1] + box.yaw) ? box : null;
}

/** Where a cell's point lies: its centre (default), or its lower corner (xmin + i·cell, as the reference code). */
export type CellPoint = 'center' | 'corner';

export interface Foreground {
  /** [Y·X] index of the first box whose BEV footprint holds the cell's point (first box wins); −1 elsewhere. */
  box: Int32Array;
  /** Foreground cells. */
  count: number;
  /** Per box: its BEV area l·w in cells of this grid (H_k·W_k); 0 for a box without a valid size. */
  areaCells: Float64Array;
}

/** M_fg: the cells whose point lies inside a ground-truth box (rotated, z ignored). */
export function foreground(boxes: DetBoxes, grid: LayerGrid, point: CellPoint = 'center'): Foreground {
  const { x: X, y: Y, cellX, cellY, xmin, ymin } = grid;
  const off = point === 'center' ? 0.5 : 0;
  const box = new Int32Array(X * Y).fill(-1);
  const areaCells = new Float64Array(boxes.count);
  let count = 0;
  for (let k = 0; k < boxes.count; k++) {
    const b = boxAt(boxes, k);
    if (!b) continue;
    const [w, l] = b.size;
    areaCells[k] = (w * l) / (cellX * cellY);
    // Axis-aligned bounds of the footprint, then the exact rotated test on the cells inside them.
    const c = Math.abs(Math.cos(b.yaw)), s = Math.abs(Math.sin(b.yaw));
    const ex = (c * l + s * w) / 2, ey = (s * l + c * w) / 2;
    const x0 = Math.max(0, Math.ceil((b.center[0] - ex - xmin) / cellX - off));
    const x1 = Math.min(X - 1, Math.floor((b.center[0] + ex - xmin) / cellX - off));
    const y0 = Math.max(0, Math.ceil((b.center[1] - ey - ymin) / cellY - off));
    const y1 = Math.min(Y - 1, Math.floor((b.center[1] + ey - ymin) / cellY - off));
    for (let iy = y0; iy <= y1; iy++) {
      const py = ymin + (iy + off) * cellY;
      for (let ix = x0; ix <= x1; ix++) {
        const i = iy * X + ix;
        if (box[i] !== -1) continue;
        if (pointInBoxBev(b, xmin + (ix + off) * cellX, py)) {
          box[i] = k;
          count++;
        }
      }
    }
  }
  return { box, count, areaCells };
}

/**
 * G: the max over classes of the CenterPoint Gaussian ground-truth heatmap at this grid (every class's
 * Gaussians merge by max, so one channel holds the max). Radius max(minRadius, ⌊gaussian_radius((l, w) in
 * cells, overlap)⌋) at the cell holding the box centre; boxes whose centre is off the grid draw nothing.
 */
export function gtHeatmapMax(boxes: DetBoxes, grid: LayerGrid, opts: { minRadius: number; overlap: number }): Float32Array {
  const { x: X, y: Y, cellX, cellY, xmin, ymin } = grid;
  const out = new Float32Array(X * Y);
  for (let k = 0; k < boxes.count; k++) {
    const b = boxAt(boxes, k);
    if (!b) continue;
    const [w, l] = b.size;
    const radius = Math.max(opts.minRadius, Math.trunc(gaussianRadius([l / cellX, w / cellY], opts.overlap)));
    const ix = Math.trunc(Math.fround((b.center[0] - xmin) / cellX));
    const iy = Math.trunc(Math.fround((b.center[1] - ymin) / cellY));
    if (!(ix >= 0 && ix < X && iy >= 0 && iy < Y)) continue;
    drawHeatmapGaussian(out, { height: Y, width: X, channels: 1, channel: 0 }, ix, iy, radius);
  }
  return out;
}

/**
 * A [srcY·srcX] map (starting at `offset` in `src`) on another grid of the same area: each destination cell takes
 * the max over the source cells it overlaps (a max-pool when the source is finer, a repeat when it is coarser).
 */
export function resampleMax(src: ArrayLike<number>, srcX: number, srcY: number, dstX: number, dstY: number, offset = 0): Float32Array {
  const out = new Float32Array(dstX * dstY);
  const span = (i: number, n: number, m: number): [number, number] => {
    const lo = Math.floor((i * n) / m);
    return [lo, Math.min(n, Math.max(lo + 1, Math.ceil(((i + 1) * n) / m)))];
  };
  for (let y = 0; y < dstY; y++) {
    const [y0, y1] = span(y, srcY, dstY);
    for (let x = 0; x < dstX; x++) {
      const [x0, x1] = span(x, srcX, dstX);
      let m = -Infinity;
      for (let sy = y0; sy < y1; sy++) for (let sx = x0; sx < x1; sx++) m = Math.max(m, src[offset + sy * srcX + sx]!);
      out[y * dstX + x] = m;
    }
  }
  return out;
}

/** M_fp = (G < gtThreshold) ∧ (T > teacherThreshold) ∧ ¬M_fg, with T = max over classes of the teacher's sigmoid heatmap. */
export function falsePositives(gt: ArrayLike<number>, teacher: ArrayLike<number>, fg: Int32Array, gtThreshold: number, teacherThreshold: number): Uint8Array {
  if (gt.length !== fg.length || teacher.length !== fg.length)
    throw new DistillBevError(`falsePositives: expected maps of ${fg.length} cells; found G ${gt.length}, T ${teacher.length}`);
  const out = new Uint8Array(fg.length);
  for (let i = 0; i < fg.length; i++) out[i] = gt[i]! < gtThreshold && teacher[i]! > teacherThreshold && fg[i] === -1 ? 1 : 0;
  return out;
}

/** Size of the 4-connected component of `mask` that holds each cell (0 outside the mask). */
export function componentSizes(mask: Uint8Array, X: number, Y: number): Int32Array {
  const size = new Int32Array(X * Y);
  const queue = new Int32Array(X * Y);
  const seen = new Uint8Array(X * Y);
  for (let start = 0; start < X * Y; start++) {
    if (!mask[start] || seen[start]) continue;
    let head = 0, tail = 0;
    queue[tail++] = start;
    seen[start] = 1;
    while (head < tail) {
      const i = queue[head++]!;
      const x = i % X, y = (i - x) / X;
      const nb = [x > 0 ? i - 1 : -1, x < X - 1 ? i + 1 : -1, y > 0 ? i - X : -1, y < Y - 1 ? i + X : -1];
      for (const j of nb) {
        if (j >= 0 && mask[j] && !seen[j]) {
          seen[j] = 1;
          queue[tail++] = j;
        }
      }
    }
    for (let q = 0; q < tail; q++) size[queue[q]!] = tail;
  }
  return size;
}

/**
 * Adaptive scaling S: 'sqrt' (reference code) 1/√(H_k·W_k) on the cells of box k; 'area' (paper) 1/(H_k·W_k);
 * 'count' 1/N_fg on every foreground cell (region mean, no per-object scaling); 'none' 1 (plain sums).
 * Background regions get 1/N_tn and 1/N_fp ('none': 1) in every mode but 'none'.
 */
export type Scaling = 'sqrt' | 'area' | 'count' | 'none';
/** FP cells: 1/N_fp over the sample (default), or 1/(size of their connected FP region), the reference's 'dfs'. */
export type FpScaling = 'count' | 'component';

export interface RegionWeights {
  /** [Y·X] M_fg·S */
  fg: Float32Array;
  /** [Y·X] M_tn·S */
  tn: Float32Array;
  /** [Y·X] M_fp·S; null when the FP term is off. */
  fp: Float32Array | null;
  counts: { fg: number; tn: number; fp: number };
}

/** The per-cell weights M·S of each region of one sample. `fp` null: no FP region (every non-foreground cell is TN). */
export function regionWeights(fg: Foreground, fp: Uint8Array | null, X: number, Y: number, opts: { scaling: Scaling; fpScaling: FpScaling }): RegionWeights {
  const n = X * Y;
  if (fg.box.length !== n || (fp && fp.length !== n)) throw new DistillBevError(`regionWeights: expected masks of ${n} cells; found fg ${fg.box.length}, fp ${fp?.length}`);
  const wFg = new Float32Array(n), wTn = new Float32Array(n), wFp = fp ? new Float32Array(n) : null;
  let nFp = 0;
  if (fp) for (let i = 0; i < n; i++) nFp += fp[i]!;
  const nTn = n - fg.count - nFp;
  const none = opts.scaling === 'none';
  const sizes = fp && opts.fpScaling === 'component' ? componentSizes(fp, X, Y) : null;
  for (let i = 0; i < n; i++) {
    const k = fg.box[i]!;
    if (k >= 0) {
      const a = fg.areaCells[k]!;
      wFg[i] = opts.scaling === 'sqrt' ? 1 / Math.sqrt(a) : opts.scaling === 'area' ? 1 / a : opts.scaling === 'count' ? 1 / fg.count : 1;
    } else if (fp && fp[i]) {
      wFp![i] = none ? 1 : sizes ? 1 / sizes[i]! : 1 / nFp;
    } else {
      wTn[i] = none ? 1 : 1 / nTn;
    }
  }
  return { fg: wFg, tn: wTn, fp: wFp, counts: { fg: fg.count, tn: nTn, fp: nFp } };
}

/** `regions: false`: every cell in one region, weight 1/(H·W) ('none': 1). */
export function uniformWeights(X: number, Y: number, scaling: Scaling): Float32Array {
  return new Float32Array(X * Y).fill(scaling === 'none' ? 1 : 1 / (X * Y));
}
