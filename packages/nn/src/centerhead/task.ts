/**
 * The detection side of a teacher or student written once: GT boxes of a batch as CenterHead targets, the
 * CenterHead loss with the task's loss-part names, and decoding with the BEV augmentation undone. A model that
 * ends in a CenterHead returns its head outputs with `boxOutputsRecord` and calls these.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { undoBevAugmentation, type LossOutput } from '@bevzoo/core';
import { CenterHeadError } from './config.js';
import type { DetBox } from './decode.js';
import { boxOutputsFrom, decodeBoxOutputs } from './fused.js';
import type { CenterHead } from './head.js';
import { centerHeadBoxLoss } from './loss.js';
import type { GtBox } from './targets.js';

/**
 * One sample's GT boxes as a loader batch holds them (ego frame after the BEV augmentation). A structural type, so
 * that @bevzoo/nn does not depend on the data package (whose `Batch.boxes` entries satisfy it).
 */
export interface BatchBoxesLike {
  count: number;
  /** [N, 3] geometric centre. */
  center: ArrayLike<number>;
  /** [N, 3] (w, l, h). */
  size: ArrayLike<number>;
  /** [N] */
  yaw: ArrayLike<number>;
  /** [N, 2] (vx, vy). */
  velocity: ArrayLike<number>;
  /** [N] 1 where the velocity is known (the devkit gives none for single-annotation instances). */
  velocityValid: ArrayLike<number>;
  /** [N] class index. */
  label: ArrayLike<number>;
}

/** GT boxes of one sample as CenterHead GtBoxes (velocity NaN where unknown: no velocity loss there). */
export function gtBoxesOf(b: BatchBoxesLike): GtBox[] {
  const out: GtBox[] = [];
  for (let i = 0; i < b.count; i++) {
    const valid = b.velocityValid[i] === 1;
    out.push({
      center: [b.center[3 * i]!, b.center[3 * i + 1]!, b.center[3 * i + 2]!],
      size: [b.size[3 * i]!, b.size[3 * i + 1]!, b.size[3 * i + 2]!],
      yaw: b.yaw[i]!,
      velocity: valid ? [b.velocity[2 * i]!, b.velocity[2 * i + 1]!] : [Number.NaN, Number.NaN],
      label: b.label[i]!,
    });
  }
  return out;
}

/** The name of a detection loss part: `det.task{i}.heatmap` or `det.task{i}.bbox`. */
export function detLossPart(task: number, term: 'heatmap' | 'bbox'): string {
  return `det.task${task}.${term}`;
}

/**
 * The CenterHead loss of a forward pass's head outputs (`task{i}.heatmap|box`, see boxOutputsRecord) against the
 * batch's GT boxes: per task the focal loss of the heatmap and locWeight × the L1 of the box code, parts named by
 * `detLossPart`.
 */
export function centerHeadDetLoss(head: CenterHead, outputs: Record<string, tf.Tensor>, boxes: readonly BatchBoxesLike[], where = 'forward outputs'): LossOutput {
  const tasks = boxOutputsFrom(outputs, head.config.tasks.length, where);
  const B = tasks[0]?.heatmap.shape[0];
  if (boxes.length !== B) throw new CenterHeadError(`${where}: the batch has GT boxes for ${boxes.length} samples, the head outputs ${B}`);
  const l = centerHeadBoxLoss(tasks, head.targets(boxes.map(gtBoxesOf)), head.config);
  const parts: Record<string, tf.Scalar> = {};
  for (const [k, v] of Object.entries(l.parts)) {
    const m = /^task(\d+)\.loss_(heatmap|bbox)$/.exec(k)!;
    parts[detLossPart(Number(m[1]), m[2] as 'heatmap' | 'bbox')] = v;
  }
  return { total: l.total, parts };
}

/**
 * Decoded boxes per sample in the keyframe ego frame: the head outputs decoded (top-K, threshold, NMS), then each
 * sample's BEV augmentation `bda` ([B, 3, 3], row-major; absent = none) undone.
 */
export async function centerHeadPredict(head: CenterHead, outputs: Record<string, tf.Tensor>, bda?: ArrayLike<number>, where = 'forward outputs'): Promise<DetBox[][]> {
  const dets = await decodeBoxOutputs(boxOutputsFrom(outputs, head.config.tasks.length, where), head.config);
  if (!bda) return dets;
  return dets.map((boxes, b) => {
    const m = Array.from({ length: 9 }, (_, i) => bda[b * 9 + i]!);
    return boxes.map((d) => undoBevAugmentation(d, m));
  });
}
