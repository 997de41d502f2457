import type * as tf from '@tensorflow/tfjs-core';
import type { TrainableModel } from '@bevzoo/core';

export interface InheritReport {
  /** Student keys whose values now come from the teacher. */
  copied: string[];
  /** Keys under the prefix that were not copied, and why. */
  skipped: { key: string; reason: string }[];
}

/**
 * "Inherit head": copy every teacher parameter and buffer under `prefix` (default `head.`, the CenterHead child
 * of both models) into the student where the student has the same key with the same shape.
 */
export function inheritHead(teacher: TrainableModel, student: TrainableModel, prefix = 'head.'): InheritReport {
  const t = teacher.stateDict(), s = student.stateDict();
  const copy: Record<string, tf.Tensor> = {};
  const report: InheritReport = { copied: [], skipped: [] };
  for (const [k, sv] of Object.entries(s)) {
    if (!k.startsWith(prefix)) continue;
    const tv = t[k];
    if (!tv) report.skipped.push({ key: k, reason: 'not in the teacher' });
    else if (tv.shape.length !== sv.shape.length || tv.shape.some((d, i) => d !== sv.shape[i]))
      report.skipped.push({ key: k, reason: `shape [${sv.shape}] in the student, [${tv.shape}] in the teacher` });
    else {
      copy[k] = tv;
      report.copied.push(k);
    }
  }
  for (const k of Object.keys(t)) if (k.startsWith(prefix) && !(k in s)) report.skipped.push({ key: k, reason: 'not in the student' });
  if (report.copied.length) student.loadStateDict(copy, { strict: false });
  return report;
}
