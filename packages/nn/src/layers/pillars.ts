import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace, traceInput, type Rng } from '@bevzoo/core';
import { Module, ModuleList } from '../module.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { initRng } from '../init.js';
import { Linear } from './linear.js';
import { BatchNorm1d, type BatchNormOptions } from './batchnorm.js';
import { SECOND_NORM } from './second.js';

/** The pillar grid: pillar size and point-cloud range (metres, LiDAR/ego frame). */
export interface PillarGrid {
  /** [vx, vy, vz]; CenterPoint-pillar: [0.2, 0.2, 8]. */
  pillarSize: [number, number, number];
  /** [xmin, ymin, zmin, xmax, ymax, zmax]; CenterPoint: [−51.2, −51.2, −5, 51.2, 51.2, 3]. */
  range: [number, number, number, number, number, number];
}

export interface VoxelizeOptions extends PillarGrid {
  /** Points kept per pillar (later points of a full pillar are dropped). */
  maxPointsPerPillar: number;
  /** Pillars kept (pillars first reached after this many are dropped). */
  maxPillars: number;
  /** Features per point in `points` (default 5: x, y, z, intensity, Δt). */
  numFeatures?: number;
  /**
   * The order to read the points in (a permutation of their indices, e.g. `shuffleOrder`): the result is that of the
   * points reordered so, without the reordered copy. `pointPillar` / `pointSlot` are then indexed in this order.
   */
  order?: Uint32Array;
}

/** One point cloud cut into pillars. */
export interface Pillars {
  numPillars: number;
  maxPoints: number;
  numFeatures: number;
  /** [numPillars, maxPoints, numFeatures] raw point features, zero-padded. */
  features: Float32Array;
  /** [numPillars] points stored in each pillar. */
  numPoints: Int32Array;
  /** [numPillars, 2]: (y index, x index) of each pillar; row y, column x of the BEV canvas. */
  coords: Int32Array;
  /** [N] pillar of each input point, −1 when the point was dropped (out of range or over a limit). */
  pointPillar: Int32Array;
  /** [N] slot of each input point within its pillar, −1 when dropped. */
  pointSlot: Int32Array;
  /** [nx, ny] grid cells along x and y. */
  gridSize: [number, number];
}

/** Several point clouds' pillars concatenated, each pillar tagged with its sample. */
export interface PillarBatch {
  batchSize: number;
  numPillars: number;
  maxPoints: number;
  numFeatures: number;
  /** [numPillars, maxPoints, numFeatures]. */
  features: Float32Array;
  /** [numPillars]. */
  numPoints: Int32Array;
  /** [numPillars, 3]: (batch index, y index, x index). */
  coords: Int32Array;
  gridSize: [number, number];
}

/** Cells along x, y, z for a grid (rounded like mmdet3d). */
export function pillarGridSize(grid: PillarGrid): [number, number, number] {
  const [vx, vy, vz] = grid.pillarSize;
  const [x0, y0, z0, x1, y1, z1] = grid.range;
  const n = [Math.round((x1 - x0) / vx), Math.round((y1 - y0) / vy), Math.round((z1 - z0) / vz)] as [number, number, number];
  if (n.some((v) => !(v >= 1))) throw new ConfigurationError(`pillar grid: range [${grid.range}] and pillar size [${grid.pillarSize}] give grid [${n}]`);
  return n;
}

/**
 * Points → pillars (pure JS, outside the tape; mmdet3d hard voxelisation): a point in cell
 * (⌊(x−xmin)/vx⌋, ⌊(y−ymin)/vy⌋, ⌊(z−zmin)/vz⌋) outside the grid is dropped; pillars are numbered in
 * the order their first point appears; at most `maxPointsPerPillar` points per pillar and `maxPillars`
 * pillars are kept. `points` is [N, numFeatures] row-major with x, y, z first.
 */
export function voxelizePoints(points: Float32Array | number[], opts: VoxelizeOptions): Pillars {
  const F = opts.numFeatures ?? 5;
  const M = opts.maxPointsPerPillar, maxP = opts.maxPillars;
  if (F < 3) throw new ConfigurationError(`voxelizePoints: numFeatures must be ≥ 3 (x, y, z first), got ${F}`);
  if (points.length % F !== 0) throw new ShapeError('voxelizePoints', `a multiple of numFeatures=${F} values`, `${points.length}`);
  const [nx, ny, nz] = pillarGridSize(opts);
  const [vx, vy, vz] = opts.pillarSize;
  const [x0, y0, z0] = opts.range;
  const n = points.length / F;
  const cellToPillar = new Int32Array(nx * ny).fill(-1);
  const capacity = Math.min(maxP, n, nx * ny); // at most one pillar per cell
  const features = new Float32Array(capacity * M * F);
  const numPoints = new Int32Array(capacity);
  const coords = new Int32Array(capacity * 2);
  const pointPillar = new Int32Array(n).fill(-1);
  const pointSlot = new Int32Array(n).fill(-1);
  const order = opts.order;
  if (order && order.length !== n) throw new ShapeError('voxelizePoints(order)', `${n} indices (one per point)`, `${order.length}`);
  let P = 0;
  for (let i = 0; i < n; i++) {
    const o = (order ? order[i]! : i) * F;
    const cx = Math.floor((points[o]! - x0) / vx), cy = Math.floor((points[o + 1]! - y0) / vy), cz = Math.floor((points[o + 2]! - z0) / vz);
    if (!(cx >= 0 && cx < nx && cy >= 0 && cy < ny && cz >= 0 && cz < nz)) continue; // also drops NaN
    const cell = cy * nx + cx;
    let p = cellToPillar[cell]!;
    if (p < 0) {
      if (P >= maxP) continue;
      p = P++;
      cellToPillar[cell] = p;
      coords[2 * p] = cy;
      coords[2 * p + 1] = cx;
    }
    const slot = numPoints[p]!;
    if (slot >= M) continue;
    for (let f = 0; f < F; f++) features[(p * M + slot) * F + f] = points[o + f]!;
    numPoints[p] = slot + 1;
    pointPillar[i] = p;
    pointSlot[i] = slot;
  }
  return {
    numPillars: P,
    maxPoints: M,
    numFeatures: F,
    // Views (no copy): collatePillars copies the samples into the batch.
    features: features.subarray(0, P * M * F),
    numPoints: numPoints.subarray(0, P),
    coords: coords.subarray(0, 2 * P),
    pointPillar,
    pointSlot,
    gridSize: [nx, ny],
  };
}

/** Concatenate per-sample pillars into one batch (coords gain the batch index). */
export function collatePillars(samples: Pillars[]): PillarBatch {
  if (samples.length === 0) throw new ShapeError('collatePillars', 'at least one sample', 'none');
  const first = samples[0]!;
  samples.forEach((s, b) => {
    if (s.maxPoints !== first.maxPoints || s.numFeatures !== first.numFeatures || s.gridSize[0] !== first.gridSize[0] || s.gridSize[1] !== first.gridSize[1]) {
      throw new ShapeError(
        `collatePillars sample ${b}`,
        `maxPoints ${first.maxPoints}, numFeatures ${first.numFeatures}, grid [${first.gridSize}] like sample 0`,
        `${s.maxPoints}, ${s.numFeatures}, [${s.gridSize}]`,
      );
    }
  });
  const P = samples.reduce((a, s) => a + s.numPillars, 0);
  const stride = first.maxPoints * first.numFeatures;
  const features = new Float32Array(P * stride);
  const numPoints = new Int32Array(P);
  const coords = new Int32Array(P * 3);
  let off = 0;
  samples.forEach((s, b) => {
    features.set(s.features, off * stride);
    numPoints.set(s.numPoints, off);
    for (let p = 0; p < s.numPillars; p++) {
      coords[3 * (off + p)] = b;
      coords[3 * (off + p) + 1] = s.coords[2 * p]!;
      coords[3 * (off + p) + 2] = s.coords[2 * p + 1]!;
    }
    off += s.numPillars;
  });
  return { batchSize: samples.length, numPillars: P, maxPoints: first.maxPoints, numFeatures: first.numFeatures, features, numPoints, coords, gridSize: first.gridSize };
}

/**
 * One array of a pillar batch as a tensor reported to the active kernel trace as the input `pillars.<field>`
 * (axis 0, the pillars, varies from batch to batch): `features` [P, M, F], `num_points` [P], `coords` [P, 3] int32.
 */
export function pillarInput(field: 'coords', batch: Pick<PillarBatch, 'numPillars' | 'coords'>): tf.Tensor;
export function pillarInput(field: 'features' | 'num_points' | 'coords', batch: PillarBatch): tf.Tensor;
export function pillarInput(field: 'features' | 'num_points' | 'coords', batch: Pick<PillarBatch, 'numPillars' | 'coords'> & Partial<PillarBatch>): tf.Tensor {
  const P = batch.numPillars;
  const opts = { dynamicAxes: [0] };
  if (field === 'coords') return traceInput('pillars.coords', () => tf.tensor2d(batch.coords, [P, 3], 'int32'), opts);
  const b = batch as PillarBatch;
  if (field === 'features') return traceInput('pillars.features', () => tf.tensor3d(b.features, [P, b.maxPoints, b.numFeatures]), opts);
  return traceInput('pillars.num_points', () => tf.tensor1d(b.numPoints, 'int32'), opts);
}

/**
 * Max over axis 1 of [P, M, C] whose gradient goes to one maximal element (the first), as PyTorch's
 * max(dim). tfjs's own Max gradient feeds every tied element, which over-counts the identical padded
 * slots of a pillar.
 */
export const maxOverPoints: (x: tf.Tensor3D) => tf.Tensor3D = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor, save = args[1] as tf.GradSaveFunc;
  save([x]);
  return {
    value: tf.max(x, 1, true),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const input = saved[0]!;
      const M = input.shape[1]!;
      // int32 one-hot then cast: the wasm OneHot kernel ignores a float32 dtype attribute
      const first = tf.transpose(tf.cast(tf.oneHot(tf.argMax(input, 1), M), 'float32'), [0, 2, 1]); // [P, M, C]
      return [tf.mul(first, dy as tf.Tensor)];
    },
  };
}) as (x: tf.Tensor3D) => tf.Tensor3D;

/**
 * PointPillars PFN layer (mmdet3d PFNLayer): Linear (no bias) → BN1d → ReLU, then the max over the
 * pillar's points; a non-last layer halves its width and concatenates the max to every point.
 * Keys: linear.weight, norm.weight, norm.running_mean, ….
 */
export class PFNLayer extends Module {
  readonly linear: Linear;
  readonly norm: BatchNorm1d;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly lastLayer: boolean,
    opts: { norm?: BatchNormOptions; rng?: Rng } = {},
  ) {
    super();
    const units = lastLayer ? outChannels : outChannels / 2;
    if (!Number.isInteger(units)) throw new ConfigurationError(`PFNLayer: a non-last layer needs an even width, got ${outChannels}`);
    this.linear = this.registerModule('linear', new Linear(inChannels, units, { bias: false, rng: opts.rng }));
    this.norm = this.registerModule('norm', new BatchNorm1d(units, opts.norm ?? SECOND_NORM));
  }

  /** [P, M, in] → [P, 1, out] (last layer) or [P, M, out]. */
  forward(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const y = tf.relu(this.norm.forward(this.linear.forward(x))) as tf.Tensor3D;
      const yMax = maxOverPoints(y);
      if (this.lastLayer) return yMax;
      return tf.concat([y, tf.tile(yMax, [1, y.shape[1], 1])], 2) as tf.Tensor3D;
    });
  }
}

export interface PillarFeatureNetOptions extends PillarGrid {
  /** Raw features per point (default 5: x, y, z, intensity, Δt). */
  inChannels?: number;
  /** Width of each PFN layer (default [64, 64]: 10 → 32 ⊕ max → 64, then 64 → 64, max). */
  featChannels?: number[];
  norm?: BatchNormOptions;
  rng?: Rng;
}

/**
 * Pillar feature net (PointPillars / CenterPoint-pillar): per point the raw features, the offset to the
 * mean of its pillar's points (3) and the offset to the pillar centre in x, y (2); padded slots zeroed;
 * PFN layers; one feature vector per pillar. Keys: pfn_layers.i.linear.weight, pfn_layers.i.norm.*.
 */
export class PillarFeatureNet extends Module {
  readonly pfn_layers: ModuleList<PFNLayer>;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly grid: PillarGrid;

  constructor(opts: PillarFeatureNetOptions) {
    super();
    this.grid = { pillarSize: opts.pillarSize, range: opts.range };
    pillarGridSize(this.grid);
    this.inChannels = opts.inChannels ?? 5;
    const feats = opts.featChannels ?? [64, 64];
    if (feats.length === 0) throw new ConfigurationError('PillarFeatureNet: featChannels must not be empty');
    const rng = initRng(opts.rng);
    this.pfn_layers = this.registerModule('pfn_layers', new ModuleList<PFNLayer>());
    let c = this.inChannels + 5;
    feats.forEach((out, i) => {
      this.pfn_layers.push(new PFNLayer(c, out, i === feats.length - 1, { norm: opts.norm, rng }));
      c = out;
    });
    this.outChannels = c;
  }

  /** The 10 (= in + 5) decorated, masked point features as a tensor [P, M, in + 5]. */
  decorate(batch: PillarBatch): tf.Tensor3D {
    const { numPillars: P, maxPoints: M, numFeatures: F } = batch;
    if (F !== this.inChannels) throw new ShapeError('PillarFeatureNet', `${this.inChannels} features per point`, `${F}`);
    const [vx, vy] = this.grid.pillarSize;
    const [x0, y0] = this.grid.range;
    if (activeKernelTrace()) return this.decorateTensor(batch);
    const centres = new Float32Array(P * 2);
    const mask = new Float32Array(P * M);
    const counts = new Float32Array(P);
    for (let p = 0; p < P; p++) {
      centres[2 * p] = batch.coords[3 * p + 2]! * vx + vx / 2 + x0;
      centres[2 * p + 1] = batch.coords[3 * p + 1]! * vy + vy / 2 + y0;
      const k = batch.numPoints[p]!;
      counts[p] = Math.max(k, 1);
      for (let s = 0; s < Math.min(k, M); s++) mask[p * M + s] = 1;
    }
    return tf.tidy(() => {
      const pts = tf.tensor3d(batch.features, [P, M, F]);
      const xyz = tf.slice(pts, [0, 0, 0], [P, M, 3]);
      const mean = tf.div(tf.sum(xyz, 1, true), tf.tensor3d(counts, [P, 1, 1]));
      const fCluster = tf.sub(xyz, mean);
      const fCenter = tf.sub(tf.slice(pts, [0, 0, 0], [P, M, 2]), tf.tensor3d(centres, [P, 1, 2]));
      return tf.mul(tf.concat([pts, fCluster, fCenter], 2), tf.tensor3d(mask, [P, M, 1])) as tf.Tensor3D;
    });
  }

  /**
   * `decorate` in tensor form (under a kernel trace, e.g. an ONNX export): the pillars are the inputs
   * `pillars.features` [P, M, F], `pillars.num_points` [P] and `pillars.coords` [P, 3] (int32; batch, y, x), and the
   * centres, counts and mask are computed from them by kernels (float32 rather than the host's float64).
   */
  private decorateTensor(batch: PillarBatch): tf.Tensor3D {
    const { numPillars: P, maxPoints: M, numFeatures: F } = batch;
    const [vx, vy] = this.grid.pillarSize;
    const [x0, y0] = this.grid.range;
    return tf.tidy(() => {
      const pts = pillarInput('features', batch);
      const num = pillarInput('num_points', batch);
      const coords = pillarInput('coords', batch);
      // (x, y) index → pillar centre in metres, [P, 1, 2]
      const xy = tf.cast(tf.concat([tf.slice(coords, [0, 2], [P, 1]), tf.slice(coords, [0, 1], [P, 1])], 1), 'float32');
      const centres = tf.reshape(tf.add(tf.mul(xy, tf.tensor1d([vx, vy])), tf.tensor1d([vx / 2 + x0, vy / 2 + y0])), [P, 1, 2]);
      const numF = tf.cast(num, 'float32');
      const counts = tf.reshape(tf.maximum(numF, 1), [P, 1, 1]);
      const mask = tf.cast(tf.less(tf.reshape(tf.range(0, M, 1, 'float32'), [1, M]), tf.reshape(numF, [P, 1])), 'float32');
      const xyz = tf.slice(pts, [0, 0, 0], [P, M, 3]);
      const mean = tf.div(tf.sum(xyz, 1, true), counts);
      const fCluster = tf.sub(xyz, mean);
      const fCenter = tf.sub(tf.slice(pts, [0, 0, 0], [P, M, 2]), centres);
      return tf.mul(tf.concat([pts, fCluster, fCenter], 2), tf.reshape(mask, [P, M, 1])) as tf.Tensor3D;
    });
  }

  /** Pillars → one feature per pillar [P, outChannels]. */
  forward(batch: PillarBatch): tf.Tensor2D {
    if (batch.numPillars === 0) return tf.zeros([0, this.outChannels]);
    return tf.tidy(() => {
      let x: tf.Tensor3D = this.decorate(batch);
      for (const layer of this.pfn_layers) x = layer.forward(x);
      return tf.reshape(x, [batch.numPillars, this.outChannels]) as tf.Tensor2D;
    });
  }
}

/**
 * Scatter pillar features onto the BEV canvas [B, ny, nx, C] (row = y index, column = x index; empty
 * cells 0) with unsortedSegmentSum, whose gradient is a gather.
 */
export class PointPillarsScatter extends Module {
  constructor(readonly gridSize: [number, number]) {
    super();
  }

  forward(pillarFeatures: tf.Tensor, batch: Pick<PillarBatch, 'coords' | 'batchSize' | 'numPillars'>): tf.Tensor4D {
    const [nx, ny] = this.gridSize;
    const P = batch.numPillars;
    if (pillarFeatures.rank !== 2 || pillarFeatures.shape[0] !== P) {
      throw new ShapeError('PointPillarsScatter', `pillar features [${P}, C]`, `[${pillarFeatures.shape}]`);
    }
    const C = pillarFeatures.shape[1]!;
    if (P === 0) return tf.zeros([batch.batchSize, ny, nx, C]);
    if (activeKernelTrace()) {
      // Tensor form (kernel trace, e.g. an ONNX export): the canvas cell of each pillar computed from the input `pillars.coords`.
      return tf.tidy(() => {
        const coords = pillarInput('coords', batch);
        const ids = tf.sum(tf.mul(coords, tf.tensor1d([ny * nx, nx, 1], 'int32')), 1) as tf.Tensor1D;
        const canvas = tf.unsortedSegmentSum(pillarFeatures, ids, batch.batchSize * ny * nx);
        return tf.reshape(canvas, [batch.batchSize, ny, nx, C]) as tf.Tensor4D;
      });
    }
    const ids = new Int32Array(P);
    for (let p = 0; p < P; p++) {
      const b = batch.coords[3 * p]!, y = batch.coords[3 * p + 1]!, x = batch.coords[3 * p + 2]!;
      if (!(b >= 0 && b < batch.batchSize && y >= 0 && y < ny && x >= 0 && x < nx)) {
        throw new ShapeError('PointPillarsScatter', `coords within batch ${batch.batchSize} × grid ${ny}×${nx}`, `pillar ${p} at (${b}, ${y}, ${x})`);
      }
      ids[p] = (b * ny + y) * nx + x;
    }
    return tf.tidy(() => {
      const canvas = tf.unsortedSegmentSum(pillarFeatures, tf.tensor1d(ids, 'int32'), batch.batchSize * ny * nx);
      return tf.reshape(canvas, [batch.batchSize, ny, nx, C]) as tf.Tensor4D;
    });
  }
}
