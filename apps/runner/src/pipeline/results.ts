/** What one run leaves behind: `result.json` (written last, atomically: a folder with it is a finished run). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, type StepPhases, type Task, type TeacherCacheStats } from '@bevzoo/core';
import type { TeacherRuntimeChoice } from '@bevzoo/onnx';

/** See `JobResult.timing`: the steps' phases (summed over the session's steps) and the run's other parts, in seconds. */
export interface RunTiming extends StepPhases {
  wall: number;
  setup: number;
  train_other: number;
  eval: number;
}

export interface JobResult {
  id: string;
  role: 'teacher' | 'baseline' | 'distill';
  /** The task of the run's plugins: `det` (nuScenes detection metrics) or `occ` (Occ3D mIoU). */
  task: Task;
  teacher: string | null;
  student: string | null;
  distiller: string | null;
  seed: number;
  presets: Record<string, string>;
  /**
   * The task's metrics: det `mean_ap`, `nd_score`, `tp_errors`, `label_aps`, `mean_dist_aps`, `label_tp_errors`, and AP by
   * ego distance band `mean_ap_by_distance`, `ap_by_distance`, `gt_by_distance` (absent in results written before them);
   * occ `miou`, `iou` (per class).
   */
  metrics: Record<string, unknown>;
  train: {
    steps: number; seconds: number; steps_per_s: number; samples_per_s: number; first_loss: number; last_loss: number; backend: string;
    /** The engine's kernel path ('native' libtorch or 'wasm') and its threads, where the backend has that choice. */
    kernels?: string; threads?: number;
    /** Set when the weights are the package's checkpoint (the figures are those recorded when it was trained). */
    packaged?: { file: string; command: string };
    /** The starting weights loaded before training (the plugin's `initWeights`), if any. */
    init?: { file: string; tensors: number; description: string };
    /** What the distiller's setup did before training (head inheritance, say). */
    setup?: string;
    /**
     * A distillation: where its frozen teacher ran (`used`: onnx = onnxruntime-node, or engine), what was asked
     * (`--teacher-runtime`), the milliseconds per teacher forward measured on each runtime on the run's first batches,
     * the largest relative difference of onnxruntime-node's outputs from the engine's, and why the engine where it was.
     */
    teacher_runtime?: TeacherRuntimeChoice;
    /**
     * The training loader's frame cache over this session (@bevzoo/nuscenes's `FrameCacheStats`, plus its memory in
     * use and budget in bytes): images decoded and point files read, cache hits in memory and on disk, entries computed.
     * An epoch after the first should be mostly hits; where it is not, the budget is too small for the run's frames.
     */
    /** The distillation's teacher cache (see @bevzoo/core's TeacherCacheStats), where the batches allowed one. */
    teacher_cache?: TeacherCacheStats;
    data_cache?: { decodes: number; point_files: number; memory_hits: number; disk_hits: number; misses: number; memory_bytes: number; memory_limit: number };
    /** Set when the run was interrupted and resumed: the step of the checkpoint the last session started from. The
     *  figures above cover every session (the earlier ones are carried over in the checkpoint). */
    resumed_from?: number;
  };
  eval: { samples: number; seconds: number };
  /**
   * Where the run's wall time went, in seconds (this session; `pnpm bench:matrix` prints it per run): `setup` (engine,
   * dataset, models and weights, the teacher runtime's choice, loaders), the training steps' phases summed over the
   * session's steps (`data`, `teacher`, `forward`, `distill`, `backward`, `optimizer`: see core's `StepRecord.phases`),
   * `train_other` (the rest of the training loop: logging, checkpoints), `eval` (validation during training and the
   * final evaluation). Absent in results written before it.
   */
  timing?: RunTiming;
  /** Validation metrics during training (`train.evalEvery`), the last entry being the final evaluation. */
  curve?: CurvePoint[];
  checkpoint: string;
  log: string;
  /** One validation sample's boxes in the ego frame, for BEV pictures (detection runs). */
  preview?: { sample_token: string; gt: PreviewBox[]; pred: PreviewBox[] };
  finished_at: string;
}

/** One validation evaluation during training: step, training seconds so far (evaluation time excluded), the task's headline metrics. */
export interface CurvePoint {
  step: number;
  train_seconds: number;
  [metric: string]: unknown;
}

export interface PreviewBox { x: number; y: number; w: number; l: number; yaw: number; label: number; score?: number }

/** A detection run's headline metrics (mAP and NDS), or null for another task. */
export function detMetrics(r: Pick<JobResult, 'task' | 'metrics'>): { mean_ap: number; nd_score: number } | null {
  return r.task === 'det' ? (r.metrics as { mean_ap: number; nd_score: number }) : null;
}

export function resultPath(outDir: string): string {
  return join(outDir, 'result.json');
}

export function readResult(outDir: string): JobResult | null {
  const p = resultPath(outDir);
  if (!existsSync(p)) return null;
  try {
    const r = JSON.parse(readFileSync(p, 'utf8')) as JobResult;
    return { ...r, task: r.task ?? 'det' }; // results written before runs carried their task were detection runs
  } catch {
    return null; // a torn file cannot exist (atomic write), but a hand-edited one might: rerun
  }
}

/** Write JSON atomically (a temp file beside the target, then renamed into place). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
