import * as tf from '@tensorflow/tfjs-core';
import type { DistillerContext, DistillerModel, DistillerSetupReport, FeatureMap, FeatureRequirement, FeatureSpec, ForwardOutput, LossOutput, TaskModel } from '@bevzoo/core';
import { Conv2d, detach, Module, ModuleList } from '@bevzoo/nn';
import { PreHeadAdapter, StageAdapter, type Adapter } from './adapters.js';
import { channelAttention, spatialAttention } from './attention.js';
import type { DetBatch } from './batch.js';
import type { DistillBevConfig } from './config.js';
import { DistillBevError } from './errors.js';
import { inheritHead } from './inherit.js';
import { falsePositives, foreground, gtHeatmapMax, layerGrid, regionWeights, resampleMax, uniformWeights, type Foreground, type LayerGrid } from './regions.js';

/** A distilled layer after defaults are applied. */
export interface ResolvedLayer {
  student: string;
  teacher: string;
  /** The FP term is computed here (config.fp, config.regions, γ > 0 and the layer's own switch). */
  fp: boolean;
  adapter: '1x1' | 'upsample3';
}

/** The teacher feature holding the class heatmap logits (read for the FP regions). */
export const TEACHER_HEATMAP = 'heatmap';

/**
 * The layers a config distils given what the two sides provide. 'auto': pre_head ↔ pre_head (FP), then
 * stage1 ↔ stage1 and stage2 ↔ stage2 when both sides provide them (the reference pairing; stage0 is left out,
 * distilling it hurt in the paper's ablation).
 */
export function resolveLayers(config: DistillBevConfig, provided: { teacher: FeatureMap; student: FeatureMap }): ResolvedLayer[] {
  const fpOn = config.fp && config.regions && config.gamma > 0;
  const list =
    config.layers === 'auto'
      ? [
          { student: 'pre_head', teacher: 'pre_head', fp: true },
          ...['stage1', 'stage2'].filter((s) => provided.student[s] && provided.teacher[s]).map((s) => ({ student: s, teacher: s, fp: false })),
        ]
      : config.layers;
  return list.map((l) => ({
    student: l.student,
    teacher: l.teacher,
    fp: fpOn && (l.fp ?? l.teacher === 'pre_head'),
    adapter: 'adapter' in l && l.adapter ? l.adapter : l.teacher === 'pre_head' ? '1x1' : 'upsample3',
  }));
}

/** What DistillBEV asks of the teacher and the student for a config. */
export function distillBevRequires(config: DistillBevConfig, provided: { teacher: FeatureMap; student: FeatureMap }): FeatureRequirement[] {
  const layers = resolveLayers(config, provided);
  const reqs: FeatureRequirement[] = [];
  for (const [i, l] of layers.entries()) {
    const why = `distilled layer ${i} (student ${l.student} → teacher ${l.teacher})`;
    reqs.push({ side: 'teacher', name: l.teacher, kind: 'bev', why });
    reqs.push({ side: 'student', name: l.student, kind: 'bev', sameAreaAs: { side: 'teacher', name: l.teacher }, why });
  }
  const fpLayer = layers.find((l) => l.fp);
  if (fpLayer)
    reqs.push({ side: 'teacher', name: TEACHER_HEATMAP, kind: 'heatmap', sameAreaAs: { side: 'teacher', name: fpLayer.teacher }, why: 'the false-positive regions of DistillBEV (fp: false turns them off)' });
  return reqs;
}

interface LayerMasks {
  fg: Foreground[];
  /** Max-class GT Gaussian heatmap per sample (FP layers only). */
  gt: Float32Array[] | null;
}

/**
 * DistillBEV: per distilled layer, L_feat = (1/B)·[α Σ M_fg·S·A·D + β Σ M_tn·S·A·D + γ Σ M_fp·S·A·A_c·D] with
 * D = (φ(F_S) − F_T)², plus attention imitation L_att = w_att·(1/B)·Σ |mean_c F_T − conv3×3(mean_c φ(F_S))|.
 * Adapters φ and the 3×3 convs are this module's parameters, trained with the student.
 */
export class DistillBev extends Module implements DistillerModel<DetBatch> {
  readonly layers: ResolvedLayer[];
  readonly channel_wise_adaptations: ModuleList<Adapter>;
  readonly spatial_wise_adaptations: ModuleList<Conv2d> | null;
  /** What the last setup() copied into the student's head (null before, or with inheritHead off). */
  inheritReport: DistillerSetupReport | null = null;
  private readonly teacherSpecs: FeatureSpec[];
  private readonly studentSpecs: FeatureSpec[];
  private readonly grids: LayerGrid[];
  private cache: { batch: DetBatch; masks: Map<number, LayerMasks> } | null = null;

  constructor(
    readonly config: DistillBevConfig,
    ctx: DistillerContext,
  ) {
    super();
    this.layers = resolveLayers(config, ctx);
    const rng = ctx.rng.fork('distillbev');
    this.teacherSpecs = [];
    this.studentSpecs = [];
    const adapters: Adapter[] = [];
    for (const [i, l] of this.layers.entries()) {
      const t = ctx.teacher[l.teacher], s = ctx.student[l.student];
      if (!t || !s)
        throw new DistillBevError(
          `DistillBEV layer ${i}: ${!t ? `the teacher provides no feature "${l.teacher}" (it has ${Object.keys(ctx.teacher).join(', ') || 'none'})` : `the student provides no feature "${l.student}" (it has ${Object.keys(ctx.student).join(', ') || 'none'})`}`,
          { layer: i, teacher: l.teacher, student: l.student },
        );
      this.teacherSpecs.push(t);
      this.studentSpecs.push(s);
      const size: [number, number] = [t.grid.cells[1]!, t.grid.cells[0]!];
      const r = rng.fork(`adapter${i}`);
      adapters.push(l.adapter === '1x1' ? new PreHeadAdapter(s.channels, t.channels, size, r) : new StageAdapter(s.channels, t.channels, size, r));
    }
    if (this.layers.some((l) => l.fp) && !ctx.teacher[TEACHER_HEATMAP])
      throw new DistillBevError(`DistillBEV: the FP term needs the teacher feature "${TEACHER_HEATMAP}" (class heatmap logits); the teacher provides ${Object.keys(ctx.teacher).join(', ')}`);
    this.grids = this.teacherSpecs.map((t) => layerGrid(t.grid));
    this.channel_wise_adaptations = this.registerModule('channel_wise_adaptations', new ModuleList(adapters));
    this.spatial_wise_adaptations = config.attentionImitation
      ? this.registerModule('spatial_wise_adaptations', new ModuleList(this.layers.map((_, i) => new Conv2d(1, 1, 3, { padding: 1, rng: rng.fork(`att${i}`) }))))
      : null;
  }

  /** Inherit head: copy the teacher's head into the student where names and shapes match (config.inheritHead). */
  setup(args: { teacher: TaskModel<DetBatch>; student: TaskModel<DetBatch> }): DistillerSetupReport | null {
    if (!this.config.inheritHead) return null;
    this.inheritReport = inheritHead(args.teacher, args.student, this.config.inheritHeadScope === 'head' ? 'head.' : 'head.task_heads.', this.config.inheritHeadExclude);
    return this.inheritReport;
  }

  /** Foreground maps (and GT heatmaps for FP layers) of one batch at one layer's grid; cached for the last batch. */
  layerMasks(batch: DetBatch, i: number): LayerMasks {
    if (this.cache?.batch !== batch) this.cache = { batch, masks: new Map() };
    let m = this.cache.masks.get(i);
    if (!m) {
      const g = this.grids[i]!;
      const opts = { minRadius: this.config.minRadius, overlap: this.config.gaussianOverlap };
      m = {
        fg: batch.boxes.map((b) => foreground(b, g, this.config.cellPoint)),
        gt: this.layers[i]!.fp ? batch.boxes.map((b) => gtHeatmapMax(b, g, opts)) : null,
      };
      this.cache.masks.set(i, m);
    }
    return m;
  }

  /** Per-cell region weights M·S of layer i for the batch, as [B, Y, X, 1] arrays (reads the teacher heatmap for FP). */
  regionWeights(batch: DetBatch, i: number, teacher: ForwardOutput): { fg: Float32Array; tn: Float32Array; fp: Float32Array | null } | { all: Float32Array } {
    const g = this.grids[i]!;
    const B = batch.boxes.length, n = g.x * g.y;
    const cfg = this.config;
    if (!cfg.regions) {
      const u = uniformWeights(g.x, g.y, cfg.scaling), all = new Float32Array(B * n);
      for (let b = 0; b < B; b++) all.set(u, b * n);
      return { all };
    }
    const masks = this.layerMasks(batch, i);
    let teacherMax: Float32Array | null = null;
    let hm: [number, number] = [0, 0];
    if (this.layers[i]!.fp) {
      const h = teacher.features[TEACHER_HEATMAP];
      if (!h || h.rank !== 4 || h.shape[0] !== B)
        throw new DistillBevError(`DistillBEV layer ${i}: expected the teacher's "${TEACHER_HEATMAP}" as [${B}, Y, X, classes] logits; found ${h ? `[${h.shape}]` : 'nothing'}`);
      hm = [h.shape[2]!, h.shape[1]!];
      teacherMax = tf.tidy(() => tf.max(h, 3)).dataSync() as Float32Array;
    }
    const out = { fg: new Float32Array(B * n), tn: new Float32Array(B * n), fp: this.layers[i]!.fp ? new Float32Array(B * n) : null };
    for (let b = 0; b < B; b++) {
      let fp: Uint8Array | null = null;
      if (teacherMax) {
        const logits = resampleMax(teacherMax, hm[0], hm[1], g.x, g.y, b * hm[0] * hm[1]);
        const t = logits.map((v) => 1 / (1 + Math.exp(-v)));
        fp = falsePositives(masks.gt![b]!, t, masks.fg[b]!.box, cfg.gtThreshold ?? cfg.teacherThreshold, cfg.teacherThreshold);
      }
      const w = regionWeights(masks.fg[b]!, fp, g.x, g.y, { scaling: cfg.scaling, fpScaling: cfg.fpScaling });
      out.fg.set(w.fg, b * n);
      out.tn.set(w.tn, b * n);
      if (out.fp && w.fp) out.fp.set(w.fp, b * n);
    }
    return out;
  }

  private feature(out: ForwardOutput, side: 'teacher' | 'student', name: string, i: number): tf.Tensor4D {
    const f = out.features[name];
    if (!f) throw new DistillBevError(`DistillBEV layer ${i}: the ${side}'s forward output has no feature "${name}" (it has ${Object.keys(out.features).join(', ') || 'none'})`);
    if (f.rank !== 4) throw new DistillBevError(`DistillBEV layer ${i}: ${side} feature "${name}" must be NHWC [B, Y, X, C]; found shape [${f.shape}]`);
    return f as tf.Tensor4D;
  }

  loss(args: { teacher: ForwardOutput; student: ForwardOutput; batch: DetBatch }): LossOutput {
    const { teacher, student, batch } = args;
    const cfg = this.config;
    return tf.tidy(() => {
      const parts: Record<string, tf.Scalar> = {};
      for (const [i, l] of this.layers.entries()) {
        const ft = this.feature(teacher, 'teacher', l.teacher, i), fs = this.feature(student, 'student', l.student, i);
        const tSpec = this.teacherSpecs[i]!, sSpec = this.studentSpecs[i]!, g = this.grids[i]!;
        const B = ft.shape[0];
        if (ft.shape[1] !== g.y || ft.shape[2] !== g.x || ft.shape[3] !== tSpec.channels)
          throw new DistillBevError(`DistillBEV layer ${i}: teacher feature "${l.teacher}" should be [B, ${g.y}, ${g.x}, ${tSpec.channels}] (its spec); found [${ft.shape}]`);
        if (fs.shape[0] !== B || fs.shape[3] !== sSpec.channels)
          throw new DistillBevError(`DistillBEV layer ${i}: student feature "${l.student}" should be [${B}, Y, X, ${sSpec.channels}]; found [${fs.shape}]`);
        if (batch.boxes.length !== B) throw new DistillBevError(`DistillBEV: the batch has boxes for ${batch.boxes.length} samples; the features have ${B}`);
        const t = detach(ft);
        const phi = this.channel_wise_adaptations.get(i).forward(fs);
        const d = tf.square(tf.sub(phi, t));
        let att: tf.Tensor | null = null;
        if (cfg.attention === 'teacher') att = spatialAttention(t, cfg.tau);
        else if (cfg.attention === 'teacher_student') att = tf.div(tf.add(spatialAttention(t, cfg.tau), spatialAttention(detach(phi), cfg.tau)), 2);
        const needAc = cfg.channelAttention === 'all' || l.fp;
        const ac = needAc ? channelAttention(t, cfg.channelTau) : null;
        const dSum = tf.sum(d, 3, true);
        const dAc = ac ? tf.sum(tf.mul(d, ac), 3, true) : null;
        const dMain = cfg.channelAttention === 'all' ? dAc! : dSum;
        const shape: [number, number, number, number] = [B, g.y, g.x, 1];
        const term = (w: Float32Array, dd: tf.Tensor, weight: number): tf.Scalar => {
          const m = tf.tensor4d(w, shape);
          return tf.mul(tf.sum(tf.mul(att ? tf.mul(m, att) : m, dd)), weight / B) as tf.Scalar;
        };
        const key = `distill.l${i}`;
        const w = this.regionWeights(batch, i, teacher);
        if ('all' in w) parts[`${key}.all`] = term(w.all, dMain, cfg.beta);
        else {
          parts[`${key}.fg`] = term(w.fg, dMain, cfg.alpha);
          parts[`${key}.tn`] = term(w.tn, dMain, cfg.beta);
          if (w.fp) parts[`${key}.fp`] = term(w.fp, dAc!, cfg.gamma);
        }
        if (this.spatial_wise_adaptations) {
          const conv = this.spatial_wise_adaptations.get(i);
          const mt = tf.mean(t, 3, true), ms = conv.forward(tf.mean(phi, 3, true));
          parts[`${key}.att`] = tf.mul(tf.sum(tf.abs(tf.sub(mt, ms))), cfg.wAtt / B) as tf.Scalar;
        }
      }
      const vals = Object.values(parts);
      const total = (vals.length ? tf.addN(vals) : tf.scalar(0)) as tf.Scalar;
      return { total, parts };
    });
  }
}
