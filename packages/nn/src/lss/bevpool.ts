/**
 * BEVPool: sum-pool the lifted frustum features into BEV cells.
 *
 * A `BevPoolPlan` holds, for one camera geometry, each kept frustum point's flat index and its BEV cell
 * (segment id); points outside the grid (x, y or z) are dropped. Plans are cached by the geometry, so an
 * evaluation loop over fixed cameras computes them once.
 *
 * The pooling itself, out[s] = Σ_{kept k with segment s} depth[k] · context[pixel(k)], never materialises the
 * outer product of depth and context for the dropped points. Two implementations:
 * - 'host' (default): @bevzoo/engine's `BevzooBevPool` kernel, one fused loop over the kept points (forward and
 *   backward): native C++ on the engine's threads where its addon loads, else a JS loop on the wasm or cpu backend's
 *   memory (the same bits either way). 10–50× faster than the tfjs gather/segment kernels, and no [K, C]
 *   intermediate. On a backend without the kernel (no @bevzoo/engine), the tensor form.
 * - 'tensor': tf.gather of the kept points' depth and context + tf.unsortedSegmentSum into the cells — pure
 *   tfjs ops, for any backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace, traceInput } from '@bevzoo/core';
import { ConfigurationError, ShapeError } from '../errors.js';
import { frustumToEgo, type CameraGeometry, type Frustum } from './frustum.js';

/** BEVDet's grid_config: [min, max, cell size] per axis (metres, ego frame after bda). */
export interface BevPoolGrid {
  xbound: [number, number, number];
  ybound: [number, number, number];
  /** Points with z outside [min, max) are dropped; (max − min)/step z cells (1 for a BEV map). */
  zbound: [number, number, number];
}

/** Cells [X, Y, Z] of a grid. */
export function gridCells(grid: BevPoolGrid): [number, number, number] {
  return [grid.xbound, grid.ybound, grid.zbound].map((b, i) => {
    const n = Math.round((b[1] - b[0]) / b[2]);
    if (!(b[2] > 0) || !(n >= 1) || Math.abs(n * b[2] - (b[1] - b[0])) > 1e-6 * Math.max(1, Math.abs(b[1] - b[0])))
      throw new ConfigurationError(`BevPoolGrid.${'xyz'[i]}bound: expected [min, max, step] with (max − min) a positive multiple of step, found [${b.join(', ')}]`);
    return n;
  }) as [number, number, number];
}

/**
 * A weighted segment sum: out[segmentIds[k]] += depth[pointIndex[k]] · context[pixelIndex[k]] over the kept entries k,
 * in k order. LSS's BEV pooling is one (`BevPoolPlan`); trilinear sampling is another (@bevzoo/nn's `samplePlan`).
 */
export interface SegmentSumPlan {
  /** Values of the weights tensor (`depth`). */
  readonly numPoints: number;
  /** Rows of the features (`context`). */
  readonly numPixels: number;
  /** Rows of the output. */
  readonly numSegments: number;
  readonly pointIndex: Int32Array;
  readonly pixelIndex: Int32Array;
  readonly segmentIds: Int32Array;
}

export interface BevPoolPlan extends SegmentSumPlan {
  readonly batch: number;
  readonly numCameras: number;
  /** Depth bins and feature map size of the frustum. */
  readonly D: number;
  readonly fH: number;
  readonly fW: number;
  /** [X, Y, Z] cells. */
  readonly cells: [number, number, number];
  /** B·Z·Y·X. */
  readonly numSegments: number;
  /** B·N·fH·fW (rows of the context features). */
  readonly numPixels: number;
  /** B·N·fH·fW·D. */
  readonly numPoints: number;
  /** Kept points: flat index (((b·N + n)·fH + y)·fW + x)·D + d. */
  readonly pointIndex: Int32Array;
  /** Kept points: pixel row ((b·N + n)·fH + y)·fW + x (= pointIndex / D). */
  readonly pixelIndex: Int32Array;
  /** Kept points: ((b·Z + z)·Y + y)·X + x, with y the row and x the column of the BEV map. */
  readonly segmentIds: Int32Array;
}

/** The BEV cell of every frustum point for one camera geometry (points outside the grid are dropped). */
export function buildBevPoolPlan(frustum: Frustum, grid: BevPoolGrid, geom: CameraGeometry, numCameras = 6): BevPoolPlan {
  const [X, Y, Z] = gridCells(grid);
  const ego = frustumToEgo(frustum, geom, numCameras);
  const { fH, fW, D } = frustum;
  const perSample = numCameras * fH * fW * D;
  const numPoints = ego.length / 3;
  const batch = numPoints / perSample;
  const points = new Int32Array(numPoints);
  const segments = new Int32Array(numPoints);
  let kept = 0;
  const [x0, , dx] = grid.xbound, [y0, , dy] = grid.ybound, [z0, , dz] = grid.zbound;
  for (let b = 0, i = 0; b < batch; b++) {
    for (let j = 0; j < perSample; j++, i++) {
      const ix = Math.floor((ego[i * 3]! - x0) / dx);
      if (!(ix >= 0 && ix < X)) continue;
      const iy = Math.floor((ego[i * 3 + 1]! - y0) / dy);
      if (!(iy >= 0 && iy < Y)) continue;
      const iz = Math.floor((ego[i * 3 + 2]! - z0) / dz);
      if (!(iz >= 0 && iz < Z)) continue;
      points[kept] = i;
      segments[kept++] = ((b * Z + iz) * Y + iy) * X + ix;
    }
  }
  const pi = points.slice(0, kept);
  const pix = new Int32Array(kept);
  for (let j = 0; j < kept; j++) pix[j] = Math.floor(pi[j]! / D);
  return {
    batch, numCameras, D, fH, fW, cells: [X, Y, Z], numSegments: batch * X * Y * Z, numPixels: batch * numCameras * fH * fW, numPoints,
    pointIndex: pi, pixelIndex: pix, segmentIds: segments.slice(0, kept),
  };
}

/** FNV-1a over the bytes of numbers (as float32 bit patterns), continuing from `h`. */
function fnv(h: number, values: ArrayLike<number>): number {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    h = Math.imul(h ^ u[0]!, 16777619) >>> 0;
  }
  return h;
}

/**
 * Plans by geometry: the key is a hash of the frustum and grid config, the camera count and the geometry
 * arrays; a hit is confirmed by comparing the stored arrays exactly, so a hash collision cannot return a
 * wrong plan. Least recently used plans are evicted beyond `capacity`.
 */
export class BevPoolPlanCache {
  private readonly entries = new Map<number, { data: Float64Array; plan: BevPoolPlan }[]>();
  private order: { hash: number; data: Float64Array }[] = [];
  hits = 0;
  misses = 0;

  constructor(readonly capacity = 8) {}

  get size(): number {
    return this.order.length;
  }

  get(frustum: Frustum, grid: BevPoolGrid, geom: CameraGeometry, numCameras = 6): BevPoolPlan {
    const c = frustum.config;
    const header = [c.imageSize[0], c.imageSize[1], c.featureStride, ...c.depthBins, c.pixelMode === 'center' ? 0 : 1, ...grid.xbound, ...grid.ybound, ...grid.zbound, numCameras];
    const parts: ArrayLike<number>[] = [header, geom.intrinsics, geom.sensor2ego, geom.postAug ?? [], geom.bda ?? [], [geom.postAug ? 1 : 0, geom.bda ? 1 : 0]];
    let hash = 2166136261;
    for (const p of parts) hash = fnv(hash, p);
    const data = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) for (let i = 0; i < p.length; i++) data[o++] = p[i]!;
    const bucket = this.entries.get(hash) ?? [];
    const hit = bucket.find((e) => e.data.length === data.length && e.data.every((v, i) => v === data[i]));
    if (hit) {
      this.hits++;
      const at = this.order.findIndex((e) => e.data === hit.data);
      this.order.push(...this.order.splice(at, 1)); // most recently used last
      return hit.plan;
    }
    this.misses++;
    const plan = buildBevPoolPlan(frustum, grid, geom, numCameras);
    bucket.push({ data, plan });
    this.entries.set(hash, bucket);
    this.order.push({ hash, data });
    while (this.order.length > this.capacity) {
      const old = this.order.shift()!;
      const b = this.entries.get(old.hash)!.filter((e) => e.data !== old.data);
      if (b.length) this.entries.set(old.hash, b);
      else this.entries.delete(old.hash);
    }
    return plan;
  }

  clear(): void {
    this.entries.clear();
    this.order = [];
  }
}

export type BevPoolImpl = 'host' | 'tensor';

/** A plan's index arrays as int32 tensors [K] (K kept points): what the tensor form gathers and scatters with. */
export interface BevPoolIndexTensors {
  pointIndex: tf.Tensor1D;
  pixelIndex: tf.Tensor1D;
  segmentIds: tf.Tensor1D;
}

/**
 * The index tensors of a plan, reported to the active kernel trace (core's `traceInput`) as the batch inputs
 * `<prefix>bevpool.point_index`, `.pixel_index` and `.segment_ids`, whose length K (the kept frustum points) varies
 * with the camera geometry (augmentation): an exporter makes them graph inputs with a symbolic length, so that one
 * exported file takes any geometry, its indices computed on the host from the batch (`buildBevPoolPlan`). The caller
 * disposes them (or makes them inside a tidy).
 */
export function bevPoolIndexInputs(plan: BevPoolPlan, prefix = ''): BevPoolIndexTensors {
  const input = (name: string, a: Int32Array) => traceInput(`${prefix}bevpool.${name}`, () => tf.tensor1d(a, 'int32'), { dynamicAxes: [0] });
  return { pointIndex: input('point_index', plan.pointIndex), pixelIndex: input('pixel_index', plan.pixelIndex), segmentIds: input('segment_ids', plan.segmentIds) };
}

/**
 * Sum-pool lifted features into BEV cells: out[s, c] = Σ_{kept k, segment(k) = s} depth[point(k)] · context[pixel(k), c].
 * depth: numPixels·D values (e.g. [B·N, fH, fW, D] softmax probabilities); context: [B·N, fH, fW, C] or
 * [numPixels, C]. Returns [numSegments, C]. Differentiable in depth and context. `indices` (the plan's arrays as
 * tensors, e.g. `bevPoolIndexInputs` under a trace) selects the tensor form with them.
 */
export function bevPool(depth: tf.Tensor, context: tf.Tensor, plan: SegmentSumPlan & { D?: number }, impl: BevPoolImpl = 'host', indices?: BevPoolIndexTensors): tf.Tensor2D {
  const C = context.shape[context.rank - 1]!;
  if (depth.size !== plan.numPoints) throw new ShapeError('bevPool(depth)', `${plan.numPoints} values${plan.D ? ` (B·N·fH·fW·D = ${plan.numPixels}·${plan.D})` : ''}`, `shape [${depth.shape}]`);
  if (context.size !== plan.numPixels * C) throw new ShapeError('bevPool(context)', `${plan.numPixels} rows of ${C} channels`, `shape [${context.shape}]`);
  // A kernel-level recording (core's KernelTrace) sees only kernels: it gets the tensor form, the same sums.
  if (indices) {
    if (indices.pointIndex.size !== plan.pointIndex.length || indices.pixelIndex.size !== plan.pointIndex.length || indices.segmentIds.size !== plan.pointIndex.length)
      throw new ShapeError('bevPool(indices)', `${plan.pointIndex.length} kept points (the plan's)`, `[${indices.pointIndex.shape}], [${indices.pixelIndex.shape}], [${indices.segmentIds.shape}]`);
    return bevPoolTensor(depth, context, plan, C, indices);
  }
  if (impl === 'host' && !activeKernelTrace() && tf.getKernel(BEV_POOL_KERNEL, tf.getBackend()) != null) return bevPoolKernel(depth, context, plan);
  if (plan.pointIndex.length === 0) return tf.zeros([plan.numSegments, C]);
  return bevPoolTensor(depth, context, plan, C);
}

/** @bevzoo/engine's fused kernel (its fused.ts: one loop over the kept points, native where the addon loads). */
const BEV_POOL_KERNEL = 'BevzooBevPool';

/** A plan's index arrays as int32 tensors (the caller disposes them, or makes them in a tidy). */
function planIndexTensors(plan: SegmentSumPlan): BevPoolIndexTensors {
  return { pointIndex: tf.tensor1d(plan.pointIndex, 'int32'), pixelIndex: tf.tensor1d(plan.pixelIndex, 'int32'), segmentIds: tf.tensor1d(plan.segmentIds, 'int32') };
}

function bevPoolKernel(depth: tf.Tensor, context: tf.Tensor, plan: SegmentSumPlan): tf.Tensor2D {
  return tf.tidy(() => tf.engine().runKernel(BEV_POOL_KERNEL, { depth, context, ...planIndexTensors(plan) }, { numSegments: plan.numSegments }) as tf.Tensor2D);
}

function bevPoolTensor(depth: tf.Tensor, context: tf.Tensor, plan: SegmentSumPlan, C: number, indices?: BevPoolIndexTensors): tf.Tensor2D {
  return tf.tidy(() => {
    const ix = indices ?? planIndexTensors(plan);
    const dv = tf.gather(tf.reshape(depth, [plan.numPoints]), ix.pointIndex); // [K]
    const cv = tf.gather(tf.reshape(context, [plan.numPixels, C]), ix.pixelIndex); // [K, C]
    return tf.unsortedSegmentSum(tf.mul(cv, tf.expandDims(dv, 1)), ix.segmentIds, plan.numSegments) as tf.Tensor2D;
  });
}
