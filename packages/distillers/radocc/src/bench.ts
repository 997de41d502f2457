/**
 * `pnpm bench:radocc`: the rendering's share of a RadOcc training step, measured in one run.
 *
 * Two distillations of the same LSSOcc2D teacher and student at FlashOcc's small size (128×352 images, logits on
 * 100×100×16 voxels of 0.8 × 0.8 × 0.4 m), on the fixture scene's batch (2 samples): A = RadOcc `small` (2048 rays,
 * RDC + RSC affinity + voxel KL), B = the same with RDC and RSC off (voxel KL only). Steps alternate A, B (each on a
 * fresh copy of the batch, so that A draws and plans its rays every step, as in training); a step is the teacher's
 * forward, the student's forward, the losses and the gradients. The share is (A − B) / A; the forward part of the
 * rendering terms (rays + rendering + RDC/RSC, read back) is timed inside the distiller.
 *
 * Options: --steps N (measured steps per variant, default 4), --backend wasm|cpu|tensorflow (default auto).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createDistillation, register, type Distillation } from '@bevzoo/core';
import { initEngine, type EngineBackend } from '@bevzoo/engine';
import { fixtureBatch, fixtureStudent, fixtureTeacher, type FixtureBatch } from './fixture.js';
import { radOccPlugin } from './plugin.js';
import type { RadOcc } from './distiller.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};

async function main(): Promise<void> {
  const steps = Number(arg('steps', '4'));
  const engine = await initEngine({ backend: arg('backend', 'auto') as EngineBackend, log: () => {} });
  for (const p of [fixtureTeacher, fixtureStudent, radOccPlugin]) register(p);
  const make = (overrides: Record<string, unknown>) => createDistillation<FixtureBatch>({
    teacher: { name: fixtureTeacher.name, kind: 'teacher', preset: 'small', pretrained: false },
    student: { name: fixtureStudent.name, kind: 'student', preset: 'small' },
    distiller: { name: 'radocc', preset: 'small', overrides },
    seed: 0,
  });
  const a = await make({});
  const b = await make({ rdc: { enabled: false }, rsc: { enabled: false } });
  const batch = fixtureBatch([128, 352], 2, 0);

  const step = (d: Distillation<FixtureBatch>): { ms: number; loss: number } => {
    const copy = { ...batch };
    const t0 = performance.now();
    d.prepareBatch(copy);
    const params = d.namedParameters().map(([, v]) => v);
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
      const out = d.trainingLoss(copy);
      return out.total;
    }), params);
    const loss = value.dataSync()[0]!;
    Object.values(grads).forEach((g) => g.dataSync());
    const ms = performance.now() - t0;
    tf.dispose([value, ...Object.values(grads)]);
    d.releaseBatch();
    return { ms, loss };
  };

  const times = { a: [] as number[], b: [] as number[], rays: [] as number[], render: [] as number[] };
  step(a);
  step(b); // warm-up: kernel set-up, lazily cached tensors
  for (let i = 0; i < steps; i++) {
    const ra = step(a);
    const t = (a.distiller.model as RadOcc).lastTiming;
    times.a.push(ra.ms);
    times.rays.push(t.rays);
    times.render.push(t.render);
    times.b.push(step(b).ms);
  }
  const last = (a.distiller.model as RadOcc).lastRays;
  const rays = last?.rays.count ?? 0, samples = last?.sampling.count ?? 0;
  const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  const A = mean(times.a), B = mean(times.b), R = mean(times.rays), F = mean(times.render);
  const f = (x: number) => x.toFixed(0).padStart(7);
  process.stdout.write(
    [
      `RadOcc step on ${engine.backend}${engine.kernels ? ` (${engine.kernels} kernels, ${engine.threads} thread${engine.threads === 1 ? '' : 's'})` : ''}: LSSOcc2D small teacher + student (100×100×16 voxels), batch 2, 128×352 images`,
      `${rays} rays of ${samples} samples (of ${last?.rays.candidates ?? 0} LiDAR pixels), ${steps} steps each, alternating`,
      '',
      `  step with RDC + RSC + voxel KL   ${f(A)} ms`,
      `  step with voxel KL only          ${f(B)} ms`,
      `  rendering + RadOcc losses        ${f(A - B)} ms   ${((100 * (A - B)) / A).toFixed(1)} % of the step`,
      `    of which forward (read back)   ${f(R + F)} ms   (rays and sampling plans ${R.toFixed(0)} ms, rendering + RDC/RSC ${F.toFixed(0)} ms)`,
      `  the rest (teacher, student, task loss, voxel KL, gradients)  ${f(B)} ms   ${((100 * B) / A).toFixed(1)} %`,
      '',
    ].join('\n'),
  );
  a.dispose();
  b.dispose();
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
