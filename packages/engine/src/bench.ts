/**
 * Training-step benchmark of the reference net: input 2×64×64×32, conv 3×3 → 64 (+bias, relu),
 * conv 3×3 → 64 (+bias), mean-squared error, Adam (the engine's fused kernel, as the trainer runs it; `--optimizer tfjs`:
 * tfjs's tf.train.adam; the convolutions as tf.fused.conv2d). One step on wasm with each kernel path (native
 * libtorch kernels where the addon loads, and our wasm kernels), with 1 and with 2 threads, against the
 * same net in PyTorch CPU with the same threads (where a python3 with torch is found) and the stock cpu
 * backend; and the hand-off cost of one split op of the wasm intra-op pool.
 * Prints numbers measured in this run (and the load average: the machine may be shared).
 *
 *   node dist/bench.js [--steps N] [--rounds R] [--warmup W] [--threads 1,2] [--kernels native,wasm] [--optimizer fused|tfjs] [--skip-cpu] [--skip-torch] [--profile]
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { findTorchPython, TORCH_ALLOCATORS, torchEnv, type TorchAllocator } from './torch.js';
import { cpus, loadavg } from 'node:os';
import { initEngine, loadNative, threadStats, type KernelsRequest } from './index.js';
import { setMinChunkFlops } from './threads.js';
import { ADAMW } from './fused.js';

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
  /** One training step; returns its loss. */
  step: () => number;
  dispose: () => void;
}

/**
 * Adam as the trainer runs it (@bevzoo/core's AdamW with no weight decay): one fused BevzooAdamW kernel per parameter,
 * where torch.optim.Adam makes one update per parameter too. `tfjs` instead: tfjs's tf.train.adam (about 12 small ops
 * per parameter; the figure this benchmark printed before 2026-12-07).
 */
function adam(vars: tf.Variable[], lr: number, impl: 'fused' | 'tfjs'): { minimize: (loss: () => tf.Scalar) => tf.Scalar; dispose: () => void } {
  if (impl === 'tfjs') {
    const opt = tf.train.adam(lr);
    return { minimize: (loss) => opt.minimize(loss, true, vars)!, dispose: () => opt.dispose() };
  }
  const [b1, b2, eps] = [0.9, 0.999, 1e-8]; // torch.optim.Adam's defaults
  const m = vars.map((v) => tf.variable(tf.zerosLike(v), false));
  const s = vars.map((v) => tf.variable(tf.zerosLike(v), false));
  let t = 0;
  return {
    minimize: (loss) => {
      const { value, grads } = tf.variableGrads(loss, vars);
      t++;
      const attrs = { beta1: b1, beta2: b2, eps, decay: 1, stepSize: lr / (1 - b1 ** t), bc2Sqrt: Math.sqrt(1 - b2 ** t) } as unknown as tf.NamedAttrMap;
      vars.forEach((v, i) =>
        tf.tidy(() => {
          const [p, mi, si] = tf.engine().runKernel(ADAMW, { param: v, m: m[i]!, v: s[i]!, grad: grads[v.name]! }, attrs) as tf.Tensor[];
          v.assign(p!);
          m[i]!.assign(mi!);
          s[i]!.assign(si!);
        }),
      );
      tf.dispose(Object.values(grads));
      return value;
    },
    dispose: () => tf.dispose([...m, ...s]),
  };
}

function makeNet(optimizer: 'fused' | 'tfjs'): Net {
  const x = tf.tensor4d(values(N * H * W * C_IN, 1, 1), [N, H, W, C_IN]);
  const target = tf.tensor4d(values(N * H * W * C, 2, 1), [N, H, W, C]);
  const w1 = tf.variable(tf.tensor4d(values(K * K * C_IN * C, 3, Math.sqrt(6 / (K * K * C_IN))), [K, K, C_IN, C]));
  const b1 = tf.variable(tf.zeros([C]));
  const w2 = tf.variable(tf.tensor4d(values(K * K * C * C, 4, Math.sqrt(6 / (K * K * C))), [K, K, C, C]));
  const b2 = tf.variable(tf.zeros([C]));
  const opt = adam([w1, b1, w2, b2], 1e-3, optimizer);
  // tf.fused.conv2d: the bias (and the first relu) inside the convolution, as PyTorch's Conv2d computes its bias.
  const loss = () => {
    const h = tf.fused.conv2d({ x, filter: w1 as tf.Tensor4D, strides: 1, pad: 'same', bias: b1, activation: 'relu' });
    const y = tf.fused.conv2d({ x: h, filter: w2 as tf.Tensor4D, strides: 1, pad: 'same', bias: b2 });
    return tf.mean(tf.square(tf.sub(y, target))) as tf.Scalar;
  };
  return {
    step: () => {
      const l = opt.minimize(loss);
      const v = l.dataSync()[0]!; // waits for the step to finish
      l.dispose();
      return v;
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

/** CPU time of this process, all threads, in ms (unaffected by other processes competing for the cores). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Wall-clock and CPU ms of each step. */
function timeSteps(net: Net, steps: number): { wall: number[]; cpu: number[]; loss: number } {
  const wall: number[] = [];
  const cpu: number[] = [];
  let loss = NaN;
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const c0 = cpuMs();
    loss = net.step();
    cpu.push(cpuMs() - c0);
    wall.push(performance.now() - t0);
  }
  return { wall, cpu, loss };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/**
 * Cost of one split op: a matmul too small to be worth splitting ([64, 64]·[64, 64]), forced to split
 * in two chunks, minus the same matmul on one thread. Returns µs per op.
 */
async function handoffMicros(): Promise<number | null> {
  const time = (n: number) => {
    const a = tf.tensor2d(values(64 * 64, 5, 1), [64, 64]);
    const bb = tf.tensor2d(values(64 * 64, 6, 1), [64, 64]);
    for (let i = 0; i < 200; i++) tf.matMul(a, bb).dispose();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) tf.matMul(a, bb).dispose();
    const us = ((performance.now() - t0) * 1000) / n;
    tf.dispose([a, bb]);
    return us;
  };
  await initEngine({ backend: 'wasm', threads: 1, kernels: 'wasm', log: () => {} });
  const one = time(5000);
  const engine = await initEngine({ backend: 'wasm', threads: 2, kernels: 'wasm', log: () => {} });
  if (engine.threads !== 2) return null;
  const prev = setMinChunkFlops(64 * 64 * 64); // 2 chunks of its 2·64³ FLOPs: one per thread
  const before = threadStats().splitOps;
  const two = time(5000);
  const split = threadStats().splitOps - before;
  setMinChunkFlops(prev);
  return split >= 5000 ? two - one : null;
}

/** The reference net in PyTorch (NCHW, as PyTorch code is written), ms per step (median of all timed steps). */
const TORCH_NET = `
import sys, time, json, torch
n, h, w, cin, c, k, steps, threads, warmup = map(int, sys.argv[1:10])
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.rand(n, cin, h, w) * 2 - 1
target = torch.rand(n, c, h, w) * 2 - 1
net = torch.nn.Sequential(torch.nn.Conv2d(cin, c, k, padding=k // 2), torch.nn.ReLU(), torch.nn.Conv2d(c, c, k, padding=k // 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
def step():
    opt.zero_grad()
    loss = torch.mean((net(x) - target) ** 2)
    loss.backward()
    opt.step()
    return loss.item()
for _ in range(warmup):
    step()
ms = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); ms.append((time.perf_counter() - t0) * 1000)
print(json.dumps(ms))
`;

function torchStep(python: string, threads: number, steps: number, warmup: number, allocator: TorchAllocator): number[] {
  const r = spawnSync(python, ['-c', TORCH_NET, ...[N, H, W, C_IN, C, K, steps, threads, warmup].map(String)], { encoding: 'utf8', env: torchEnv(allocator) });
  if (r.status !== 0) throw new Error(`PyTorch reference step failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as number[];
}

const USAGE = `usage: node packages/engine/dist/bench.js [options]   (pnpm bench:engine [options])
  --steps <n>              timed steps per round (default 10)
  --rounds <r>             rounds; each runs every configuration once, in turn (default 3)
  --warmup <n>             untimed steps of each configuration in each round, ours and PyTorch's (default 20)
  --threads <a,b>          thread counts (default 1,2)
  --kernels <a,b>          kernel paths: native, wasm (default: both where the native addon loads)
  --optimizer <o>          fused: the engine's fused Adam kernel, as the trainer runs it (default); tfjs: tf.train.adam
  --skip-torch             no PyTorch figure
  --skip-cpu               no step on the stock cpu backend (it takes about a minute)
  --profile                kernel times of one step per configuration`;

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const optimizer = arg('--optimizer') ?? 'fused';
  if (optimizer !== 'fused' && optimizer !== 'tfjs') {
    console.error(`--optimizer must be fused or tfjs, not ${optimizer}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const steps = Number(arg('--steps') ?? 10);
  // Untimed steps first, on both sides: the first ~20 steps of a fresh net run slower on this engine (V8 is still
  // optimising tfjs's JS; 30 ms against 17 at one thread) and PyTorch has its own first-step costs.
  const warmup = Number(arg('--warmup') ?? 20);
  if (!(Number.isInteger(warmup) && warmup >= 1)) {
    console.error(`--warmup must be a whole number ≥ 1, not ${arg('--warmup')}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const rounds = Number(arg('--rounds') ?? 3);
  const threadCounts = (arg('--threads') ?? '1,2').split(',').map(Number);
  const native = loadNative();
  const kernelPaths = (arg('--kernels') ?? (native.addon ? 'native,wasm' : 'wasm')).split(',') as Exclude<KernelsRequest, 'auto'>[];
  const gflop = stepFlops() / 1e9;
  console.log(`reference net: input ${N}×${H}×${W}×${C_IN}, two ${K}×${K} convs to ${C} channels, Adam (${optimizer === 'fused' ? 'the fused kernel' : 'tf.train.adam'}); ${gflop.toFixed(2)} GFLOP per step`);
  console.log(`${cpus().length} cores; load average before: ${load()}`);
  console.log(`kernel paths: ${kernelPaths.join(', ')}${native.addon ? '' : ` (native: ${native.why})`}`);
  // Rounds alternate the configurations, so that a burst of load from other processes hits all of them.
  const configs = kernelPaths.flatMap((kernels) => threadCounts.map((t) => ({ kernels, t, key: `${kernels}/${t}` })));
  const wall = new Map<string, number[]>(configs.map((c) => [c.key, []]));
  const cpu = new Map<string, number[]>(configs.map((c) => [c.key, []]));
  const losses = new Map<string, [number, number]>(); // the first round's loss at its first and last step
  const split = new Map<string, { ops: number; chunks: number; workerChunks: number; waitMs: number }>();
  const torch = process.argv.includes('--skip-torch') ? { why: '--skip-torch' } : findTorchPython();
  const allocators = Object.keys(TORCH_ALLOCATORS) as TorchAllocator[];
  const torchWall = new Map<string, number[]>(allocators.flatMap((a) => threadCounts.map((t): [string, number[]] => [`${a}/${t}`, []])));
  for (let r = 0; r < rounds; r++) {
    for (const { kernels, t, key } of configs) {
      const engine = await initEngine({ backend: 'wasm', threads: t, kernels, log: () => {} });
      if (engine.threads !== t) throw new Error(`${t} threads requested, ${engine.threads} started`);
      if (engine.kernels !== kernels) throw new Error(`${kernels} kernels requested, ${engine.kernels} in use`);
      const net = makeNet(optimizer);
      const firstLoss = net.step(); // warm-up: XNNPACK operators, Adam's moments, V8's optimised code
      for (let i = 1; i < warmup; i++) net.step();
      const s0 = threadStats();
      const m = timeSteps(net, steps);
      if (r === 0) losses.set(key, [firstLoss, m.loss]);
      const s1 = threadStats();
      net.dispose();
      wall.get(key)!.push(...m.wall);
      cpu.get(key)!.push(...m.cpu);
      const acc = split.get(key) ?? { ops: 0, chunks: 0, workerChunks: 0, waitMs: 0 };
      split.set(key, {
        ops: acc.ops + s1.splitOps - s0.splitOps,
        chunks: acc.chunks + s1.chunks - s0.chunks,
        workerChunks: acc.workerChunks + s1.workerChunks - s0.workerChunks,
        waitMs: acc.waitMs + s1.waitMs - s0.waitMs,
      });
    }
    if ('python' in torch) for (const a of allocators) for (const t of threadCounts) torchWall.get(`${a}/${t}`)!.push(...torchStep(torch.python, t, steps, warmup, a));
  }
  const n = steps * rounds;
  for (const { kernels, t, key } of configs) {
    const w = median(wall.get(key)!);
    const c = median(cpu.get(key)!);
    const sp = split.get(key)!;
    console.log(
      `wasm backend, ${kernels} kernels, ${t} thread${t === 1 ? ' ' : 's'}: ${w.toFixed(1)} ms/step wall-clock (median of ${n}, min ${Math.min(...wall.get(key)!).toFixed(1)}), ` +
        `${c.toFixed(1)} ms CPU time; ${(gflop / (w / 1000)).toFixed(1)} GFLOP/s; loss ${losses.get(key)!.map((l) => l.toFixed(5)).join(' → ')} in ${warmup + steps} steps` +
        (t > 1 && kernels === 'wasm'
          ? `; ${(sp.ops / n).toFixed(0)} split ops/step in ${(sp.chunks / n).toFixed(0)} chunks, ${((100 * sp.workerChunks) / sp.chunks).toFixed(0)}% run by workers, ` +
            `main thread waited ${(sp.waitMs / n).toFixed(1)} ms/step for them`
          : ''),
    );
  }
  if (threadCounts.length > 1) {
    for (const kernels of kernelPaths) {
      const [t0, t1] = [threadCounts[0], threadCounts[threadCounts.length - 1]];
      const [a, b] = [wall.get(`${kernels}/${t0}`)!, wall.get(`${kernels}/${t1}`)!];
      console.log(`${kernels} kernels: speed-up ${t1} threads over ${t0}: ${(median(a) / median(b)).toFixed(2)}× (medians), ${(Math.min(...a) / Math.min(...b)).toFixed(2)}× (minima)`);
    }
  }
  if (!('python' in torch)) console.log(`PyTorch: skipped (${torch.why})`);
  else {
    console.log(`PyTorch CPU (${torch.python}, torch ${torch.torch}), the same net in NCHW, torch.optim.Adam; glibc malloc as installed (default) and with its mmap and trim thresholds raised (tuned: ${Object.entries(TORCH_ALLOCATORS.tuned).map(([k, v]) => `${k}=${v}`).join(' ')}):`);
    for (const a of allocators) {
      for (const t of threadCounts) {
        const tw = median(torchWall.get(`${a}/${t}`)!);
        const ratios = kernelPaths.map((k) => `${k} ${(median(wall.get(`${k}/${t}`)!) / tw).toFixed(2)}×`).join(', ');
        console.log(`  ${a}, ${t} thread${t === 1 ? ' ' : 's'}: ${tw.toFixed(1)} ms/step (median of ${n}, min ${Math.min(...torchWall.get(`${a}/${t}`)!).toFixed(1)}); bevzoo / PyTorch: ${ratios}`);
      }
    }
  }
  const us = await handoffMicros();
  console.log(us == null ? 'hand-off: no worker' : `hand-off cost of one split op (tiny matmul forced to split, minus unsplit): ${us.toFixed(0)} µs`);
  console.log(`load average after: ${load()}`);
  if (process.argv.includes('--profile')) {
    for (const { kernels, t } of configs) {
      await initEngine({ backend: 'wasm', threads: t, kernels, log: () => {} });
      const net = makeNet(optimizer);
      for (let i = 0; i < warmup; i++) net.step();
      const info = await tf.profile(() => net.step());
      net.dispose();
      const byKernel = new Map<string, number>();
      for (const k of info.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
      const rows = [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
      console.log(`kernel times in one step, ${kernels} kernels, ${t} thread(s) (ms): ${rows.map(([k, ms]) => `${k} ${ms.toFixed(1)}`).join(', ')}`);
    }
  }
  if (process.argv.includes('--skip-cpu')) return;
  await initEngine({ backend: 'cpu', log: () => {} });
  const cpuNet = makeNet(optimizer);
  const cpuRun = timeSteps(cpuNet, 1); // ONE step: the stock cpu backend takes about a minute
  cpuNet.dispose();
  const [cpuWall] = cpuRun.wall;
  const [cpuCpu] = cpuRun.cpu;
  console.log(`stock cpu backend: ${cpuWall.toFixed(0)} ms/step wall-clock (one step); ${cpuCpu.toFixed(0)} ms CPU time`);
  for (const { kernels, t, key } of configs) {
    const w = median(wall.get(key)!);
    console.log(`speed-up of wasm + ${kernels} kernels (${t} thread${t === 1 ? '' : 's'}) over stock cpu: ${(cpuWall / w).toFixed(0)}× wall-clock`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
