/**
 * Evaluation by task: a run's task comes from its plugins; `det` runs are evaluated with the nuScenes detection
 * metrics, `occ` runs with Occ3D mIoU on the camera-visible voxels. Both read the model's predictions batch by
 * batch from the validation loader, and on the final evaluation leave the files `bevzoo eval` reads again.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { disposeForward, tidyForward, writeFileAtomic, type DataSettings, type DetPrediction, type OccPrediction, type Task, type TaskModel } from '@bevzoo/core';
import { egoDetectionsToResults, evaluateDetection, formatDetectionSummary, formatOccupancyTable, OccConfusion, OCC_NUM_CLASSES, writeResults, type EvalBox } from '@bevzoo/eval';
import { OCC_CLASSES, OCC_GRID, writeNpz, type Batch } from '@bevzoo/nuscenes';
import type { Dataset } from './dataset.js';
import type { JobResult, PreviewBox } from './results.js';

export interface EvalContext {
  model: TaskModel<Batch, unknown>;
  batches: AsyncIterable<Batch>;
  data: Dataset;
  /** The final evaluation: write the submission files into `<outDir>/eval` and take a preview. */
  final: boolean;
  outDir: string;
  /** The submission's meta (detection): which sensors the run used. */
  meta: { use_camera: boolean; use_lidar: boolean };
  log: (s: string) => void;
  /** Called after each batch with the number of samples in it. */
  onBatch?: (samples: number) => void;
}

export interface Evaluation {
  /** Everything the task reports (results.json rows carry it). */
  metrics: Record<string, unknown>;
  /** The metrics a validation curve tracks. */
  curve: Record<string, unknown>;
  /** e.g. "mAP 0.1234, NDS 0.2345". */
  headline: string;
  preview?: JobResult['preview'];
}

/** What `predict` needs: the model, the batches of the samples to predict, the dataset, where the files go. */
export interface PredictContext {
  model: TaskModel<Batch, unknown>;
  batches: AsyncIterable<Batch>;
  data: Dataset;
  /** The samples predicted (every one gets an entry, empty where the model found nothing). */
  tokens: readonly string[];
  outDir: string;
  meta: { use_camera: boolean; use_lidar: boolean };
  onBatch?: (samples: number) => void;
}

export interface TaskEvaluator {
  /** What the validation batches must hold beyond what the model reads. */
  data: Partial<DataSettings>;
  evaluate(ctx: EvalContext): Promise<Evaluation>;
  /**
   * Write the task's prediction files for `tokens` into `outDir` (no labels needed): detection `results.json` in the
   * nuScenes submission format, occupancy one Occ3D `<token>.npz` per sample. Returns a line saying what was written.
   */
  predict(ctx: PredictContext): Promise<string>;
  /** The devkit-style printout of a finished run's metrics. */
  summary(r: JobResult): string;
}

/** Run a model over batches in eval mode and hand each batch's predictions to `use`. */
export async function predictBatches<P>(model: TaskModel<Batch, unknown>, batches: AsyncIterable<Batch>, use: (batch: Batch, predictions: P[]) => void): Promise<void> {
  model.train(false);
  try {
    for await (const batch of batches) {
      const fwd = tidyForward(model, batch, false);
      try {
        use(batch, (await model.predict(fwd, batch)) as P[]);
      } finally {
        disposeForward(fwd);
      }
    }
  } finally {
    model.train(true);
  }
}

const round = (v: number, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

function previewBoxes(batch: Batch, dets: readonly DetPrediction[]): { gt: PreviewBox[]; pred: PreviewBox[] } {
  const b = batch.boxes[0]!;
  const gt: PreviewBox[] = [];
  for (let i = 0; i < b.count; i++)
    gt.push({ x: round(b.center[i * 3]!, 2), y: round(b.center[i * 3 + 1]!, 2), w: round(b.size[i * 3]!, 2), l: round(b.size[i * 3 + 1]!, 2), yaw: round(b.yaw[i]!, 3), label: b.label[i]! });
  const pred = dets.filter((d) => d.score >= 0.3).map((d) => ({ x: round(d.center[0]!, 2), y: round(d.center[1]!, 2), w: round(d.size[0]!, 2), l: round(d.size[1]!, 2), yaw: round(d.yaw, 3), label: d.label, score: round(d.score, 3) }));
  return { gt, pred };
}

/** The detections of every sample in `tokens`, as nuScenes submission boxes (global frame); the first batch's preview on request. */
async function detectionResults(ctx: Pick<PredictContext, 'model' | 'batches' | 'data' | 'tokens' | 'onBatch'>, withPreview: boolean): Promise<{ results: Map<string, EvalBox[]>; preview?: JobResult['preview'] }> {
  const dets = new Map<string, DetPrediction[]>();
  let preview: JobResult['preview'];
  await predictBatches<DetPrediction[]>(ctx.model, ctx.batches, (batch, perSample) => {
    batch.sampleTokens.forEach((t, i) => dets.set(t, perSample[i]!));
    if (withPreview) preview ??= { sample_token: batch.sampleTokens[0]!, ...previewBoxes(batch, perSample[0]!) };
    ctx.onBatch?.(batch.sampleTokens.length);
  });
  const results = new Map<string, EvalBox[]>();
  for (const t of ctx.tokens) results.set(t, egoDetectionsToResults(ctx.data.nusc, t, dets.get(t) ?? []));
  return { results, preview };
}

/**
 * The sensors a model's predictions come from, as a submission's meta names them: students read the cameras (where
 * their data has images), teachers the LiDAR, and a teacher reading virtual points (MVP) the cameras too (its points
 * are painted with, and made from, the cameras' 2-D instance masks).
 */
export function sensorsOf(kind: 'teacher' | 'student', data: Pick<DataSettings, 'images' | 'virtualPoints'>): { use_camera: boolean; use_lidar: boolean } {
  return { use_camera: (data.images && kind === 'student') || data.virtualPoints === true, use_lidar: kind === 'teacher' };
}

const submissionMeta = (m: { use_camera: boolean; use_lidar: boolean }) => ({ ...m, use_radar: false, use_map: false, use_external: false });

const detection: TaskEvaluator = {
  data: {},
  async predict(ctx) {
    const { results } = await detectionResults(ctx, false);
    mkdirSync(ctx.outDir, { recursive: true });
    const file = join(ctx.outDir, 'results.json');
    writeResults(file, { meta: submissionMeta(ctx.meta), results });
    const boxes = [...results.values()].reduce((a, r) => a + r.length, 0);
    return `${results.size} samples, ${boxes} boxes → ${file} (the nuScenes submission format; bevzoo eval det --results reads it)`;
  },
  async evaluate(ctx) {
    const { data } = ctx;
    const { results, preview } = await detectionResults({ ...ctx, tokens: data.val }, ctx.final);
    const meta = submissionMeta(ctx.meta);
    const outDir = ctx.final ? join(ctx.outDir, 'eval') : undefined;
    if (outDir) {
      mkdirSync(outDir, { recursive: true });
      writeResults(join(outDir, 'results.json'), { meta, results }); // the submission, for `bevzoo eval det --results`
    }
    const s = evaluateDetection({ nusc: data.nusc, sampleTokens: data.val, results: { meta, results }, config: data.evalConfig, outDir, log: outDir ? ctx.log : () => {} }).summary;
    return {
      metrics: {
        mean_ap: s.mean_ap, nd_score: s.nd_score, tp_errors: s.tp_errors, label_aps: s.label_aps, mean_dist_aps: s.mean_dist_aps, label_tp_errors: s.label_tp_errors,
        mean_ap_by_distance: s.mean_ap_by_distance, ap_by_distance: s.ap_by_distance, gt_by_distance: s.gt_by_distance,
      },
      curve: { mean_ap: s.mean_ap, nd_score: s.nd_score, tp_errors: s.tp_errors },
      headline: `mAP ${s.mean_ap.toFixed(4)}, NDS ${s.nd_score.toFixed(4)}`,
      preview,
    };
  },
  summary: (r) => formatDetectionSummary(JSON.parse(readFileSync(join(dirname(r.log), 'eval', 'metrics_summary.json'), 'utf8'))),
};

const VOXELS = OCC_GRID.size[0] * OCC_GRID.size[1] * OCC_GRID.size[2];

/** Throws unless an occupancy prediction holds one label per voxel of the Occ3D grid. */
function checkOcc(p: OccPrediction, token: string): void {
  if (p.semantics.length !== VOXELS)
    throw new Error(`occupancy prediction of sample ${token}: expected ${OCC_GRID.size.join('×')} = ${VOXELS} labels, found ${p.semantics.length}`);
}

/** An occupancy prediction's .npz file (for `bevzoo eval occ --predictions`). */
function occFile(p: OccPrediction, token: string, dir: string): Promise<void> {
  checkOcc(p, token);
  return writeFileAtomic(join(dir, `${token}.npz`), [writeNpz({ semantics: { data: p.semantics, shape: [...OCC_GRID.size], dtype: 'u1' } })]);
}

const occupancy: TaskEvaluator = {
  data: { occ: true },
  async predict(ctx) {
    mkdirSync(ctx.outDir, { recursive: true });
    const writes: Promise<void>[] = [];
    await predictBatches<OccPrediction>(ctx.model, ctx.batches, (batch, perSample) => {
      perSample.forEach((p, b) => writes.push(occFile(p, batch.sampleTokens[b]!, ctx.outDir)));
      ctx.onBatch?.(batch.sampleTokens.length);
    });
    await Promise.all(writes);
    return `${writes.length} samples → ${ctx.outDir}/<token>.npz (Occ3D semantics ${OCC_GRID.size.join('×')}; bevzoo eval occ --predictions reads them)`;
  },
  async evaluate(ctx) {
    if (!ctx.data.gts) throw new Error(`occupancy evaluation needs Occ3D labels: ${ctx.data.dataroot} has no gts/ folder (pass --gts <dir>)`);
    const conf = new OccConfusion();
    const outDir = ctx.final ? join(ctx.outDir, 'eval', 'occ') : undefined;
    if (outDir) mkdirSync(outDir, { recursive: true });
    const writes: Promise<void>[] = [];
    await predictBatches<OccPrediction>(ctx.model, ctx.batches, (batch, perSample) => {
      const occ = batch.occ;
      if (!occ) throw new Error('occupancy evaluation: the validation batch carries no Occ3D labels (batch.occ)');
      perSample.forEach((p, b) => {
        const token = batch.sampleTokens[b]!;
        checkOcc(p, token);
        if (outDir) writes.push(occFile(p, token, outDir));
        conf.add(occ.semantics.subarray(b * VOXELS, (b + 1) * VOXELS), p.semantics, occ.maskCamera.subarray(b * VOXELS, (b + 1) * VOXELS), `sample ${token}`);
      });
      ctx.onBatch?.(batch.sampleTokens.length);
    });
    await Promise.all(writes);
    const iou = conf.iou();
    const perClass = Object.fromEntries(OCC_CLASSES.slice(0, OCC_NUM_CLASSES - 1).map((n, i) => [n, Number.isNaN(iou[i]!) ? null : iou[i]!]));
    const miou = conf.miou();
    return { metrics: { miou, iou: perClass, frames: conf.frames }, curve: { miou }, headline: `mIoU ${miou.toFixed(4)}` };
  },
  summary: (r) => {
    const m = r.metrics as { miou: number; iou: Record<string, number | null>; frames: number };
    return formatOccupancyTable({ frames: m.frames, miou: m.miou, iou: Object.fromEntries(Object.entries(m.iou).map(([k, v]) => [k, v ?? Number.NaN])) });
  },
};

/** The evaluator of each task. */
export const TASK_EVALUATORS: Record<Task, TaskEvaluator> = { det: detection, occ: occupancy };
