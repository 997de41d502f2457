/**
 * Differentiable volume rendering of occupancy logits along camera rays (RadOcc; the same renderer serves any
 * occupancy model whose logits are [B, X, Y, Z, K] in Occ3D's [x, y, z] order with the last class "free").
 *
 * - Rays (`lidarRays`, plain JS, no gradient): one per image pixel hit by a projected keyframe LiDAR point (Δt = 0)
 *   whose camera depth lies in [near, far); the nearest point of a pixel wins. The pixel is one of the batch's
 *   (augmented) image, pixel centres at integers (as `postAug` and the LSS frustum). The ray goes through the centre
 *   of that pixel: the image augmentation is undone (u₀, v₀ = postAug⁻¹·[u, v, 1]), then
 *   origin = bda·t_cam and direction = bda·R_cam→ego·K⁻¹·[u₀, v₀, 1], unnormalised, so that the ray parameter t is the
 *   depth along the camera axis. The logits live in the bda-augmented ego frame, hence the bda.
 * - Samples (`raySampling`): t_k = δ·(k + ξ_r), k = 0..N−1, δ = stepSize × the voxel edge (the cube root of the
 *   voxel volume, as the reference's `voxel_size`; 0.5 × 0.4 m = 0.2 m for Occ3D), N covering the grid's half
 *   diagonal plus one voxel (Occ3D: 287), ξ_r ~ U[0, 1) per ray when jittered, else 0.
 * - Per model grid (`samplePlan`, JS): the 8 trilinear corners of every sample between voxel centres (clamped to the
 *   border voxels in the outer half voxel); samples outside the grid's range are marked outside (α = 0, s = 0).
 * - `renderOcc` (tfjs, differentiable in the logits): σ = softplus(−logit_free), s = the other K − 1 logits, sampled
 *   trilinearly; α_k = 1 − exp(−σ_k·δ); T_k = Π_{j<k}(1 − α_j) = exp(−Σ_{j<k} σ_j·δ); w_k = α_k·T_k (not
 *   renormalised); depth D = Σ w_k·t_k, semantics S = Σ w_k·s_k.
 *
 * `renderOcc` is two steps: the trilinear gather of the logits at every sample (`sampleVolume`: a weighted segment
 * sum over the corners, @bevzoo/engine's `BevzooBevPool` kernel, native where the addon loads; its gradient
 * scatter-adds into the voxels) and one custom op with JS loops for the compositing and its adjoint. As tfjs ops the
 * [R·N, K] intermediates dominated a training step, and tfjs's gather gradient (UnsortedSegmentSum) loops over the
 * volume's rows on the cpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GridSpec, Rng } from '@bevzoo/core';
import { ShapeError } from '../errors.js';
import { cameraTransforms, egoToImage, type CameraGeometry } from '../lss/frustum.js';
import { bevPool, type SegmentSumPlan } from '../lss/bevpool.js';

/** Values per point in a batch's clouds (x, y, z, intensity, Δt) — the loader's layout. */
const POINT_STRIDE = 5;

/** Camera rays of a batch, in the bda-augmented ego frame. */
export interface Rays {
  count: number;
  /** [R, 3] camera centres. */
  origin: Float32Array;
  /** [R, 3] directions with unit camera-z component (t = depth along the camera axis). */
  direction: Float32Array;
  /** [R] sample index b of each ray. */
  sample: Int32Array;
  /** [R] camera index k = b·numCameras + n. */
  camera: Int32Array;
  /** [R] pixel v·W + u of the (augmented) image. */
  pixel: Int32Array;
  /** [R] depth of the LiDAR point that picked the pixel (camera z, metres). */
  depth: Float32Array;
  /** Candidate pixels before the ray budget. */
  candidates: number;
}

export interface LidarRayOptions {
  /** [H, W] of the batch images (the pixels rays go through). */
  imageSize: readonly [number, number];
  numCameras?: number;
  /** Camera depths [near, far) of the points kept (default [1, 45]). */
  depthRange?: readonly [number, number];
  /** At most this many rays (0 = every candidate pixel), chosen uniformly with `rng`. */
  budget?: number;
  /** The generator of the budget's subsampling (required when the budget cuts). */
  rng?: Rng;
}

/**
 * Rays through the pixels hit by the keyframe LiDAR points (`points[b]`: x, y, z, intensity, Δt in the ego frame after
 * bda: `realPoints(batch)`, the loader's `Batch.points` without MVP's virtual points; only Δt = 0 points count). Ordered by sample, camera, pixel; a budget keeps a
 * uniformly drawn subset in that order.
 */
export function lidarRays(points: readonly Float32Array[], geom: CameraGeometry, opts: LidarRayOptions): Rays {
  const N = opts.numCameras ?? 6;
  const [H, W] = opts.imageSize;
  const [near, far] = opts.depthRange ?? [1, 45];
  const { project, batch } = egoToImage(geom, N);
  if (points.length !== batch) throw new ShapeError('lidarRays: points', `one cloud per sample (${batch})`, `${points.length}`);
  const { toEgo, postAugInv } = cameraTransforms(geom, N);
  const HW = H * W;
  const nearest = new Float64Array(HW);
  const uvd = new Float64Array(3);
  const cand: number[] = []; // k·HW + pixel
  const candDepth: number[] = [];
  for (let b = 0; b < batch; b++) {
    const pts = points[b]!;
    for (let n = 0; n < N; n++) {
      const k = b * N + n;
      nearest.fill(Infinity);
      for (let i = 0; i + POINT_STRIDE <= pts.length; i += POINT_STRIDE) {
        if (pts[i + 4] !== 0) continue; // keyframe points only
        if (!project(k, pts[i]!, pts[i + 1]!, pts[i + 2]!, uvd)) continue;
        const d = uvd[2]!;
        if (!(d >= near && d < far)) continue;
        const u = Math.floor(uvd[0]! + 0.5), v = Math.floor(uvd[1]! + 0.5);
        if (u < 0 || u >= W || v < 0 || v >= H) continue;
        const p = v * W + u;
        if (d < nearest[p]!) nearest[p] = d;
      }
      for (let p = 0; p < HW; p++) {
        if (nearest[p] !== Infinity) {
          cand.push(k * HW + p);
          candDepth.push(nearest[p]!);
        }
      }
    }
  }
  let pick: number[] = cand.map((_, i) => i);
  const budget = opts.budget ?? 0;
  if (budget > 0 && cand.length > budget) {
    if (!opts.rng) throw new ShapeError('lidarRays: rng', `a generator to draw ${budget} of ${cand.length} rays`, 'none');
    for (let i = 0; i < budget; i++) {
      const j = i + opts.rng.int(pick.length - i);
      const t = pick[i]!;
      pick[i] = pick[j]!;
      pick[j] = t;
    }
    pick = pick.slice(0, budget).sort((a, b) => a - b);
  }
  const R = pick.length;
  const rays: Rays = {
    count: R, origin: new Float32Array(R * 3), direction: new Float32Array(R * 3), sample: new Int32Array(R), camera: new Int32Array(R),
    pixel: new Int32Array(R), depth: new Float32Array(R), candidates: cand.length,
  };
  pick.forEach((c, r) => {
    const code = cand[c]!;
    const k = Math.floor(code / HW), p = code - k * HW;
    const u = p % W, v = (p - u) / W;
    const Pi = postAugInv.subarray(k * 9, k * 9 + 9);
    const w = Pi[6]! * u + Pi[7]! * v + Pi[8]!;
    const u0 = (Pi[0]! * u + Pi[1]! * v + Pi[2]!) / w, v0 = (Pi[3]! * u + Pi[4]! * v + Pi[5]!) / w;
    const T = toEgo.subarray(k * 12, k * 12 + 12);
    for (let i = 0; i < 3; i++) {
      rays.direction[r * 3 + i] = T[i * 4]! * u0 + T[i * 4 + 1]! * v0 + T[i * 4 + 2]!;
      rays.origin[r * 3 + i] = T[i * 4 + 3]!;
    }
    rays.sample[r] = Math.floor(k / N);
    rays.camera[r] = k;
    rays.pixel[r] = p;
    rays.depth[r] = candDepth[c]!;
  });
  return rays;
}

/** The sample positions along every ray: t_{r,k} = delta·(k + offsets[r]). */
export interface RaySampling {
  /** δ, metres. */
  delta: number;
  /** N samples per ray. */
  count: number;
  /** [R] ξ_r ∈ [0, 1) (zeros without jitter). */
  offsets: Float32Array;
}

/** The voxel edge of a grid as the reference defines it: the cube root of a voxel's volume. */
export function voxelEdge(grid: GridSpec): number {
  const [cx, cy, cz] = grid.cellSize as [number, number, number];
  return Math.cbrt(cx * cy * cz);
}

/**
 * Samples shared by every grid rendered along the same rays: δ = stepSize × the smallest voxel edge among `grids`,
 * N = ⌊‖half extent + one voxel‖ / δ⌋ + 1 for the largest grid (Occ3D at δ = 0.2 m: 287), ξ_r drawn from `jitter`
 * (U[0, 1) per ray) or 0.
 */
export function raySampling(grids: readonly GridSpec[], rays: number, opts: { stepSize?: number; jitter?: Rng | null } = {}): RaySampling {
  if (!grids.length) throw new ShapeError('raySampling: grids', 'at least one voxel grid', 'none');
  const stepSize = opts.stepSize ?? 0.5;
  const delta = stepSize * Math.min(...grids.map(voxelEdge));
  let count = 0;
  for (const g of grids) {
    if (g.cells.length !== 3 || g.range.length !== 6) throw new ShapeError('raySampling: grid', 'a voxel grid (3 cell counts, range of 6)', `cells [${g.cells}], range [${g.range}]`);
    const half = [0, 1, 2].map((i) => (g.range[i + 3]! - g.range[i]!) / 2 + g.cellSize[i]!);
    count = Math.max(count, Math.floor(Math.hypot(...half) / delta + 1e-9) + 1);
  }
  const offsets = new Float32Array(rays);
  if (opts.jitter) for (let r = 0; r < rays; r++) offsets[r] = opts.jitter.next();
  return { delta, count, offsets };
}

/** Where the samples of a set of rays fall in one model's voxel grid: trilinear corners and weights. */
export interface SamplePlan {
  rays: number;
  samples: number;
  delta: number;
  /** Samples of the batch volume (B·X·Y·Z voxels) the corners index. */
  voxels: number;
  cells: [number, number, number];
  batch: number;
  /** [R·N] t of every sample. */
  t: Float32Array;
  /** [R·N] 1 where the sample lies inside the grid's range. */
  inside: Float32Array;
  /** [R·N·8] trilinear weights of each sample's corners (0 outside the grid). */
  weights: Float32Array;
  /**
   * The gather as a weighted segment sum (`bevPool`): per corner with a non-zero weight, in sample and corner order,
   * its index into `weights` (pointIndex), its flat voxel b·X·Y·Z + (x·Y + y)·Z + z (pixelIndex) and its sample
   * (segmentIds).
   */
  gather: SegmentSumPlan;
}

/** The trilinear sampling plan of `rays` at `sampling` in `grid` (cells [X, Y, Z], range [xmin, ymin, zmin, xmax, ymax, zmax]) for a batch of `batch` volumes. */
export function samplePlan(rays: Rays, sampling: RaySampling, grid: GridSpec, batch: number): SamplePlan {
  const [X, Y, Z] = grid.cells as [number, number, number];
  const lo = grid.range.slice(0, 3), hi = grid.range.slice(3, 6);
  const size = grid.cellSize;
  const R = rays.count, N = sampling.count, V = X * Y * Z;
  if (sampling.offsets.length !== R) throw new ShapeError('samplePlan: sampling.offsets', `one per ray (${R})`, `${sampling.offsets.length}`);
  const t = new Float32Array(R * N), inside = new Float32Array(R * N);
  const weights = new Float32Array(R * N * 8);
  const pointIndex = new Int32Array(R * N * 8), pixelIndex = new Int32Array(R * N * 8), segmentIds = new Int32Array(R * N * 8);
  let kept = 0;
  const n = [X, Y, Z];
  const f = [0, 0, 0], i0 = [0, 0, 0], fr = [0, 0, 0], p = [0, 0, 0];
  for (let r = 0; r < R; r++) {
    const b = rays.sample[r]!;
    if (b < 0 || b >= batch) throw new ShapeError('samplePlan: rays.sample', `sample indices in [0, ${batch})`, `${b}`);
    const ox = rays.origin[r * 3]!, oy = rays.origin[r * 3 + 1]!, oz = rays.origin[r * 3 + 2]!;
    const dx = rays.direction[r * 3]!, dy = rays.direction[r * 3 + 1]!, dz = rays.direction[r * 3 + 2]!;
    const xi = sampling.offsets[r]!;
    for (let k = 0; k < N; k++) {
      const s = r * N + k;
      const tk = sampling.delta * (k + xi);
      t[s] = tk;
      p[0] = ox + dx * tk;
      p[1] = oy + dy * tk;
      p[2] = oz + dz * tk;
      if (!(p[0] >= lo[0]! && p[0] < hi[0]! && p[1] >= lo[1]! && p[1] < hi[1]! && p[2] >= lo[2]! && p[2] < hi[2]!)) continue;
      inside[s] = 1;
      for (let a = 0; a < 3; a++) {
        f[a] = Math.min(Math.max((p[a]! - lo[a]!) / size[a]! - 0.5, 0), n[a]! - 1);
        i0[a] = Math.min(Math.floor(f[a]!), Math.max(n[a]! - 2, 0));
        fr[a] = f[a]! - i0[a]!;
      }
      const base = b * V;
      let c = s * 8;
      for (let cx = 0; cx < 2; cx++) {
        const wx = cx ? fr[0]! : 1 - fr[0]!;
        const ix = Math.min(i0[0]! + cx, X - 1);
        for (let cy = 0; cy < 2; cy++) {
          const wy = cy ? fr[1]! : 1 - fr[1]!;
          const iy = Math.min(i0[1]! + cy, Y - 1);
          for (let cz = 0; cz < 2; cz++) {
            const wz = cz ? fr[2]! : 1 - fr[2]!;
            const iz = Math.min(i0[2]! + cz, Z - 1);
            weights[c] = wx * wy * wz;
            if (weights[c] !== 0) {
              pointIndex[kept] = c;
              pixelIndex[kept] = base + (ix * Y + iy) * Z + iz;
              segmentIds[kept++] = s;
            }
            c++;
          }
        }
      }
    }
  }
  const gather: SegmentSumPlan = {
    numPoints: R * N * 8, numPixels: batch * V, numSegments: R * N,
    pointIndex: pointIndex.slice(0, kept), pixelIndex: pixelIndex.slice(0, kept), segmentIds: segmentIds.slice(0, kept),
  };
  return { rays: R, samples: N, delta: sampling.delta, voxels: batch * V, cells: [X, Y, Z], batch, t, inside, weights, gather };
}

/**
 * Trilinear samples of a flattened volume `volume` [M, C] (M = the plan's voxels) at the plan's R·N points → [R·N, C]
 * (zeros outside the grid). A weighted segment sum over the corners (@bevzoo/engine's `BevzooBevPool` kernel through
 * `bevPool`, native where the addon loads): each sample sums its corners in order, each product in float64 and each
 * sum rounded to float32. Differentiable in the volume: the gradient scatter-adds back with the same weights, in
 * sample and corner order.
 */
export function sampleVolume(volume: tf.Tensor, plan: SamplePlan): tf.Tensor2D {
  if (volume.rank !== 2 || volume.shape[0] !== plan.voxels)
    throw new ShapeError('sampleVolume: volume', `[${plan.voxels}, C] (the plan's B·X·Y·Z voxels)`, `[${volume.shape}]`);
  const C = volume.shape[1]!;
  if (plan.gather.pointIndex.length === 0) return tf.zeros([plan.rays * plan.samples, C]);
  return tf.tidy(() => bevPool(tf.tensor1d(plan.weights), volume, plan.gather));
}

/** What `renderOcc` returns for R rays of N samples. */
export interface RenderedRays {
  /** [R, N] w_k = α_k·T_k. */
  weights: tf.Tensor2D;
  /** [R] D = Σ w_k·t_k. */
  depth: tf.Tensor1D;
  /** [R, K − 1] S = Σ w_k·s_k. */
  semantics: tf.Tensor2D;
}

/**
 * Volume rendering of occupancy logits [B, X, Y, Z, K] (last class free) along the plan's rays: σ = softplus(−logit_free),
 * α = 1 − exp(−σ·δ) (0 outside the grid), T_k = exp(−Σ_{j<k} σ_j·δ), w = α·T; depth Σ w·t, semantics Σ w·s.
 *
 * One fused custom op (JS loops over the samples, forward and backward), differentiable in the logits: with
 * g̃_k = ∂L/∂w_k + ∂L/∂D·t_k + Σ_c ∂L/∂S_c·s_{k,c}, the optical thickness τ_k = σ_k·δ gets
 * ∂L/∂τ_j = g̃_j·e^(−τ_j)·T_j − Σ_{k>j} g̃_k·w_k (a suffix sum), the free logit −∂L/∂τ·δ·sigmoid(−f), the semantic
 * logits ∂L/∂S_c·w_k, scattered back to the voxels with the trilinear weights.
 */
export function renderOcc(logits: tf.Tensor, plan: SamplePlan): RenderedRays {
  const [X, Y, Z] = plan.cells;
  if (logits.rank !== 5 || logits.shape[0] !== plan.batch || logits.shape[1] !== X || logits.shape[2] !== Y || logits.shape[3] !== Z || logits.shape[4]! < 2)
    throw new ShapeError('renderOcc: logits', `[${plan.batch}, ${X}, ${Y}, ${Z}, K ≥ 2] (the plan's batch and grid)`, `[${logits.shape}]`);
  const K = logits.shape[4]!, C = K - 1, R = plan.rays, N = plan.samples, P = R * N;
  const { inside, t, delta } = plan;
  const W = N + 1 + C; // packed output row: weights (N), depth (1), semantics (C)
  // Compositing of the sampled logits [P, K] (the gather and its gradient are `sampleVolume`'s).
  const composite = tf.customGrad((x) => {
    const sampled = (x as tf.Tensor).dataSync() as Float32Array;
    const w = new Float32Array(P), trans = new Float32Array(P), tau = new Float32Array(P);
    const out = new Float32Array(R * W);
    for (let r = 0; r < R; r++) {
      let acc = 0, depth = 0;
      const o = r * W;
      for (let k = 0; k < N; k++) {
        const s = r * N + k;
        if (!inside[s]) continue;
        const so = s * K;
        const f = sampled[so + C]!;
        const sigma = f < 0 ? -f + Math.log1p(Math.exp(f)) : Math.log1p(Math.exp(-f)); // softplus(−f)
        const tk = sigma * delta, T = Math.exp(-acc), wk = -Math.expm1(-tk) * T;
        tau[s] = tk;
        trans[s] = T;
        w[s] = wk;
        acc += tk;
        out[o + k] = wk;
        depth += wk * t[s]!;
        for (let ch = 0; ch < C; ch++) out[o + N + 1 + ch] += wk * sampled[so + ch]!;
      }
      out[o + N] = depth;
    }
    return {
      value: tf.tensor2d(out, [R, W]),
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync() as Float32Array;
        const dSampled = new Float32Array(P * K);
        for (let r = 0; r < R; r++) {
          const o = r * W, gD = g[o + N]!;
          let suffix = 0;
          for (let k = N - 1; k >= 0; k--) {
            const s = r * N + k;
            if (!inside[s]) continue;
            const so = s * K, wk = w[s]!;
            let gt = g[o + k]! + gD * t[s]!;
            for (let ch = 0; ch < C; ch++) gt += g[o + N + 1 + ch]! * sampled[so + ch]!;
            const dTau = gt * Math.exp(-tau[s]!) * trans[s]! - suffix;
            suffix += gt * wk;
            const f = sampled[so + C]!;
            dSampled[so + C] = -dTau * delta / (1 + Math.exp(f)); // ∂τ/∂f = −δ·sigmoid(−f)
            for (let ch = 0; ch < C; ch++) dSampled[so + ch] = g[o + N + 1 + ch]! * wk;
          }
        }
        return tf.tensor2d(dSampled, [P, K]);
      },
    };
  });
  return tf.tidy(() => {
    const packed = composite(sampleVolume(tf.reshape(logits, [plan.voxels, K]), plan)) as tf.Tensor2D;
    return {
      weights: tf.slice(packed, [0, 0], [R, N]),
      depth: tf.reshape(tf.slice(packed, [0, N], [R, 1]), [R]) as tf.Tensor1D,
      semantics: tf.slice(packed, [0, N + 1], [R, C]),
    };
  });
}
