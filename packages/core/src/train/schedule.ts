import { TrainError } from './types.js';

/**
 * Learning-rate schedules, per iteration, as mmcv's LrUpdaterHooks (by_epoch = false) compute them. `step` is the
 * 0-based index of the update about to be made; `totalSteps` the run's length.
 *
 * - constant: base.
 * - cosine: min + ½(base − min)(1 + cos(π·step/totalSteps)), min = base·minLrRatio (mmcv CosineAnnealing).
 * - step: base·gamma^(number of milestones ≤ step) (mmcv Step).
 * - poly: (base − min)·(1 − step/totalSteps)^power + min.
 *
 * Warm-up (mmcv semantics) multiplies the scheduled lr during the first `warmup.steps` updates:
 * linear: lr·(1 − (1 − step/steps)(1 − ratio)), so it starts at lr·ratio (default ratio 1/3, mmcv's default)
 * and reaches lr at `steps`; constant: lr·ratio; exp: lr·ratio^(1 − step/steps).
 */
export type ScheduleConfig =
  | ({ type: 'constant' } & WarmupPart)
  | ({ type: 'cosine'; minLrRatio?: number } & WarmupPart)
  | ({ type: 'step'; milestones: number[]; gamma?: number } & WarmupPart)
  | ({ type: 'poly'; power?: number; minLrRatio?: number } & WarmupPart);

export interface WarmupConfig {
  type?: 'linear' | 'constant' | 'exp';
  steps: number;
  /** lr factor at step 0 (default 1/3). */
  ratio?: number;
}

interface WarmupPart {
  warmup?: WarmupConfig;
}

/** The learning rate for update `step` (0-based) of `totalSteps`. */
export function lrAt(schedule: ScheduleConfig, baseLr: number, step: number, totalSteps: number): number {
  let lr: number;
  switch (schedule.type) {
    case 'constant':
      lr = baseLr;
      break;
    case 'cosine': {
      const min = baseLr * (schedule.minLrRatio ?? 0);
      lr = min + 0.5 * (baseLr - min) * (1 + Math.cos((Math.PI * step) / totalSteps));
      break;
    }
    case 'step': {
      let k = 0;
      for (const m of schedule.milestones) if (step >= m) k++;
      lr = baseLr * (schedule.gamma ?? 0.1) ** k;
      break;
    }
    case 'poly': {
      const min = baseLr * (schedule.minLrRatio ?? 0);
      lr = (baseLr - min) * (1 - step / totalSteps) ** (schedule.power ?? 1) + min;
      break;
    }
    default:
      throw new TrainError(`lrAt: unknown schedule type ${JSON.stringify((schedule as { type: unknown }).type)} (expected constant, cosine, step or poly)`);
  }
  const w = schedule.warmup;
  if (w && step < w.steps) {
    const ratio = w.ratio ?? 1 / 3;
    const f = step / w.steps;
    switch (w.type ?? 'linear') {
      case 'linear':
        lr *= 1 - (1 - f) * (1 - ratio);
        break;
      case 'constant':
        lr *= ratio;
        break;
      case 'exp':
        lr *= ratio ** (1 - f);
        break;
    }
  }
  return lr;
}
