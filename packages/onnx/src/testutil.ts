/** Test helpers: real batches of the synthetic nuScenes-format dataset, and the engine's outputs as host tensors. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { DataSettings, ForwardOutput } from '@bevzoo/core';
import { createLoader, generateSynthetic, openNuScenes, prepareVirtualPoints, synthesizeMasks, type Batch } from '@bevzoo/nuscenes';
import type { ExportableModel, HostTensor, OnnxExport } from './export.js';
import { captureFeeds, OPSET } from './export.js';
import { compareOutputs } from './compare.js';

/** `n` batches of the tiny synthetic dataset's training split (points with `sweeps` sweeps, small images), no augmentation. */
export async function syntheticBatches(n: number, opts: { batchSize?: number; sweeps?: number } = {}): Promise<Batch[]> {
  const root = mkdtempSync(join(tmpdir(), 'bevzoo-onnx-data-'));
  const r = await generateSynthetic({ preset: 'tiny', seed: 0, out: join(root, 'data'), workers: 1 });
  const nusc = await openNuScenes({ dataroot: r.out, version: r.version });
  const loader = createLoader({
    nusc, sampleTokens: nusc.sampleTokensForSplit('synth_train'), batchSize: opts.batchSize ?? 2, imageSize: [32, 64], sweeps: opts.sweeps ?? 9,
    augment: false, shuffle: false, points: true, dropLast: true,
  });
  const out: Batch[] = [];
  for (let i = 0; i < Math.min(n, loader.numBatches); i++) out.push(await loader.batch(0, i));
  return out;
}

/**
 * `n` batches of the tiny synthetic dataset's training split as a model's data settings ask (image size, points and
 * sweeps, the previous keyframe, MVP's virtual points: masks and cache made here), with the training augmentation
 * (image and BEV augmentation: every batch its own camera geometry) or without.
 */
export async function syntheticBatchesFor(data: DataSettings, n: number, opts: { batchSize?: number; augment?: boolean } = {}): Promise<Batch[]> {
  const root = mkdtempSync(join(tmpdir(), 'bevzoo-onnx-data-'));
  const r = await generateSynthetic({ preset: 'tiny', seed: 0, out: join(root, 'data'), workers: 1 });
  const nusc = await openNuScenes({ dataroot: r.out, version: r.version });
  const sampleTokens = nusc.sampleTokensForSplit('synth_train');
  if (data.virtualPoints) {
    await synthesizeMasks(nusc);
    await prepareVirtualPoints(nusc, { sampleTokens, sweeps: data.sweeps });
  }
  const loader = createLoader({
    nusc, sampleTokens, batchSize: opts.batchSize ?? 1, imageSize: data.imageSize, sweeps: data.sweeps,
    points: data.points, withPrev: data.withPrev, virtualPoints: data.virtualPoints, augment: opts.augment ?? true, shuffle: false, dropLast: true, seed: 1,
  });
  const out: Batch[] = [];
  for (let i = 0; i < n; i++) out.push(await loader.batch(Math.floor(i / loader.numBatches), i % loader.numBatches));
  return out;
}

/** The engine's forward (evaluation mode) as host tensors by feature / output name. */
export function engineOutputs(model: ExportableModel, batch: unknown): Record<string, HostTensor> {
  return tf.tidy(() => {
    const out = model.forward(batch, { training: false }) as ForwardOutput;
    const host: Record<string, HostTensor> = {};
    for (const [k, t] of Object.entries({ ...out.features, ...out.outputs })) host[k] = { data: t.dataSync() as Float32Array, dims: [...t.shape], dtype: 'float32' };
    return host as unknown as tf.TensorContainer;
  }) as unknown as Record<string, HostTensor>;
}

/**
 * A python whose onnx passes `probe` (`candidates` first, then BEVZOO_PYTHON, Debian's /usr/bin/python3, then python3
 * on PATH), or why not.
 * The default probe needs onnx (the checker); the reference evaluator needs onnx >= 1.13.
 */
export function findOnnxPython(probe = 'import onnx', candidates: (string | undefined)[] = []): { python: string; onnx: string } | { why: string } {
  candidates = [...candidates, process.env.BEVZOO_PYTHON, '/usr/bin/python3', 'python3'];
  const tried: string[] = [];
  for (const p of [...new Set(candidates.filter((c): c is string => !!c))]) {
    const r = spawnSync(p, ['-c', `${probe}; import onnx; print(onnx.__version__)`], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0 && r.stdout.trim()) return { python: p, onnx: r.stdout.trim() };
    tried.push(`${p}: ${r.error ? ((r.error as NodeJS.ErrnoException).code ?? r.error.message) : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`)}`);
  }
  return { why: `no python with ${probe.replace(/^(from|import) /, '')} found (${tried.join('; ')}); apt-get install -y python3-onnx, or set BEVZOO_PYTHON` };
}

const CHECK_SCRIPT = fileURLToPath(new URL('../scripts/check_onnx.py', import.meta.url));

/**
 * Run an export on onnx's reference evaluator (a second ONNX runtime: Python and numpy, written from the operator
 * specifications) with `feeds`, through `scripts/check_onnx.py --run`, and give its outputs by name. The python is
 * BEVZOO_ONNX_REFERENCE_PYTHON, else one of findOnnxPython's whose onnx has `onnx.reference` (onnx >= 1.13; Debian 12's
 * 1.12 has not). Skips the test where there is none, except where BEVZOO_REQUIRE_ONNX_REFERENCE is set (.ci/run sets it
 * when it could install onnx).
 */
export function runOnReferenceEvaluator(ex: Pick<OnnxExport, 'bytes'>, feeds: Record<string, HostTensor>, dir: string, skip: (why: string) => void): Record<string, HostTensor> | undefined {
  const py = findOnnxPython('from onnx.reference import ReferenceEvaluator', [process.env.BEVZOO_ONNX_REFERENCE_PYTHON]);
  if ('why' in py) {
    if (process.env.BEVZOO_REQUIRE_ONNX_REFERENCE) throw new Error(py.why);
    skip(py.why);
    return undefined;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), ex.bytes);
  const spec: Record<string, { dtype: string; dims: number[]; file: string }> = {};
  Object.entries(feeds).forEach(([name, t], i) => {
    spec[name] = { dtype: t.dtype, dims: t.dims, file: `in.${i}.bin` };
    writeFileSync(join(dir, `in.${i}.bin`), t.data);
  });
  writeFileSync(join(dir, 'feeds.json'), JSON.stringify(spec));
  const r = spawnSync(py.python, [CHECK_SCRIPT, join(dir, 'model.onnx'), '--run', dir], { encoding: 'utf8', maxBuffer: 1 << 26 });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const written = JSON.parse(readFileSync(join(dir, 'outputs.json'), 'utf8')) as Record<string, { dims: number[]; file: string }>;
  const out: Record<string, HostTensor> = {};
  for (const [name, w] of Object.entries(written)) {
    const b = readFileSync(join(dir, w.file));
    out[name] = { data: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), dims: w.dims, dtype: 'float32' };
  }
  return out;
}

/**
 * The export run on onnx's reference evaluator with the feeds of a real batch (`captureFeeds`) gives the engine's
 * features and outputs within 1e-4 of each output's scale (files in `dir`; skips as `runOnReferenceEvaluator`).
 */
export function expectReferenceEvaluatorMatches(model: ExportableModel, ex: OnnxExport, batch: unknown, name: string, dir: string, skip: (why: string) => void): void {
  const out = runOnReferenceEvaluator(ex, captureFeeds(model, batch, ex.inputs, name), dir, skip);
  if (!out) return;
  const cmp = compareOutputs(out, engineOutputs(model, batch));
  expect(cmp.length).toBe(ex.outputs.length);
  for (const c of cmp) expect(c.relative, `${name} ${c.name} on the reference evaluator: max |Δ| ${c.maxAbs} at scale ${c.scale}`).toBeLessThan(1e-4);
}

/**
 * Write an export to `file` and run the reference ONNX checker with full shape inference on it (python3-onnx): it
 * passes, has our opset, and infers every output with the shape the exporter declared. Skips the test where
 * python3-onnx is missing, except in CI (.ci/run installs it and sets BEVZOO_REQUIRE_ONNX_CHECKER).
 */
export function expectReferenceCheckerPasses(ex: Pick<OnnxExport, 'bytes' | 'outputs'>, file: string, skip: (why: string) => void): void {
  writeFileSync(file, ex.bytes);
  const py = findOnnxPython();
  if ('why' in py) {
    if (process.env.BEVZOO_REQUIRE_ONNX_CHECKER) throw new Error(py.why);
    skip(py.why);
    return;
  }
  const r = spawnSync(py.python, [CHECK_SCRIPT, file], { encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const report = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(report.opset).toBe(OPSET);
  for (const o of ex.outputs) expect(report.outputs[o.name], o.name).toEqual(o.shape);
}
