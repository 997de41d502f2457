/**
 * The Occ3D-nuScenes grid and classes as the occupancy models see them (@bevzoo/nuscenes reads the labels; this
 * package cannot depend on it, so the constants are restated here and a test checks them against the reader's).
 */
import type { GridSpec } from '@bevzoo/core';
import { ConfigurationError } from '../errors.js';

/** 200×200×16 voxels of 0.4 m over x, y ∈ [−40, 40], z ∈ [−1, 5.4] (ego frame), arrays indexed [x, y, z]. */
export const OCC3D = Object.freeze({
  cells: Object.freeze([200, 200, 16] as const),
  voxel: 0.4,
  /** [xmin, ymin, zmin, xmax, ymax, zmax] metres. */
  range: Object.freeze([-40, -40, -1, 40, 40, 5.4] as const),
  numClasses: 18,
  /** The label of empty space. */
  free: 17,
});

/** Occ3D's 18 labels, in order (17 = free). */
export const OCC3D_CLASS_NAMES = Object.freeze([
  'others', 'barrier', 'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle', 'pedestrian', 'traffic_cone',
  'trailer', 'truck', 'driveable_surface', 'other_flat', 'sidewalk', 'terrain', 'manmade', 'vegetation', 'free',
] as const);

/**
 * Voxels per class over the Occ3D-nuScenes training set, as the reference code (BEVDet-Occ / FlashOcc
 * `nusc_class_frequencies`) states them; its class-balanced loss weighs class c by 1 / ln(f_c + 0.001).
 */
export const OCC3D_NUSCENES_CLASS_FREQUENCIES = Object.freeze([
  944004, 1897170, 152386, 2391677, 16957802, 724139, 189027, 2074468, 413451, 2384460, 5916653, 175883646, 4275424,
  51393615, 61411620, 105975596, 116424404, 1892500630,
]);

/** A model's voxel grid over the Occ3D volume: a whole number of Occ3D voxels per model voxel along each axis. */
export interface OccGrid {
  /** Model voxels [X, Y, Z]. */
  cells: [number, number, number];
  /** Occ3D voxels per model voxel [fx, fy, fz] (1 = Occ3D's resolution). */
  factor: [number, number, number];
  /** Metres per model voxel [x, y, z]. */
  cellSize: [number, number, number];
}

/**
 * The grid of `cellSize` metres along x and y and `zCellSize` along z: each must be a whole multiple of 0.4 m that
 * divides the Occ3D extent (200 or 16 voxels). A bad size calls `fail` with its field (`cellSize` or `zCellSize`);
 * by default it throws a ConfigurationError.
 */
export function occGrid(cellSize: number, zCellSize: number, fail: (field: 'cellSize' | 'zCellSize', message: string) => never = defaultFail): OccGrid {
  const factorOf = (size: number, n: number, field: 'cellSize' | 'zCellSize'): number => {
    const f = Math.round(size / OCC3D.voxel);
    if (!(f >= 1) || Math.abs(f * OCC3D.voxel - size) > 1e-6 || n % f !== 0) {
      const ok = Array.from({ length: n }, (_, i) => i + 1).filter((k) => n % k === 0).map((k) => +(k * OCC3D.voxel).toFixed(4));
      fail(field, `a multiple of Occ3D's ${OCC3D.voxel} m that divides its ${n} voxels (${ok.join(', ')} m), found ${size}`);
    }
    return f;
  };
  const [X, Y, Z] = OCC3D.cells;
  const fx = factorOf(cellSize, X, 'cellSize');
  const fz = factorOf(zCellSize, Z, 'zCellSize');
  return { cells: [X / fx, Y / fx, Z / fz], factor: [fx, fx, fz], cellSize: [fx * OCC3D.voxel, fx * OCC3D.voxel, fz * OCC3D.voxel] };
}

function defaultFail(field: string, message: string): never {
  throw new ConfigurationError(`occGrid ${field}: ${message}`);
}

/** The voxel FeatureSpec grid of an occupancy grid (cells [X, Y, Z], range [xmin, ymin, zmin, xmax, ymax, zmax]). */
export function occGridSpec(g: OccGrid): GridSpec {
  return { cells: [...g.cells], cellSize: [...g.cellSize], range: [...OCC3D.range] };
}

/** The BEV FeatureSpec grid over the same area (cells [X, Y], range [xmin, ymin, xmax, ymax]). */
export function occBevGridSpec(g: OccGrid, stride = 1): GridSpec {
  const [xmin, ymin, , xmax, ymax] = OCC3D.range;
  return { cells: [g.cells[0] / stride, g.cells[1] / stride], cellSize: [g.cellSize[0] * stride, g.cellSize[1] * stride], range: [xmin, ymin, xmax, ymax] };
}
