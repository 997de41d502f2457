/**
 * Features travel by name with a spec, so that a distiller can say what it needs and `assemble()` can check a
 * combination before anything runs.
 */
export type FeatureKind = 'bev' | 'heatmap' | 'voxel';

/** A regular grid in the ego frame. */
export interface GridSpec {
  /** Number of cells per axis: [X, Y] for BEV maps, [X, Y, Z] for voxel volumes. */
  cells: number[];
  /** Metres per cell along x and y (and z for voxels). */
  cellSize: number[];
  /** [xmin, ymin, xmax, ymax] (BEV) or [xmin, ymin, zmin, xmax, ymax, zmax] (voxels), metres. */
  range: number[];
}

export interface FeatureSpec {
  kind: FeatureKind;
  channels: number;
  grid: GridSpec;
  /** Index of the backbone stage (0 = finest) or, for the pre-head feature, -1. */
  stage?: number;
  description?: string;
}

export type FeatureMap = Record<string, FeatureSpec>;

/** A BEV grid from a symmetric range and a cell count. */
export function bevGrid(range: [number, number, number, number], cellsX: number, cellsY = cellsX): GridSpec {
  return {
    cells: [cellsX, cellsY],
    cellSize: [(range[2] - range[0]) / cellsX, (range[3] - range[1]) / cellsY],
    range: [...range],
  };
}

/** The same area at a coarser or finer resolution. */
export function scaleGrid(grid: GridSpec, factor: number): GridSpec {
  const n = grid.cells.length;
  return {
    cells: grid.cells.map((c, i) => (i < 2 ? Math.round(c / factor) : c)),
    cellSize: grid.cellSize.map((s, i) => (i < 2 || n === 2 ? s * factor : s)),
    range: [...grid.range],
  };
}

export function sameArea(a: GridSpec, b: GridSpec, tol = 1e-6): boolean {
  return a.range.length === b.range.length && a.range.every((v, i) => Math.abs(v - b.range[i]!) <= tol);
}

export function sameGrid(a: GridSpec, b: GridSpec, tol = 1e-6): boolean {
  return sameArea(a, b, tol) && a.cells.length === b.cells.length && a.cells.every((c, i) => c === b.cells[i]);
}

export function describeGrid(g: GridSpec): string {
  const size = g.cellSize.map((s) => +s.toFixed(4)).join('×');
  return `${g.cells.join('×')} cells of ${size} m over [${g.range.join(', ')}]`;
}

export function describeFeature(f: FeatureSpec): string {
  return `${f.kind} ${f.channels} ch, ${describeGrid(f.grid)}`;
}
