/**
 * Multi-scale deformable attention benchmark: the engine's fused kernel (`BevzooMSDeformAttn`: native on libtorch's
 * threads where the addon loads, and its portable JS version) against the plain gather-based version, forward and
 * forward + backward, on the default engine (wasm with the engine's kernels; `--backend cpu` for tfjs's cpu), one run,
 * at the shapes of BEVFormer's spatial cross-attention for a small preset: 6 cameras, 2 levels of 128×352 image
 * features (1/8, 1/16), 4 heads × 16 dims, 8 points per level (4 heights × 2), 1,250 queries per camera.
 *
 *   pnpm bench:deform [--queries 1250] [--reps 5] [--backend wasm|cpu]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { msDeformAttn, type LevelShapes } from './attention/ms-deform-attn.js';

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { queries: { type: 'string', default: '1250' }, reps: { type: 'string', default: '5' }, backend: { type: 'string', default: 'wasm' } } });
  const [Q, reps] = [Number(a.queries), Number(a.reps)];
  const { initEngine, useNativeKernels } = await import('@bevzoo/engine'); // a dev dependency: the benchmark runs in the workspace
  const engine = await initEngine({ backend: a.backend as 'wasm' | 'cpu', log: () => {} });
  const native = engine.kernels === 'native';

  const levels: LevelShapes = [[16, 44], [8, 22]];
  const [B, H, D, P] = [6, 4, 16, 8];
  const K = levels.reduce((s, [h, w]) => s + h * w, 0);
  const rng = createRng(1);
  const rand = (shape: number[], f: () => number) => tf.tensor(Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, f), shape);
  const value = rand([B, K, H, D], () => rng.normal());
  const loc = rand([B, Q, H, levels.length, P, 2], () => rng.uniform(-0.05, 1.05));
  const attn = tf.tidy(() => tf.reshape(tf.softmax(rand([B, Q, H, levels.length * P], () => rng.normal())), [B, Q, H, levels.length, P]));
  const proj = rand([B, Q, H * D], () => rng.normal());

  /** Median milliseconds of `f` over `reps` runs after one warm-up. */
  function time(f: () => void): number {
    f();
    const t: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      f();
      t.push(performance.now() - t0);
    }
    return t.sort((x, y) => x - y)[Math.floor(t.length / 2)]!;
  }

  const versions = [
    ...(native ? [{ name: 'kernel, native', impl: 'host' as const, native: true }] : []),
    { name: native || engine.backend === 'wasm' ? 'kernel, portable JS' : 'kernel', impl: 'host' as const, native: false },
    { name: 'gather', impl: 'gather' as const, native: false },
  ];
  const rows = versions.map(({ name, impl, native: on }) => {
    if (native) useNativeKernels(on);
    const fwd = time(() => tf.tidy(() => void msDeformAttn(value, levels, loc, attn, { impl }).dataSync()));
    const fb = time(() => tf.tidy(() => {
      const g = tf.grads((v, l, w) => tf.sum(tf.mul(msDeformAttn(v, levels, l, w, { impl }), proj)) as tf.Scalar)([value, loc, attn]);
      g.forEach((t) => t.dataSync());
    }));
    return { impl: name, fwd, fb };
  });
  if (native) useNativeKernels(true);
  const host = rows[0]!, gather = rows.at(-1)!;
  process.stdout.write(
    `multi-scale deformable attention, backend ${engine.backend}${engine.kernels ? ` (${engine.kernels} kernels)` : ''}: value [${B}, ${K}, ${H}, ${D}] over levels ${levels.map((l) => l.join('×')).join(', ')}, ` +
      `${Q} queries × ${H} heads × ${levels.length} levels × ${P} points (${reps} reps, median)\n\n` +
      `| version | forward ms | forward + backward ms |\n|---|---|---|\n` +
      rows.map((r) => `| ${r.impl} | ${r.fwd.toFixed(1)} | ${r.fb.toFixed(1)} |`).join('\n') +
      `\n\ngather / ${host.impl}: forward ${(gather.fwd / host.fwd).toFixed(2)}×, forward + backward ${(gather.fb / host.fb).toFixed(2)}×\n`,
  );
}

void main();
