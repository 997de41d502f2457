import type * as tf from '@tensorflow/tfjs-core';
import type { DistillerSetupReport, TrainableModel } from '@bevzoo/core';

/**
 * "Inherit head": copy every teacher parameter and buffer under `prefix` (default `head.`, the CenterHead child
 * of both models) into the student where the student has the same key with the same shape. The task-head branches
 * named in `exclude` (`head.task_heads.<i>.<branch>.*`) keep the student's own initialisation.
 */
export function inheritHead(teacher: TrainableModel, student: TrainableModel, prefix = 'head.', exclude: readonly string[] = []): DistillerSetupReport {
  const t = teacher.stateDict(), s = student.stateDict();
  const copy: Record<string, tf.Tensor> = {};
  const report: DistillerSetupReport = { summary: '', copied: [], skipped: [] };
  for (const [k, sv] of Object.entries(s)) {
    if (!k.startsWith(prefix)) continue;
    const tv = t[k];
    const branch = /^head\.task_heads\.\d+\.([^.]+)\./.exec(k)?.[1];
    if (branch !== undefined && exclude.includes(branch)) report.skipped.push({ key: k, reason: `branch "${branch}" excluded` });
    else if (!tv) report.skipped.push({ key: k, reason: 'not in the teacher' });
    else if (tv.shape.length !== sv.shape.length || tv.shape.some((d, i) => d !== sv.shape[i]))
      report.skipped.push({ key: k, reason: `shape [${sv.shape}] in the student, [${tv.shape}] in the teacher` });
    else {
      copy[k] = tv;
      report.copied.push(k);
    }
  }
  for (const k of Object.keys(t)) if (k.startsWith(prefix) && !(k in s)) report.skipped.push({ key: k, reason: 'not in the student' });
  if (report.copied.length) student.loadStateDict(copy, { strict: false });
  const k = report.skipped;
  report.summary = `the student's ${prefix}* starts from the teacher's: ${report.copied.length} tensors copied`
    + (k.length ? `, ${k.length} kept (${k.slice(0, 3).map((x) => `${x.key}: ${x.reason}`).join('; ')}${k.length > 3 ? '; …' : ''})` : '');
  return report;
}
