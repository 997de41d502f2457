import * as tf from '@tensorflow/tfjs-core';
import { realPoints, sameGrid, type DataSettings, type DistillerContext, type DistillerModel, type FeatureMap, type FeatureRequirement, type FeatureSpec, type ForwardOutput, type LossOutput, type Rng } from '@bevzoo/core';
import {
  detach, lidarRays, Module, OCC3D, occClassWeights, occGrid, poolOccLabels, raySampling, renderOcc, samplePlan,
  type RaySampling, type Rays, type RenderedRays, type SamplePlan,
} from '@bevzoo/nn';
import { featureAdapter, type FeatureAdapter } from './adapters.js';
import type { OccDistillBatch } from './batch.js';
import type { RadOccConfig } from './config.js';
import { RadOccError } from './errors.js';
import { affinityLoss, depthValueLoss, klLoss, segmentPool } from './losses.js';

const NUM_CLASSES = OCC3D.numClasses;

/** Which rendering terms a config computes. */
function renders(c: RadOccConfig): boolean {
  return c.rdc.enabled || c.rsc.enabled;
}

/** What RadOcc asks of the teacher and the student for a config. */
export function radOccRequires(config: RadOccConfig, provided: { teacher: FeatureMap; student: FeatureMap }): FeatureRequirement[] {
  const reqs: FeatureRequirement[] = [];
  if (renders(config) || config.voxelKl.enabled) {
    const uses = [config.rdc.enabled && 'rendered depth consistency', config.rsc.enabled && 'rendered semantic consistency', config.voxelKl.enabled && 'the voxel-logit KL'].filter(Boolean).join(', ');
    reqs.push({ side: 'teacher', name: config.teacherLogits, kind: 'voxel', channels: NUM_CLASSES, why: `${uses} (occupancy logits [B, X, Y, Z, 18], class 17 free)` });
    reqs.push({
      side: 'student', name: config.studentLogits, kind: 'voxel', channels: NUM_CLASSES,
      ...(config.voxelKl.enabled ? { sameGridAs: { side: 'teacher' as const, name: config.teacherLogits } } : {}),
      why: config.voxelKl.enabled
        ? `the voxel-logit KL, which compares the two volumes voxel by voxel and does not resample: the grids must be equal (rendering samples each model's own grid, so RDC and RSC alone work across grids: set voxelKl.enabled false)`
        : `${uses} (occupancy logits [B, X, Y, Z, 18], class 17 free)`,
    });
  }
  if (config.feature.enabled) {
    const f = config.feature;
    const t = provided.teacher[f.teacher];
    const why = `feature imitation (student ${f.student} → teacher ${f.teacher})`;
    reqs.push({ side: 'teacher', name: f.teacher, why });
    reqs.push({
      side: 'student', name: f.student, ...(t ? { kind: t.kind } : {}),
      ...(t?.kind === 'voxel' ? { sameGridAs: { side: 'teacher' as const, name: f.teacher } } : { sameAreaAs: { side: 'teacher' as const, name: f.teacher } }),
      why: t?.kind === 'voxel' ? `${why}: voxel features are adapted channel-wise (1×1×1), so the grids must be equal` : why,
    });
  }
  return reqs;
}

/** What RadOcc reads from the batches itself: keyframe LiDAR points (rays), segment maps (RSC affinity), labels (camera mask). */
export function radOccData(config: RadOccConfig): Partial<DataSettings> {
  return {
    points: renders(config),
    sweeps: 0,
    segments: config.rsc.enabled && config.rsc.mode === 'affinity',
    occ: config.voxelKl.enabled && config.voxelKl.mask === 'camera',
  };
}

/** The rays, samples and sampling plans of one batch (plain JS, cached for the last batch). */
export interface RayCache {
  batch: OccDistillBatch;
  rays: Rays;
  sampling: RaySampling;
  teacher: SamplePlan;
  student: SamplePlan;
  /** ms spent building rays and plans. */
  ms: number;
}

/** Wall-clock ms of the last loss() call's parts (for the benchmark). */
export interface RadOccTiming {
  /** Rays and sampling plans (JS). */
  rays: number;
  /** Rendering both volumes and the RDC / RSC terms (the forward pass). */
  render: number;
  /** Voxel KL and feature imitation (forward). */
  other: number;
}

/**
 * RadOcc (Zhang et al., AAAI 2024): a frozen occupancy teacher's voxel logits teach a camera student's by rendering
 * both along the same camera rays — rendered depth consistency (RDC: KL of the per-ray termination weights),
 * rendered semantic consistency (RSC: segment affinities of the rendered semantics, or a per-ray KL) — plus the
 * per-voxel logit KL and, for the ablation, feature imitation through an adapter. Teacher tensors are detached;
 * the only parameters are the feature adapter's (`feature_adapter.*`).
 */
export class RadOcc extends Module implements DistillerModel<OccDistillBatch> {
  readonly feature_adapter: FeatureAdapter | null;
  /** Timing of the last loss() call. */
  lastTiming: RadOccTiming = { rays: 0, render: 0, other: 0 };
  private readonly teacherGrid: FeatureSpec | null;
  private readonly studentGrid: FeatureSpec | null;
  private readonly featureSpecs: { teacher: FeatureSpec; student: FeatureSpec } | null;
  private readonly rng: Rng;
  private steps = 0;
  private cache: RayCache | null = null;

  constructor(
    readonly config: RadOccConfig,
    ctx: DistillerContext,
  ) {
    super();
    this.rng = ctx.rng.fork('radocc');
    const need = (side: 'teacher' | 'student', name: string, why: string): FeatureSpec => {
      const f = ctx[side][name];
      if (!f) throw new RadOccError(`RadOcc: ${why} needs the ${side} feature "${name}"; the ${side} provides ${Object.keys(ctx[side]).join(', ') || 'nothing'}`, { side, feature: name });
      return f;
    };
    const logits = renders(config) || config.voxelKl.enabled;
    this.teacherGrid = logits ? need('teacher', config.teacherLogits, 'rendering / the voxel KL') : null;
    this.studentGrid = logits ? need('student', config.studentLogits, 'rendering / the voxel KL') : null;
    for (const [side, f, name] of [['teacher', this.teacherGrid, config.teacherLogits], ['student', this.studentGrid, config.studentLogits]] as const)
      if (f && (f.kind !== 'voxel' || f.channels !== NUM_CLASSES || f.grid.cells.length !== 3))
        throw new RadOccError(`RadOcc: the ${side} feature "${name}" must be voxel logits with ${NUM_CLASSES} classes on a 3-D grid; found ${f.kind}, ${f.channels} channels, cells [${f.grid.cells}]`, { side, feature: name });
    if (config.feature.enabled) {
      const t = need('teacher', config.feature.teacher, 'feature imitation');
      const s = need('student', config.feature.student, 'feature imitation');
      this.featureSpecs = { teacher: t, student: s };
      this.feature_adapter = this.registerModule('feature_adapter', featureAdapter(s, t, this.rng.fork('adapter')));
    } else {
      this.featureSpecs = null;
      this.feature_adapter = null;
    }
  }

  private fail(message: string, details: Record<string, unknown> = {}): never {
    throw new RadOccError(`RadOcc: ${message}`, details);
  }

  /** The batch size and camera count of a batch (from bda and intrinsics). */
  private batchShape(batch: OccDistillBatch): { B: number; N: number } {
    const B = batch.bda.length / 9;
    if (!Number.isInteger(B) || B < 1) this.fail(`batch.bda must be [B, 3, 3]; found ${batch.bda.length} values`, { field: 'bda' });
    const N = batch.intrinsics.length / (9 * B);
    if (!Number.isInteger(N) || N < 1) this.fail(`batch.intrinsics must be [${B}, N, 3, 3]; found ${batch.intrinsics.length} values`, { field: 'intrinsics' });
    return { B, N };
  }

  /** The rays and plans of the last batch rendered (null before any). */
  get lastRays(): RayCache | null {
    return this.cache;
  }

  /** Rays and sampling plans of a batch: built once per batch; a new batch draws the step's rays and jitter. */
  rayCache(batch: OccDistillBatch): RayCache {
    if (this.cache?.batch === batch) return this.cache;
    const t0 = performance.now();
    const { B, N } = this.batchShape(batch);
    if (!batch.points) this.fail('rendering (RDC / RSC) needs batch.points, the LiDAR clouds whose keyframe points pick the rays (set data.points; the runner does from RadOcc\'s data hook)', { field: 'points' });
    if (batch.points.length !== B) this.fail(`batch.points has ${batch.points.length} clouds for ${B} samples`, { field: 'points' });
    if (!batch.imageSize) this.fail('rendering needs batch.imageSize ([H, W] of the images)', { field: 'imageSize' });
    const step = this.rng.fork(`step${this.steps++}`);
    const cfg = this.config.render;
    const rays = lidarRays(realPoints(batch), batch, { imageSize: batch.imageSize, numCameras: N, depthRange: cfg.depthRange, budget: cfg.rays, rng: step.fork('rays') });
    const sampling = raySampling([this.teacherGrid!.grid, this.studentGrid!.grid], rays.count, { stepSize: cfg.stepSize, jitter: this.training && cfg.jitter ? step.fork('jitter') : null });
    const [tg, sg] = [this.teacherGrid!.grid, this.studentGrid!.grid];
    const teacher = samplePlan(rays, sampling, tg, B);
    // One plan where both volumes share a grid (the matrix's pairs do): the same rays and samples give the same plan.
    const student = sameGrid(tg, sg, 0) ? teacher : samplePlan(rays, sampling, sg, B);
    this.cache = { batch, rays, sampling, teacher, student, ms: performance.now() - t0 };
    return this.cache;
  }

  private logitsOf(out: ForwardOutput, side: 'teacher' | 'student', name: string, spec: FeatureSpec, B: number): tf.Tensor {
    const f = out.features[name] ?? this.fail(`the ${side}'s forward output has no feature "${name}" (it has ${Object.keys(out.features).join(', ') || 'none'})`, { side, feature: name });
    const [X, Y, Z] = spec.grid.cells;
    if (f.rank !== 5 || f.shape[0] !== B || f.shape[1] !== X || f.shape[2] !== Y || f.shape[3] !== Z || f.shape[4] !== NUM_CLASSES)
      this.fail(`the ${side} feature "${name}" should be [${B}, ${X}, ${Y}, ${Z}, ${NUM_CLASSES}] (its spec); found [${f.shape}]`, { side, feature: name });
    return f;
  }

  /** The segment id at every ray's pixel. */
  private raySegments(batch: OccDistillBatch, rays: Rays): Int32Array {
    const [H, W] = batch.imageSize;
    const { B, N } = this.batchShape(batch);
    const seg = batch.segments ?? this.fail(
      "rsc.mode 'affinity' needs batch.segments, [B, 6, H, W] segment ids per image pixel (set data.segments / the loader option `segments`: PNGs segments/<CHANNEL>/<image>.png; or use rsc.mode 'kl')",
      { field: 'segments' },
    );
    if (seg.length !== B * N * H * W) this.fail(`batch.segments should be [${B}, ${N}, ${H}, ${W}] (${B * N * H * W} values); found ${seg.length}`, { field: 'segments' });
    const ids = new Int32Array(rays.count);
    for (let r = 0; r < rays.count; r++) ids[r] = seg[rays.camera[r]! * H * W + rays.pixel[r]!]!;
    return ids;
  }

  /**
   * The per-voxel weights of the voxel KL ([B·X·Y·Z]), or undefined for a plain mean: the camera mask
   * (`voxelKl.mask`) times the class weight of the teacher's arg-max class (`voxelKl.classWeights`).
   */
  private voxelWeights(batch: OccDistillBatch, B: number, teacher: tf.Tensor2D): tf.Tensor1D | undefined {
    const { mask, classWeights } = this.config.voxelKl;
    const cw = occClassWeights(classWeights);
    const m = mask === 'camera' ? tf.tensor1d(this.cameraMask(batch, B)) : undefined;
    if (!cw) return m;
    const w = tf.gather(tf.tensor1d(cw), tf.argMax(teacher, 1)) as tf.Tensor1D;
    return m ? (tf.mul(w, m) as tf.Tensor1D) : w;
  }

  /** The camera mask of the batch's Occ3D labels on the student's grid, [B·X·Y·Z]. */
  private cameraMask(batch: OccDistillBatch, B: number): Float32Array {
    const occ = batch.occ ?? this.fail("voxelKl.mask 'camera' needs batch.occ (the Occ3D labels with their camera mask; set data.occ)", { field: 'occ' });
    const g = this.studentGrid!.grid;
    const grid = occGrid(g.cellSize[0]!, g.cellSize[2]!);
    const t = poolOccLabels(occ.semantics, occ.maskCamera, grid);
    if (t.batch !== B) this.fail(`batch.occ holds ${t.batch} samples; the logits ${B}`, { field: 'occ' });
    return t.mask;
  }

  loss(args: { teacher: ForwardOutput; student: ForwardOutput; batch: OccDistillBatch }): LossOutput {
    const { teacher, student, batch } = args;
    const cfg = this.config;
    const timing: RadOccTiming = { rays: 0, render: 0, other: 0 };
    const out = tf.tidy(() => {
      const parts: Record<string, tf.Scalar> = {};
      let t0 = performance.now();
      let lt: tf.Tensor | null = null, ls: tf.Tensor | null = null, B = 0;
      if (this.teacherGrid && this.studentGrid) {
        B = this.batchShape(batch).B;
        lt = detach(this.logitsOf(teacher, 'teacher', cfg.teacherLogits, this.teacherGrid, B));
        ls = this.logitsOf(student, 'student', cfg.studentLogits, this.studentGrid, B);
      }
      if (cfg.voxelKl.enabled) {
        const t2 = tf.reshape(lt!, [-1, NUM_CLASSES]) as tf.Tensor2D, s2 = tf.reshape(ls!, [-1, NUM_CLASSES]) as tf.Tensor2D;
        if (t2.shape[0] !== s2.shape[0]) this.fail(`the voxel KL needs equal grids; teacher logits [${lt!.shape}], student [${ls!.shape}]`);
        parts['distill.voxel_kl'] = tf.mul(klLoss(t2, s2, cfg.voxelKl.tau, cfg.klReduction, this.voxelWeights(batch, B, t2)), cfg.voxelKl.weight) as tf.Scalar;
      }
      if (this.feature_adapter && this.featureSpecs) {
        const f = cfg.feature;
        const ft = teacher.features[f.teacher] ?? this.fail(`the teacher's forward output has no feature "${f.teacher}"`, { side: 'teacher', feature: f.teacher });
        const fs = student.features[f.student] ?? this.fail(`the student's forward output has no feature "${f.student}"`, { side: 'student', feature: f.student });
        const phi = this.feature_adapter.forward(fs);
        if (phi.shape.join() !== ft.shape.join()) this.fail(`feature imitation: the adapted student feature is [${phi.shape}], the teacher's "${f.teacher}" [${ft.shape}]`, { feature: f.teacher });
        const d = tf.sub(phi, detach(ft));
        parts['distill.feature'] = tf.mul(tf.mean(f.loss === 'l1' ? tf.abs(d) : tf.square(d)), f.weight) as tf.Scalar;
      }
      timing.other = performance.now() - t0;
      if (renders(cfg)) {
        t0 = performance.now();
        const rc = this.rayCache(batch);
        timing.rays = rc.ms;
        const t1 = performance.now();
        if (rc.rays.count === 0) {
          if (cfg.rdc.enabled) parts['distill.rdc'] = tf.scalar(0);
          if (cfg.rsc.enabled) parts['distill.rsc'] = tf.scalar(0);
        } else {
          const rt: RenderedRays = renderOcc(lt!, rc.teacher);
          const rs: RenderedRays = renderOcc(ls!, rc.student);
          if (cfg.rdc.enabled) {
            parts['distill.rdc'] = cfg.rdc.mode === 'kl'
              ? (tf.mul(klLoss(rt.weights, rs.weights, cfg.rdc.tau, cfg.klReduction), cfg.rdc.weight) as tf.Scalar)
              : (tf.mul(depthValueLoss(rt.depth, rs.depth, cfg.rdc.depthLoss), cfg.rdc.depthWeight) as tf.Scalar);
          }
          if (cfg.rsc.enabled) {
            if (cfg.rsc.mode === 'kl') parts['distill.rsc'] = tf.mul(klLoss(rt.semantics, rs.semantics, 1, cfg.klReduction), cfg.rsc.klWeight) as tf.Scalar;
            else {
              const ids = this.raySegments(batch, rc.rays);
              const per: tf.Scalar[] = [];
              for (let b = 0, start = 0; b < B; b++) {
                let end = start;
                while (end < rc.rays.count && rc.rays.sample[end] === b) end++;
                const n = end - start;
                if (n >= 2) {
                  const pool = segmentPool(ids.subarray(start, end), rc.rays.camera.subarray(start, end), cfg.rsc.minRays);
                  const l = affinityLoss(tf.slice(rt.semantics, [start, 0], [n, -1]), tf.slice(rs.semantics, [start, 0], [n, -1]), pool, cfg.rsc.affinity);
                  if (l) per.push(l);
                }
                start = end;
              }
              parts['distill.rsc'] = per.length ? (tf.mul(tf.div(tf.addN(per), per.length), cfg.rsc.weight) as tf.Scalar) : tf.scalar(0);
            }
          }
        }
        // read back so that the wall clock covers the (lazy) kernels of the rendering terms
        for (const k of ['distill.rdc', 'distill.rsc']) parts[k]?.dataSync();
        timing.render = performance.now() - t1;
      }
      const vals = Object.values(parts);
      const total = (vals.length ? tf.addN(vals) : tf.scalar(0)) as tf.Scalar;
      return { total, parts };
    });
    this.lastTiming = timing;
    return out;
  }
}
