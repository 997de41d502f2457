import * as tf from '@tensorflow/tfjs-core';
import type { FusedTaskOutput } from './fused.js';
import { CenterHeadError, REG_HEADS, type CenterHeadConfig } from './config.js';
import type { CenterHeadTargets } from './targets.js';

/** One task's raw head outputs (NHWC logits / regressions): heatmap [B,H,W,C], reg 2, height 1, dim 3, rot 2, vel 2. */
export interface TaskOutput {
  heatmap: tf.Tensor4D;
  reg: tf.Tensor4D;
  height: tf.Tensor4D;
  dim: tf.Tensor4D;
  rot: tf.Tensor4D;
  vel: tf.Tensor4D;
}

export interface CenterHeadLoss {
  /** Σ over tasks of loss_heatmap + loss_bbox. */
  total: tf.Scalar;
  /** `task{i}.loss_heatmap` and `task{i}.loss_bbox` (the latter already × locWeight), as mmdet3d names them. */
  parts: Record<string, tf.Scalar>;
}

/** sigmoid clamped to [eps, 1 − eps] (mmdet3d clip_sigmoid; the clamp has zero gradient outside). */
export function clipSigmoid(logits: tf.Tensor, eps = 1e-4): tf.Tensor {
  return tf.tidy(() => tf.clipByValue(tf.sigmoid(logits), eps, 1 - eps));
}

/**
 * CornerNet's Gaussian focal loss (mmdet GaussianFocalLoss, α = 2, β = 4) on clamped sigmoid probabilities,
 * summed and divided by max(#cells where target == 1, 1):
 *   pos: −log(p)·(1−p)^α where t == 1;  neg: −log(1−p)·p^α·(1−t)^β elsewhere.
 */
export function gaussianFocalLoss(
  logits: tf.Tensor,
  target: tf.Tensor | Float32Array,
  opts: { alpha?: number; beta?: number; numPos?: number } = {},
): tf.Scalar {
  const alpha = opts.alpha ?? 2, beta = opts.beta ?? 4;
  return tf.tidy(() => {
    const t = target instanceof Float32Array ? tf.tensor(target, logits.shape) : target;
    const numPos = opts.numPos ?? countOnes(target instanceof Float32Array ? target : (t.dataSync() as Float32Array));
    const p = clipSigmoid(logits);
    const eps = 1e-12;
    const pos = tf.cast(tf.equal(t, 1), 'float32');
    const negW = tf.pow(tf.sub(1, t), beta);
    const powA = (x: tf.Tensor) => (alpha === 2 ? tf.square(x) : tf.pow(x, alpha));
    const posLoss = tf.mul(tf.mul(tf.neg(tf.log(tf.add(p, eps))), powA(tf.sub(1, p))), pos);
    const negLoss = tf.mul(tf.mul(tf.neg(tf.log(tf.add(tf.sub(1, p), eps))), powA(p)), negW);
    return tf.div(tf.sum(tf.add(posLoss, negLoss)), Math.max(numPos, 1)) as tf.Scalar;
  });
}

function countOnes(a: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === 1) n++;
  return n;
}

/**
 * L1 on the objects' cells: pred [B, H, W, 10] gathered at ind ([B, M], flat y·W + x), |pred − target|·weight summed
 * and divided by (#objects + 1e-4). weight = mask × codeWeights, zero where the target is NaN (mmdet3d's isnotnan).
 */
export function regL1Loss(
  pred: tf.Tensor4D,
  targets: { annoBox: Float32Array; ind: Int32Array; mask: Float32Array },
  codeWeights: readonly number[],
): tf.Scalar {
  const [B, H, W, C] = pred.shape;
  const M = targets.ind.length / B;
  if (C !== codeWeights.length || targets.annoBox.length !== B * M * C)
    throw new CenterHeadError(`regL1Loss: expected pred channels ${codeWeights.length} and anno_box [${B}, ${M}, ${C}], found channels ${C} and ${targets.annoBox.length} values`);
  const flatInd = new Int32Array(B * M);
  const target = new Float32Array(B * M * C);
  const weight = new Float32Array(B * M * C);
  let num = 0;
  for (let b = 0; b < B; b++) {
    for (let m = 0; m < M; m++) {
      const s = b * M + m;
      const mk = targets.mask[s]!;
      num += mk;
      flatInd[s] = b * H * W + targets.ind[s]!;
      for (let c = 0; c < C; c++) {
        const v = targets.annoBox[s * C + c]!;
        const ok = !Number.isNaN(v);
        target[s * C + c] = ok ? v : 0;
        weight[s * C + c] = ok ? mk * codeWeights[c]! : 0;
      }
    }
  }
  return tf.tidy(() => {
    const flat = tf.reshape(pred, [B * H * W, C]);
    const gathered = tf.gather(flat, tf.tensor1d(flatInd, 'int32'));
    const diff = tf.abs(tf.sub(gathered, tf.tensor2d(target, [B * M, C])));
    return tf.div(tf.sum(tf.mul(diff, tf.tensor2d(weight, [B * M, C]))), num + 1e-4) as tf.Scalar;
  });
}

/** [B,H,W,10] anno_box prediction of one task: reg, height, dim, rot, vel concatenated on channels. */
export function concatRegression(out: TaskOutput): tf.Tensor4D {
  return tf.concat(REG_HEADS.map(([name]) => out[name]), 3) as tf.Tensor4D;
}

/** The CenterHead loss of a batch on per-branch outputs (`CenterHead.forward`): `centerHeadBoxLoss` with the regressions concatenated. */
export function centerHeadLoss(outputs: readonly TaskOutput[], targets: CenterHeadTargets, cfg: Pick<CenterHeadConfig, 'codeWeights' | 'locWeight'>): CenterHeadLoss {
  return tf.tidy(
    () => centerHeadBoxLoss(outputs.map((o) => ({ heatmap: o.heatmap, box: concatRegression(o) })), targets, cfg) as unknown as tf.TensorContainer,
  ) as unknown as CenterHeadLoss;
}

/**
 * CenterHead loss (mmdet3d) on fused outputs {heatmap, box}: per task the Gaussian focal loss of the heatmap /
 * #positives plus locWeight × the code-weighted L1 of the box code at the objects' cells / #objects, summed over
 * tasks. Parts `task{i}.loss_heatmap|loss_bbox`.
 */
export function centerHeadBoxLoss(tasks: readonly FusedTaskOutput[], targets: CenterHeadTargets, cfg: Pick<CenterHeadConfig, 'codeWeights' | 'locWeight'>): CenterHeadLoss {
  if (tasks.length !== targets.tasks.length) throw new CenterHeadError(`centerHeadLoss: expected ${targets.tasks.length} task outputs, found ${tasks.length}`);
  const parts: Record<string, tf.Scalar> = {};
  const total = tf.tidy(() => {
    const terms = tasks.map((o, i) => {
      const tt = targets.tasks[i]!;
      const [B, H, W, C] = o.heatmap.shape;
      if (B !== targets.batch || H !== targets.height || W !== targets.width || C !== tt.numClasses)
        throw new CenterHeadError(`centerHeadLoss: task ${i} heatmap must be [${targets.batch}, ${targets.height}, ${targets.width}, ${tt.numClasses}], found [${o.heatmap.shape.join(', ')}]`);
      const hm = gaussianFocalLoss(o.heatmap, tt.heatmap);
      const box = tf.mul(regL1Loss(o.box, tt, cfg.codeWeights), cfg.locWeight) as tf.Scalar;
      parts[`task${i}.loss_heatmap`] = tf.keep(hm);
      parts[`task${i}.loss_bbox`] = tf.keep(box);
      return tf.add(hm, box);
    });
    return tf.addN(terms) as tf.Scalar;
  });
  return { total, parts };
}
