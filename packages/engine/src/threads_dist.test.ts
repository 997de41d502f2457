import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The intra-op worker for real: it starts only from the built package, so this builds the package
 * (ESM + CJS, no d.ts) into node_modules/.cache and runs node scripts against it, with every op
 * split (BEVZOO_THREADS_MIN_FLOPS=0). Each script compares wasm with 2 threads against the cpu
 * backend and must end by itself (the idle worker never keeps the process alive).
 */
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(pkg, 'node_modules', '.cache', 'bevzoo-engine-threads-test');

const BODY = `
const cases = [
  { x: [2, 9, 11, 5], f: [3, 3, 5, 7], s: 1, p: 'same', d: 1 },
  { x: [3, 10, 7, 3], f: [5, 3, 3, 4], s: [2, 1], p: 'same', d: 1 },
  { x: [1, 13, 13, 2], f: [3, 3, 2, 3], s: 3, p: 'valid', d: 1 },
  { x: [2, 11, 12, 4], f: [3, 3, 4, 5], s: 1, p: 'valid', d: 2 },
];
function rnd(n, seed) {
  const out = new Float32Array(n);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = (s / 4294967296) * 2 - 1; }
  return out;
}
const size = (shape) => shape.reduce((a, b) => a * b, 1);
function evaluate(tf) {
  return tf.tidy(() => {
    const res = [];
    for (const c of cases) {
      const x = tf.tensor(rnd(size(c.x), 1), c.x);
      const w = tf.tensor(rnd(size(c.f), 2), c.f);
      const f = (a, b) => tf.conv2d(a, b, c.s, c.p, 'NHWC', c.d);
      const y = f(x, w);
      const r = tf.tensor(rnd(size(y.shape), 3), y.shape);
      const g = tf.grads((a, b) => tf.sum(tf.mul(f(a, b), r)))([x, w]);
      res.push(y.dataSync(), g[0].dataSync(), g[1].dataSync());
    }
    const a = tf.tensor(rnd(40 * 70, 4), [40, 70]);
    const b = tf.tensor(rnd(40 * 9, 5), [40, 9]);
    res.push(tf.matMul(a, b, true, false).dataSync());
    const dy = tf.tensor(rnd(2 * 5 * 6 * 4, 6), [2, 5, 6, 4]);
    const k = tf.tensor(rnd(3 * 3 * 3 * 4, 7), [3, 3, 3, 4]);
    res.push(tf.conv2dTranspose(dy, k, [2, 10, 12, 3], 2, 'same').dataSync());
    return res;
  });
}
function relErr(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i] - b[i])); den = Math.max(den, Math.abs(b[i])); }
  return a.length === b.length && !Number.isNaN(num) ? num / Math.max(den, 1e-30) : Infinity;
}
async function check({ initEngine, threadStats }) {
  const { tf } = await initEngine({ backend: 'cpu', log: () => {} });
  const ref = evaluate(tf);
  const lines = [];
  const two = await initEngine({ backend: 'wasm', threads: 2, kernels: 'wasm', log: (l) => lines.push(l) });
  const got = evaluate(tf);
  let stats = threadStats();
  // These ops are tiny: on a loaded machine the main thread can finish every chunk before the worker wakes up.
  // Repeat until the worker has taken one (it must, within 200 rounds).
  for (let i = 0; i < 200 && stats.workerChunks === 0; i++) {
    evaluate(tf);
    stats = threadStats();
  }
  const err = Math.max(...got.map((g, i) => relErr(g, ref[i])));
  const one = await initEngine({ backend: 'wasm', threads: 1, kernels: 'wasm', log: () => {} });
  const after = threadStats().threads;
  await initEngine({ backend: 'wasm', threads: 2, kernels: 'wasm', log: () => {} }); // restarted, then left running: must not keep the process alive
  const again = evaluate(tf);
  const errAgain = Math.max(...again.map((g, i) => relErr(g, ref[i])));
  console.log(JSON.stringify({ threads: two.threads, splitOps: stats.splitOps, workerChunks: stats.workerChunks, err, errAgain, one: one.threads, after, log: lines[0] }));
}
`;

interface CheckResult {
  threads: number;
  splitOps: number;
  workerChunks: number;
  err: number;
  errAgain: number;
  one: number;
  after: number;
  log: string;
}

function runScript(file: string): CheckResult {
  const r = spawnSync(process.execPath, [file], {
    cwd: out,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, BEVZOO_THREADS_MIN_FLOPS: '0' },
  });
  if (r.status !== 0) throw new Error(`${file}: exit ${r.status} signal ${r.signal}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('intra-op worker from the built package', () => {
  beforeAll(async () => {
    mkdirSync(out, { recursive: true });
    await build({
      config: false,
      entry: [join(pkg, 'src/index.ts'), join(pkg, 'src/worker.ts')],
      outDir: out,
      format: ['esm', 'cjs'],
      target: 'node20',
      platform: 'node',
      shims: true,
      splitting: false,
      clean: true,
      dts: false,
      silent: true,
      // As the package's own build: the tfjs packages stay external but for tfjs-core's gradient files.
      external: [/^@tensorflow\/tfjs-(core|backend-cpu|backend-wasm)$/],
      noExternal: [/^@tensorflow\/tfjs-core\/dist\/register_all_gradients/],
    });
    writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(out, 'check.mjs'), `import * as engine from './index.js';\n${BODY}\nawait check(engine);\n`);
    writeFileSync(join(out, 'check.cjs'), `const engine = require('./index.cjs');\n${BODY}\ncheck(engine).catch((e) => { console.error(e); process.exitCode = 1; });\n`);
  });

  for (const file of ['check.mjs', 'check.cjs']) {
    it(`${file}: 2 threads split every op and equal cpu, stop and restart on request, and the process ends by itself`, () => {
      const r = runScript(file);
      expect(r.threads).toBe(2);
      expect(r.log).toContain('2 threads (requested)');
      expect(r.splitOps).toBeGreaterThanOrEqual(13); // 4 forward, 4 dW, 3 dx (one too small), matMul, conv2dTranspose
      expect(r.workerChunks).toBeGreaterThan(0);
      expect(r.err).toBeLessThan(1e-4);
      expect(r.errAgain).toBeLessThan(1e-4);
      expect(r.one).toBe(1);
      expect(r.after).toBe(1);
    });
  }
});
