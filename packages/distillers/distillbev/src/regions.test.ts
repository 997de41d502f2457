import { describe, expect, it } from 'vitest';
import { bevGrid } from '@bevzoo/core';
import type { DetBoxes } from './batch.js';
import { componentSizes, falsePositives, foreground, gtHeatmapMax, layerGrid, regionWeights, resampleMax, uniformWeights } from './regions.js';

/** 4×4 cells of 1 m over [0, 4]²: cell (x, y) has its centre at (x + ½, y + ½), flat index y·4 + x. */
const grid = layerGrid(bevGrid([0, 0, 4, 4], 4));

function boxes(list: { c: [number, number]; w: number; l: number; yaw: number }[]): DetBoxes {
  return {
    count: list.length,
    center: Float32Array.from(list.flatMap((b) => [b.c[0], b.c[1], 0])),
    size: Float32Array.from(list.flatMap((b) => [b.w, b.l, 1.5])),
    yaw: Float32Array.from(list.map((b) => b.yaw)),
    label: Int32Array.from(list.map(() => 0)),
  };
}

/** Box A: centre (1.5, 1.5), w 1.2, l 2.2, yaw 90°: its length runs along y, so x ∈ [0.9, 2.1], y ∈ [0.4, 2.6]. */
const A = { c: [1.5, 1.5] as [number, number], w: 1.2, l: 2.2, yaw: Math.PI / 2 };

const cells = (m: Int32Array, v: number) => [...m.keys()].filter((i) => m[i] === v);

describe('foreground', () => {
  it('marks the cells whose centre lies in the rotated box, with the box area in cells', () => {
    const f = foreground(boxes([A]), grid);
    // Centres with x = 1.5 and y ∈ {0.5, 1.5, 2.5}: cells (1,0), (1,1), (1,2).
    expect(cells(f.box, 0)).toEqual([1, 5, 9]);
    expect(f.count).toBe(3);
    expect(f.areaCells[0]).toBeCloseTo(1.2 * 2.2, 5);
  });

  it("uses the cell's lower corner in 'corner' mode (reference code)", () => {
    // Corners (x, y) with x ∈ [0.9, 2.1] → 1, 2 and y ∈ [0.4, 2.6] → 1, 2.
    expect(cells(foreground(boxes([A]), grid, 'corner').box, 0)).toEqual([5, 6, 9, 10]);
  });

  it('gives an overlapped cell to the first box; area in cells follows the cell size', () => {
    // Box B: axis-aligned 2 × 2 m square at (2, 1.5): x ∈ [1, 3] → centres 1.5, 2.5; y ∈ [0.5, 2.5] → 0.5, 1.5, 2.5.
    const B = { c: [2, 1.5] as [number, number], w: 2, l: 2, yaw: 0 };
    const f = foreground(boxes([A, B]), grid);
    expect(cells(f.box, 0)).toEqual([1, 5, 9]);
    expect(cells(f.box, 1)).toEqual([2, 6, 10]);
    expect(f.count).toBe(6);
    const coarse = foreground(boxes([A, B]), layerGrid(bevGrid([0, 0, 4, 4], 2)));
    expect(coarse.areaCells[1]).toBeCloseTo(1, 6); // 4 m² in 2 m cells
  });

  it('ignores boxes without a positive size and boxes off the grid', () => {
    const f = foreground(boxes([{ c: [1.5, 1.5], w: 0, l: 2, yaw: 0 }, { c: [10, 10], w: 2, l: 2, yaw: 0 }]), grid);
    expect(f.count).toBe(0);
  });
});

describe('gtHeatmapMax', () => {
  it('draws the CenterPoint Gaussian (min radius 2, σ = 5/6) at the centre cell', () => {
    const g = gtHeatmapMax(boxes([A]), grid, { minRadius: 2, overlap: 0.1 });
    const s2 = 2 * (5 / 6) ** 2;
    const at = (x: number, y: number) => g[y * 4 + x]!;
    expect(at(1, 1)).toBeCloseTo(1, 6);
    expect(at(2, 1)).toBeCloseTo(Math.exp(-1 / s2), 5);
    expect(at(0, 0)).toBeCloseTo(Math.exp(-2 / s2), 5);
    expect(at(3, 3)).toBeCloseTo(Math.exp(-8 / s2), 5);
    expect(at(0, 3)).toBeCloseTo(Math.exp(-5 / s2), 5);
  });
});

describe('resampleMax', () => {
  const src = Float32Array.from({ length: 16 }, (_, i) => i);
  it('max-pools a finer map', () => {
    expect([...resampleMax(src, 4, 4, 2, 2)]).toEqual([5, 7, 13, 15]);
  });
  it('repeats a coarser map', () => {
    expect([...resampleMax([1, 2, 3, 4], 2, 2, 4, 4)]).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });
  it('reads one sample of a batch at an offset', () => {
    expect([...resampleMax([0, 0, 0, 0, 9, 8, 7, 6], 2, 2, 1, 1, 4)]).toEqual([9]);
  });
});

describe('falsePositives', () => {
  it('is (G < gt_thr) ∧ (T > teacher_thr) ∧ ¬fg', () => {
    const fg = Int32Array.from([0, -1, -1, -1]);
    const G = [0, 0.05, 0.5, 0.0];
    const T = [0.9, 0.2, 0.9, 0.05];
    expect([...falsePositives(G, T, fg, 0.1, 0.1)]).toEqual([0, 1, 0, 0]);
    // A separate GT threshold: 0.6 lets cell 2 (G = 0.5) count.
    expect([...falsePositives(G, T, fg, 0.6, 0.1)]).toEqual([0, 1, 1, 0]);
  });
});

describe('componentSizes', () => {
  it('gives each cell the size of its 4-connected region', () => {
    // 1 1 0 0
    // 0 1 0 1
    // 0 0 0 1
    // 1 0 0 0   (diagonal neighbours do not connect)
    const m = Uint8Array.from([1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0]);
    expect([...componentSizes(m, 4, 4)]).toEqual([3, 3, 0, 0, 0, 3, 0, 2, 0, 0, 0, 2, 1, 0, 0, 0]);
  });
});

describe('regionWeights', () => {
  const f = foreground(boxes([A]), grid); // fg cells 1, 5, 9; area 2.64 cells
  const fp = new Uint8Array(16);
  fp[12] = 1;
  fp[15] = 1;
  fp[14] = 1; // cells 14, 15 are one region of 2, cell 12 a region of 1

  it("'sqrt': 1/√(H·W) on the box, 1/N_tn, 1/N_fp", () => {
    const w = regionWeights(f, fp, 4, 4, { scaling: 'sqrt', fpScaling: 'count' });
    expect(w.counts).toEqual({ fg: 3, tn: 10, fp: 3 });
    for (const i of [1, 5, 9]) expect(w.fg[i]).toBeCloseTo(1 / Math.sqrt(2.64), 6);
    expect(w.fg[0]).toBe(0);
    expect(w.tn[0]).toBeCloseTo(1 / 10, 7);
    expect(w.tn[1]).toBe(0);
    expect(w.tn[12]).toBe(0);
    for (const i of [12, 14, 15]) expect(w.fp![i]).toBeCloseTo(1 / 3, 7);
    expect(w.fp![0]).toBe(0);
  });

  it("'area', 'count', 'none' and component FP scaling", () => {
    expect(regionWeights(f, fp, 4, 4, { scaling: 'area', fpScaling: 'count' }).fg[5]).toBeCloseTo(1 / 2.64, 6);
    expect(regionWeights(f, fp, 4, 4, { scaling: 'count', fpScaling: 'count' }).fg[5]).toBeCloseTo(1 / 3, 7);
    const none = regionWeights(f, fp, 4, 4, { scaling: 'none', fpScaling: 'count' });
    expect([none.fg[5], none.tn[0], none.fp![12]]).toEqual([1, 1, 1]);
    const comp = regionWeights(f, fp, 4, 4, { scaling: 'sqrt', fpScaling: 'component' });
    expect([comp.fp![12], comp.fp![14], comp.fp![15]]).toEqual([1, 0.5, 0.5]);
  });

  it('without an FP mask every non-foreground cell is TN', () => {
    const w = regionWeights(f, null, 4, 4, { scaling: 'sqrt', fpScaling: 'count' });
    expect(w.fp).toBeNull();
    expect(w.counts.tn).toBe(13);
    expect(w.tn[12]).toBeCloseTo(1 / 13, 7);
  });

  it('uniform weights: 1/(H·W), or 1 without scaling', () => {
    expect(uniformWeights(4, 4, 'sqrt')[3]).toBeCloseTo(1 / 16, 7);
    expect(uniformWeights(4, 4, 'none')[3]).toBe(1);
  });
});
