/**
 * Training-step benchmark of the reference net: input 2×64×64×32, conv 3×3 → 64 (+bias, relu),
 * conv 3×3 → 64 (+bias), mean-squared error, Adam. One step on wasm with our kernels vs the stock cpu
 * backend. Prints numbers measured in this run.
 *
 *   node dist/bench.js [--steps N] [--skip-cpu] [--profile]
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from './index.js';

const N = 2;
const H = 64;
const W = 64;
const C_IN = 32;
const C = 64;
const K = 3;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Deterministic values in [-scale, scale). */
function values(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

interface Net {
  step: () => void;
  dispose: () => void;
}

function makeNet(): Net {
  const x = tf.tensor4d(values(N * H * W * C_IN, 1, 1), [N, H, W, C_IN]);
  const target = tf.tensor4d(values(N * H * W * C, 2, 1), [N, H, W, C]);
  const w1 = tf.variable(tf.tensor4d(values(K * K * C_IN * C, 3, Math.sqrt(6 / (K * K * C_IN))), [K, K, C_IN, C]));
  const b1 = tf.variable(tf.zeros([C]));
  const w2 = tf.variable(tf.tensor4d(values(K * K * C * C, 4, Math.sqrt(6 / (K * K * C))), [K, K, C, C]));
  const b2 = tf.variable(tf.zeros([C]));
  const opt = tf.train.adam(1e-3);
  const loss = () => {
    const h = tf.relu(tf.add(tf.conv2d(x, w1 as tf.Tensor4D, 1, 'same'), b1));
    const y = tf.add(tf.conv2d(h as tf.Tensor4D, w2 as tf.Tensor4D, 1, 'same'), b2);
    return tf.mean(tf.square(tf.sub(y, target))) as tf.Scalar;
  };
  return {
    step: () => {
      const l = opt.minimize(loss, true);
      l?.dataSync(); // wait for the step to finish
      l?.dispose();
    },
    dispose: () => {
      opt.dispose();
      tf.dispose([x, target, w1, b1, w2, b2]);
    },
  };
}

/** FLOPs of one step: forward of both convs, dW of both, dx of the second (the input needs none). */
function stepFlops(): number {
  const conv1 = 2 * N * H * W * K * K * C_IN * C;
  const conv2 = 2 * N * H * W * K * K * C * C;
  return conv1 * 2 + conv2 * 3;
}

/** CPU time of this process in ms (unaffected by other processes competing for the cores). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Wall-clock and CPU ms of each step. */
function timeSteps(net: Net, steps: number): { wall: number[]; cpu: number[] } {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    net.step();
    cpu.push(cpuMs() - c0);
    wall.push(performance.now() - t0);
  }
  return { wall, cpu };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function main(): Promise<void> {
  const steps = Number(arg('--steps') ?? 10);
  await initEngine({ backend: 'wasm' });
  const net = makeNet();
  net.step(); // warm-up: XNNPACK operators, Adam's moments
  const wasm = timeSteps(net, steps);
  const wasmMs = median(wasm.wall);
  const wasmCpu = median(wasm.cpu);
  const gflop = stepFlops() / 1e9;
  console.log(`reference net: input ${N}×${H}×${W}×${C_IN}, two ${K}×${K} convs to ${C} channels, Adam`);
  console.log(
    `wasm + bevzoo kernels: ${wasmMs.toFixed(1)} ms/step wall-clock (median of ${steps}, min ${Math.min(...wasm.wall).toFixed(1)}); ` +
      `${wasmCpu.toFixed(1)} ms CPU time`,
  );
  console.log(
    `wasm: ${gflop.toFixed(2)} GFLOP per step (forward + backward) → ${(gflop / (wasmMs / 1000)).toFixed(1)} GFLOP/s wall-clock, ` +
      `${(gflop / (wasmCpu / 1000)).toFixed(1)} GFLOP/s per CPU second`,
  );
  if (process.argv.includes('--profile')) {
    const info = await tf.profile(() => net.step());
    const byKernel = new Map<string, number>();
    for (const k of info.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
    const rows = [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
    console.log('wasm kernel times in one step (ms):');
    for (const [name, ms] of rows) console.log(`  ${name.padEnd(28)} ${ms.toFixed(2)}`);
  }
  net.dispose();
  if (process.argv.includes('--skip-cpu')) return;
  await initEngine({ backend: 'cpu', log: () => {} });
  const cpuNet = makeNet();
  const cpu = timeSteps(cpuNet, 1); // ONE step: the stock cpu backend takes about a minute
  cpuNet.dispose();
  const [cpuWall] = cpu.wall;
  const [cpuCpu] = cpu.cpu;
  console.log(`stock cpu backend: ${cpuWall.toFixed(0)} ms/step wall-clock (one step); ${cpuCpu.toFixed(0)} ms CPU time`);
  console.log(
    `speed-up of wasm + kernels over stock cpu: ${(cpuWall / wasmMs).toFixed(0)}× wall-clock, ${(cpuCpu / wasmCpu).toFixed(0)}× CPU time`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
