import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createModel, traceInput, type Distillation, type ForwardOutput, type TaskModel, type TeacherRuntime } from '@bevzoo/core';
import type { Batch } from '@bevzoo/nuscenes';
import '@bevzoo/teacher-centerpoint';
import { disposeForward } from '@bevzoo/core';
import { captureFeeds, compareOutputs, decodeModel, exportOnnx, OnnxSession, OnnxTeacher, OPSET, selectTeacherRuntime, TeacherRuntimeError, type HostTensor, type OnnxExport } from './index.js';
import { engineOutputs, expectReferenceCheckerPasses, expectReferenceEvaluatorMatches, syntheticBatches } from './testutil.js';

let batches: Batch[];
beforeAll(async () => {
  const { initEngine } = await import('@bevzoo/engine');
  await initEngine({ backend: 'wasm', log: () => {} });
  batches = await syntheticBatches(3);
}, 300_000);

const tmp = mkdtempSync(join(tmpdir(), 'bevzoo-onnx-'));
const exported: Record<string, OnnxExport> = {};
/** The export of a preset (made once per file). */
async function exportOf(preset: 'tiny' | 'small', pretrained: boolean): Promise<OnnxExport> {
  if (exported[preset]) return exported[preset];
  const created = await createModel<TaskModel>('centerpoint', { preset, pretrained });
  try {
    return (exported[preset] = exportOnnx(created.model, batches[0], { name: `centerpoint-${preset}` }));
  } finally {
    created.model.dispose();
  }
}

describe.each([
  ['tiny', false],
  ['small', true],
] as const)('centerpoint %s (pretrained: %s)', (preset, pretrained) => {
  it('exports an opset-17 model whose inputs are the pillars and whose outputs are the features and head outputs', async () => {
    const created = await createModel<TaskModel>('centerpoint', { preset, pretrained });
    try {
      const ex = exportOnnx(created.model, batches[0], { name: `centerpoint-${preset}` });
      exported[preset] = ex;
      const m = decodeModel(ex.bytes);
      expect(m.opsetImport.map((o) => [o.domain ?? '', o.version])).toEqual([['', OPSET]]);
      expect(m.graph.input.map((i) => i.name).sort()).toEqual(['pillars.coords', 'pillars.features', 'pillars.num_points']);
      expect(ex.inputs.every((i) => i.dynamicAxes[0] === 'num_pillars')).toBe(true);
      const outs = m.graph.output.map((o) => o.name);
      for (const f of Object.keys(created.features)) expect(outs).toContain(f);
      expect(outs).toContain('task0.heatmap');
      // Every parameter and buffer the forward reads is an initializer named like the state dict (batch norms folded).
      const inits = new Set(m.graph.initializer.map((t) => t.name));
      expect(inits.has('pts_voxel_encoder.pfn_layers.0.linear.weight')).toBe(true);
      // One PyTorch-style pooling in standard ops: the pillar scatter.
      expect(m.graph.node.filter((n) => n.opType === 'ScatterND')).toHaveLength(1);
    } finally {
      created.model.dispose();
    }
  });

  it('runs on onnxruntime-node with the engine outputs on real batches within 1e-4 of each output scale', async () => {
    const created = await createModel<TaskModel>('centerpoint', { preset, pretrained });
    const ex = await exportOf(preset, pretrained);
    const session = await OnnxSession.create(ex.bytes, { threads: 1, name: `centerpoint-${preset}` });
    try {
      const seen = new Set<number>();
      for (const batch of batches) {
        const feeds = captureFeeds(created.model, batch, ex.inputs);
        seen.add(feeds['pillars.features']!.dims[0]!);
        const cmp = compareOutputs(await session.run(feeds), engineOutputs(created.model, batch));
        for (const c of cmp) expect(c.relative, `${preset} ${c.name}: max |Δ| ${c.maxAbs} at scale ${c.scale}`).toBeLessThan(1e-4);
        expect(cmp.length).toBe(ex.outputs.length);
      }
      // Batches with different numbers of pillars through one model (the varying axis).
      expect(seen.size).toBeGreaterThan(1);
    } finally {
      await session.release();
      created.model.dispose();
    }
  });

  it('passes the reference ONNX checker (python3-onnx) with full shape inference', async (ctx) => {
    expectReferenceCheckerPasses(await exportOf(preset, pretrained), join(tmp, `centerpoint-${preset}.onnx`), (why) => ctx.skip(why));
  });

  it('runs on a second runtime, onnx\'s reference evaluator, with the engine outputs within 1e-4 on a batch other than the traced one', async (ctx) => {
    const created = await createModel<TaskModel>('centerpoint', { preset, pretrained });
    try {
      expectReferenceEvaluatorMatches(created.model, await exportOf(preset, pretrained), batches.at(-1)!, `centerpoint-${preset}`, join(tmp, `centerpoint-${preset}-reference`), (why) => ctx.skip(why));
    } finally {
      created.model.dispose();
    }
  }, 600_000);
});

describe('OnnxTeacher', () => {
  it('gives the frozen teacher\'s ForwardOutput (features and outputs by name) from onnxruntime-node', async () => {
    const created = await createModel<TaskModel>('centerpoint', { preset: 'small', pretrained: true });
    const teacher = await OnnxTeacher.create(created.model, batches[0], { name: 'centerpoint', threads: 1 });
    try {
      const out = await teacher.forward(batches[1]);
      expect(Object.keys(out.features).sort()).toEqual(Object.keys(created.features).sort());
      const host: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries({ ...out.features, ...out.outputs })) host[k] = { data: t.dataSync() as Float32Array, dims: [...t.shape], dtype: 'float32' };
      for (const c of compareOutputs(host, engineOutputs(created.model, batches[1]))) expect(c.relative, c.name).toBeLessThan(1e-4);
      disposeForward(out);
    } finally {
      await teacher.dispose();
      created.model.dispose();
    }
  });
});

/** A one-layer "teacher" of a toy batch ({ x: number[] }, 2 × 3): how its forward makes its input decides whether it exports. */
function toyDistillation(kind: 'input' | 'baked' | 'unmapped'): { d: Distillation<{ x: number[] }, unknown>; set: (TeacherRuntime<{ x: number[] }> | null)[]; w: tf.Variable; forwards: () => number; dispose(): void } {
  const w = tf.variable(tf.tensor2d([0.5, -1, 2, 0.25, 1.5, -0.75, 1, 2, -2], [3, 3]), false, 'toy.weight');
  let forwards = 0;
  const model = {
    forward: (b: { x: number[] }): ForwardOutput => {
      forwards++;
      const make = () => tf.tensor2d(b.x, [2, 3]);
      const x = kind === 'baked' ? make() : traceInput('toy.x', make); // 'baked': made without traceInput, a constant in a trace
      const y = tf.matMul(x, w);
      return { features: { bev: tf.relu(kind === 'unmapped' ? tf.cumsum(y, 1) : y) }, outputs: {} };
    },
    stateDict: () => ({ 'toy.weight': w }),
    train: () => {},
  };
  const set: (TeacherRuntime<{ x: number[] }> | null)[] = [];
  const d = { teacher: { plugin: { name: `toy-${kind}` }, preset: 'tiny', config: { width: 3 }, model }, setTeacherRuntime: (r: TeacherRuntime<{ x: number[] }> | null) => void set.push(r) };
  return { d: d as unknown as Distillation<{ x: number[] }, unknown>, set, w, forwards: () => forwards, dispose: () => w.dispose() };
}

describe('selectTeacherRuntime', () => {
  const a = { x: [1, 2, 3, 4, 5, 6] };
  const b = { x: [-1, 0.5, 2, 3, -4, 1] };

  it('runs a teacher that exports on onnxruntime-node when asked (onnx), with both timings and its difference', async () => {
    const toy = toyDistillation('input');
    const logs: string[] = [];
    const r = await selectTeacherRuntime(toy.d, [a, b], { request: 'onnx', log: (l) => logs.push(l) });
    try {
      expect(r.choice).toMatchObject({ used: 'onnx', requested: 'onnx', threads: 1 });
      expect(r.choice.engine_ms).toBeGreaterThan(0);
      expect(r.choice.onnx_ms).toBeGreaterThan(0);
      expect(r.choice.max_rel_diff).toBeLessThan(1e-6);
      expect(toy.set.at(-1)).toBe(r.teacher);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(/^teacher toy-input \(tiny\): forward [\d.]+ ms on the engine, [\d.]+ ms on onnxruntime-node \(1 thread\), outputs within .*: onnx \(--teacher-runtime onnx\)$/);
      // auto keeps whichever was faster on the measuring batch, and says so.
      const auto = await selectTeacherRuntime(toy.d, [a, b], { request: 'auto' });
      const { used, onnx_ms: o, engine_ms: e } = auto.choice;
      if (used === 'onnx') expect(o).toBeLessThanOrEqual(e!); // (recorded to 3 significant digits)
      else {
        expect(auto.choice).toMatchObject({ used: 'engine', reason: 'onnxruntime-node is not faster' });
        expect(o).toBeGreaterThanOrEqual(e!);
      }
      await auto.teacher?.dispose();
      // engine: nothing measured.
      expect((await selectTeacherRuntime(toy.d, [a, b], { request: 'engine' })).choice).toEqual({ used: 'engine', requested: 'engine' });
      expect(toy.set.at(-1)).toBeNull();
    } finally {
      await r.teacher?.dispose();
      toy.dispose();
    }
  });

  it('keeps a teacher on the engine under auto when it cannot be exported, and refuses --teacher-runtime onnx, naming the kernel', async () => {
    const toy = toyDistillation('unmapped');
    const logs: string[] = [];
    try {
      const r = await selectTeacherRuntime(toy.d, [a, b], { request: 'auto', log: (l) => logs.push(l) });
      expect(r.teacher).toBeNull();
      expect(r.choice).toMatchObject({ used: 'engine', requested: 'auto' });
      expect(r.choice.reason).toMatch(/cannot run on onnxruntime-node .*kernel Cumsum/);
      expect(logs[0]).toMatch(/^teacher toy-unmapped \(tiny\): forward on the engine: it cannot run on onnxruntime-node/);
      await expect(selectTeacherRuntime(toy.d, [a, b], { request: 'onnx' })).rejects.toThrow(TeacherRuntimeError);
      await expect(selectTeacherRuntime(toy.d, [a, b], { request: 'onnx' })).rejects.toThrow(/teacher toy-unmapped \(tiny\): --teacher-runtime onnx: .*Cumsum/);
    } finally {
      toy.dispose();
    }
  });

  it('finds batch data baked into the file as a constant (a difference on another batch) and keeps the engine', async () => {
    const toy = toyDistillation('baked');
    try {
      const r = await selectTeacherRuntime(toy.d, [a, b], { request: 'auto' });
      expect(r.teacher).toBeNull();
      expect(r.choice.used).toBe('engine');
      expect(r.choice.reason).toMatch(/onnxruntime-node's bev differs from the engine's by .* of its scale/);
      expect(r.choice.max_rel_diff).toBeGreaterThan(1e-2);
      await expect(selectTeacherRuntime(toy.d, [a, b], { request: 'onnx' })).rejects.toThrow(/--teacher-runtime onnx: onnxruntime-node's bev differs/);
    } finally {
      toy.dispose();
    }
  });
});

describe('selectTeacherRuntime with a cache', () => {
  const a = { x: [1, 2, 3, 4, 5, 6] };
  const b = { x: [-1, 0.5, 2, 3, -4, 1] };

  it('reuses a choice and its export for the same teacher weights, config and threads (no export, no timing), and measures again where one differs', async () => {
    const toy = toyDistillation('input');
    const cache = { dir: join(tmp, 'runtime-cache'), key: { batch: [2, 3] } };
    const logs: string[] = [];
    const select = async (o: { threads?: number; key?: Record<string, unknown> } = {}) => {
      const before = toy.forwards();
      const r = await selectTeacherRuntime(toy.d, [a, b], { request: 'onnx', threads: o.threads ?? 1, cache: { ...cache, ...(o.key ? { key: o.key } : {}) }, log: (l) => logs.push(l) });
      return { ...r, forwards: toy.forwards() - before };
    };
    const opened: OnnxTeacher[] = [];
    try {
      const first = await select();
      opened.push(first.teacher!);
      expect(first.forwards).toBeGreaterThan(0); // traced and timed
      expect(first.choice.reused).toBeUndefined();
      const files = readdirSync(cache.dir).sort();
      expect(files).toHaveLength(2);
      expect(files[0]).toMatch(/^toy-input-[0-9a-f]{16}\.json$/);
      expect(files[1]).toBe(files[0]!.replace(/json$/, 'onnx'));

      const second = await select();
      opened.push(second.teacher!);
      expect(second.forwards, 'no export, no engine forward').toBe(0);
      expect(second.choice).toEqual({ ...first.choice, reused: true });
      expect(toy.set.at(-1)).toBe(second.teacher);
      expect(logs.at(-1)).toMatch(/^teacher toy-input \(tiny\): forward [\d.]+ ms on the engine, [\d.]+ ms on onnxruntime-node \(1 thread\): onnx; the choice of an earlier run with the same teacher weights, config and threads, reused \(.*toy-input-[0-9a-f]{16}\.json\)$/);
      // The reopened export gives the engine's outputs on another batch.
      const out = await second.teacher!.forward(b);
      const engine = tf.tidy(() => toy.d.teacher.model.forward(b, { training: false }).features.bev!.dataSync());
      expect(Array.from(out.features.bev!.dataSync())).toEqual(Array.from(engine).map((v) => expect.closeTo(v, 5)));
      disposeForward(out);

      // Another thread count, another caller key, other weights (another checkpoint): measured again, each kept beside.
      const threads = await select({ threads: 2 });
      opened.push(threads.teacher!);
      expect(threads.forwards).toBeGreaterThan(0);
      expect(threads.choice).toMatchObject({ threads: 2 });
      expect(threads.choice.reused).toBeUndefined();
      const other = await select({ key: { batch: [4, 3] } });
      opened.push(other.teacher!);
      expect(other.forwards).toBeGreaterThan(0);
      tf.tidy(() => toy.w.assign(tf.mul(toy.w, 2)));
      const weights = await select();
      opened.push(weights.teacher!);
      expect(weights.forwards).toBeGreaterThan(0);
      expect(weights.choice.reused).toBeUndefined();
      expect(readdirSync(cache.dir)).toHaveLength(8);
      // ...and each is reused in turn (the first weights back: x·2/2 is exact).
      expect((await select().then((r) => (opened.push(r.teacher!), r))).forwards).toBe(0);
      tf.tidy(() => toy.w.assign(tf.div(toy.w, 2)));
      expect((await select({ threads: 2 }).then((r) => (opened.push(r.teacher!), r))).forwards).toBe(0);
      expect((await select().then((r) => (opened.push(r.teacher!), r))).forwards).toBe(0);
    } finally {
      for (const t of opened) await t?.dispose();
      toy.dispose();
    }
  });

  it('reuses an engine choice, and measures again (saying why) where the entry is unreadable or its export is gone', async () => {
    const dir = join(tmp, 'runtime-cache-engine');
    const logs: string[] = [];
    const unmapped = toyDistillation('unmapped');
    try {
      const first = await selectTeacherRuntime(unmapped.d, [a, b], { request: 'auto', cache: { dir }, log: (l) => logs.push(l) });
      expect(first.choice).toMatchObject({ used: 'engine', requested: 'auto' });
      const before = unmapped.forwards();
      const again = await selectTeacherRuntime(unmapped.d, [a, b], { request: 'auto', cache: { dir }, log: (l) => logs.push(l) });
      expect(unmapped.forwards() - before).toBe(0);
      expect(again.choice).toEqual({ ...first.choice, reused: true });
      expect(logs.at(-1)).toMatch(/^teacher toy-unmapped \(tiny\): forward on the engine: it cannot run on onnxruntime-node .*; the choice of an earlier run .* reused/);
      // A request of its own is a key of its own: onnx measures (and fails: the kernel has no mapping).
      await expect(selectTeacherRuntime(unmapped.d, [a, b], { request: 'onnx', cache: { dir } })).rejects.toThrow(/Cumsum/);
      // An entry that is not JSON: measured again and overwritten.
      const entry = join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!);
      writeFileSync(entry, '{ not json');
      const broken = await selectTeacherRuntime(unmapped.d, [a, b], { request: 'auto', cache: { dir }, log: (l) => logs.push(l) });
      expect(broken.choice.reused).toBeUndefined();
      expect(logs.some((l) => l.includes(`${entry} holds no usable choice`) && l.endsWith('measuring again'))).toBe(true);
      expect(JSON.parse(readFileSync(entry, 'utf8')).choice.used).toBe('engine');
    } finally {
      unmapped.dispose();
    }
    const toy = toyDistillation('input');
    try {
      const first = await selectTeacherRuntime(toy.d, [a, b], { request: 'onnx', cache: { dir }, log: (l) => logs.push(l) });
      await first.teacher!.dispose();
      const onnx = readdirSync(dir).find((f) => f.startsWith('toy-input-') && f.endsWith('.onnx'))!;
      rmSync(join(dir, onnx));
      const again = await selectTeacherRuntime(toy.d, [a, b], { request: 'onnx', cache: { dir }, log: (l) => logs.push(l) });
      expect(again.choice.reused).toBeUndefined();
      expect(again.choice.used).toBe('onnx');
      expect(logs.some((l) => l.includes(`the kept export ${join(dir, onnx)} does not open`))).toBe(true);
      expect(readdirSync(dir)).toContain(onnx); // written again
      await again.teacher!.dispose();
    } finally {
      toy.dispose();
    }
  });
});
