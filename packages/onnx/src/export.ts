/**
 * Export a model to ONNX: trace one forward pass kernel by kernel (trace.ts), emit ONNX nodes per kernel (ops.ts),
 * the model's parameters and buffers as initializers named like its state dict, the batch data as named graph inputs
 * and every feature and output of the forward as a graph output of the same name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { withKernelTrace, type ForwardOutput, type TaskModel } from '@bevzoo/core';
import { OnnxExportError } from './errors.js';
import { GraphBuilder, type DType, type Dyn, type Value } from './graph.js';
import { KERNELS, type Ctx } from './ops.js';
import { encodeModel, IR_VERSION, type ModelProto } from './proto.js';
import { kernelCounts, recordForward, type Leaf, type LeafValues, type Recording } from './trace.js';

export const OPSET = 17;
const PRODUCER_VERSION = '0.1.0';

/** A graph input: batch data, with the axes whose length changes between batches. */
export interface OnnxInputInfo {
  name: string;
  /** Shape in the traced batch. */
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  /** Axis → its dim_param (e.g. 0 → 'num_pillars'). */
  dynamicAxes: Record<number, string>;
}

export interface OnnxOutputInfo {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  /** `feature` (ForwardOutput.features) or `output` (ForwardOutput.outputs). */
  kind: 'feature' | 'output';
}

/** One array of data with its shape, as a feed or a result. */
export interface HostTensor {
  data: Float32Array | Int32Array | Uint8Array;
  dims: number[];
  dtype: 'float32' | 'int32' | 'bool';
}

export interface OnnxExport {
  /** The .onnx file. */
  bytes: Uint8Array;
  inputs: OnnxInputInfo[];
  outputs: OnnxOutputInfo[];
  /** The traced batch's feeds and the engine's outputs for it. */
  feeds: Record<string, HostTensor>;
  expected: Record<string, HostTensor>;
  /** tfjs kernels traced, most frequent first. */
  kernels: [string, number][];
  nodes: number;
  initializers: number;
}

export interface ExportOptions {
  /** The model's name (graph name, errors, metadata), e.g. `centerpoint`. */
  name: string;
  /** Written into the model's metadata (bevzoo.<key>). */
  metadata?: Record<string, string>;
  doc?: string;
}

/** A model that can be traced: a task model whose state dict names its variables. */
export type ExportableModel = Pick<TaskModel, 'forward' | 'stateDict' | 'train'>;

/** The tensors of a batch object by field (`batch.<field>`), the graph inputs a model reads directly. */
function batchTensors(batch: unknown): [string, tf.Tensor][] {
  const out: [string, tf.Tensor][] = [];
  if (batch && typeof batch === 'object')
    for (const [k, v] of Object.entries(batch)) if (v instanceof tf.Tensor) out.push([`batch.${k}`, v]);
  return out;
}

function namedOutputs(out: ForwardOutput, where: string): { tensors: Record<string, tf.Tensor>; kinds: Record<string, 'feature' | 'output'> } {
  const tensors: Record<string, tf.Tensor> = {};
  const kinds: Record<string, 'feature' | 'output'> = {};
  for (const [kind, rec] of [['feature', out.features], ['output', out.outputs]] as const) {
    for (const [name, t] of Object.entries(rec ?? {})) {
      if (name in tensors) throw new OnnxExportError(`${where}: forward ${kind} ${name}`, 'feature and output names that differ', `${name} in both`);
      tensors[name] = t;
      kinds[name] = kind;
    }
  }
  return { tensors, kinds };
}

const dimParam = (input: string, axis: number) => (axis === 0 ? `num_${input.split('.').slice(0, -1).join('_') || input}` : `${input}_${axis}`);
const hostDtype = (d: string): 'float32' | 'int32' | 'bool' => (d === 'int32' ? 'int32' : d === 'bool' ? 'bool' : 'float32');

/** Build the ONNX graph of a recording. */
function buildGraph(rec: Recording, kinds: Record<string, 'feature' | 'output'>, opts: ExportOptions): { model: ModelProto; inputs: OnnxInputInfo[]; outputs: OnnxOutputInfo[]; feeds: Record<string, HostTensor>; nodes: number; initializers: number } {
  const g = new GraphBuilder();
  const values = new Map<string, Value>();
  const inputs = new Map<string, { info: OnnxInputInfo; value: Value; leaf: Leaf }>();
  const leafValue = (leaf: Leaf): Value => {
    const hit = values.get(leaf.key);
    if (hit) return hit;
    const dtype = hostDtype(leaf.dtype) as DType;
    let v: Value;
    if (leaf.kind === 'input') {
      const name = leaf.name!;
      const prev = inputs.get(name);
      if (prev) {
        const same = prev.leaf.shape.join() === leaf.shape.join() && prev.leaf.dtype === leaf.dtype && prev.leaf.values.every((x, i) => x === leaf.values[i]);
        if (!same) throw new OnnxExportError(`${opts.name}: input ${name}`, 'the same data wherever the model makes it', `[${prev.leaf.shape}] and [${leaf.shape}] differing`);
        v = prev.value;
      } else {
        const dynAxes = leaf.dynamicAxes ?? [];
        if (dynAxes.length > 1) throw new OnnxExportError(`${opts.name}: input ${name}`, 'at most one varying axis', `axes ${dynAxes}`);
        const axis = dynAxes[0];
        const dyn: Dyn | null = axis === undefined ? null : { axis, factor: 1, p: leaf.shape[axis]!, param: dimParam(name, axis) };
        g.fresh(name);
        v = { name, shape: leaf.shape, dtype, dyn };
        const info: OnnxInputInfo = { name, shape: leaf.shape, dtype: hostDtype(leaf.dtype), dynamicAxes: axis === undefined ? {} : { [axis]: dyn!.param } };
        inputs.set(name, { info, value: v, leaf });
        g.inputs.push(g.valueInfo(name, leaf.shape, dtype, dyn));
      }
    } else {
      const name = g.initializer(leaf.kind === 'param' ? leaf.name! : 'const', leaf.shape, dtype, leaf.values);
      v = { name, shape: leaf.shape, dtype, dyn: null };
    }
    values.set(leaf.key, v);
    return v;
  };
  rec.calls.forEach((call, i) => {
    const where = `${opts.name}: kernel ${call.kernel} (call ${i})`;
    const emit = KERNELS[call.kernel];
    if (!emit) throw new OnnxExportError(where, `a kernel with an ONNX mapping (${Object.keys(KERNELS).length} mapped, see packages/onnx/src/ops.ts)`, `${call.kernel} with inputs ${call.inputs.map(([n, r]) => `${n} [${r.shape}]`).join(', ')}`);
    const byName = new Map(call.inputs);
    const get = (name: string): Value => {
      const r = byName.get(name);
      if (!r) throw new OnnxExportError(where, `input ${name}`, `inputs ${[...byName.keys()].join(', ')}`);
      const v = values.get(r.key);
      if (v) return v;
      const leaf = rec.leaves.get(r.key);
      if (!leaf) throw new OnnxExportError(where, `input ${name} made by an earlier call or a leaf`, 'neither');
      return leafValue(leaf);
    };
    const ctx: Ctx = {
      g,
      call,
      where,
      in: get,
      has: (name) => byName.has(name),
      all: () => call.inputs.map(([n]) => get(n)),
      attr: <T>(name: string) => call.attrs[name] as T,
      out: call.outputs,
      constValues: (name) => {
        const r = byName.get(name);
        const leaf = r && !values.has(r.key) ? rec.leaves.get(r.key) : undefined;
        return leaf && leaf.kind !== 'input' ? leaf.values : null;
      },
      fail: (detail) => {
        throw new OnnxExportError(where, 'a form of the kernel with an ONNX mapping', detail);
      },
    };
    const outs = emit(ctx);
    if (outs.length !== call.outputs.length) throw new OnnxExportError(where, `${call.outputs.length} outputs`, `${outs.length} emitted`);
    call.outputs.forEach((o, k) => values.set(o.key, outs[k]!));
  });
  const outputs: OnnxOutputInfo[] = [];
  for (const [name, ref] of rec.outputs) {
    let v = values.get(ref.key);
    if (!v) {
      const leaf = rec.leaves.get(ref.key);
      if (!leaf) throw new OnnxExportError(`${opts.name}: output ${name}`, 'a value made by a traced kernel', 'none');
      v = leafValue(leaf);
    }
    g.node('Identity', [v.name], [name]);
    g.outputs.push(g.valueInfo(name, ref.shape, v.dtype, v.dyn));
    outputs.push({ name, shape: ref.shape, dtype: hostDtype(ref.dtype), kind: kinds[name] ?? 'output' });
  }
  // Initializers no node reads (e.g. the moments folded into a batch norm's scale and shift).
  const read = new Set(g.nodes.flatMap((n) => n.input));
  const initializer = g.initializers.filter((t) => read.has(t.name));
  const metadata = Object.entries({ ...opts.metadata, model: opts.name, inputs: JSON.stringify([...inputs.values()].map((x) => x.info)) }).map(([k, value]) => ({ key: `bevzoo.${k}`, value }));
  const model: ModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'bevzoo',
    producerVersion: PRODUCER_VERSION,
    ...(opts.doc ? { docString: opts.doc } : {}),
    graph: { name: opts.name, node: g.nodes, initializer, input: g.inputs, output: g.outputs },
    metadataProps: metadata,
  };
  const feeds: Record<string, HostTensor> = {};
  for (const [name, x] of inputs) feeds[name] = { data: x.leaf.values, dims: x.leaf.shape, dtype: x.info.dtype };
  return { model, inputs: [...inputs.values()].map((x) => x.info), outputs, feeds, nodes: g.nodes.length, initializers: initializer.length };
}

/**
 * Export `model` (in evaluation mode) to ONNX by tracing its forward on `batch`. The batch fixes every shape except
 * the axes the model declares varying (e.g. the number of pillars); the batch size is fixed.
 */
export function exportOnnx(model: ExportableModel, batch: unknown, opts: ExportOptions): OnnxExport {
  model.train(false);
  const variables = Object.entries(model.stateDict()).filter((e): e is [string, tf.Variable] => e[1] instanceof tf.Variable);
  let kinds: Record<string, 'feature' | 'output'> = {};
  const rec = recordForward(
    () => {
      const r = namedOutputs(model.forward(batch, { training: false }), opts.name);
      kinds = r.kinds;
      return r.tensors;
    },
    variables,
    batchTensors(batch),
  );
  const built = buildGraph(rec, kinds, opts);
  const bytes = encodeModel(built.model);
  const expected: Record<string, HostTensor> = {};
  for (const [name, ref] of rec.outputs) expected[name] = { data: rec.values.get(name) as LeafValues, dims: ref.shape, dtype: hostDtype(ref.dtype) };
  return { bytes, inputs: built.inputs, outputs: built.outputs, feeds: built.feeds, expected, kernels: kernelCounts(rec), nodes: built.nodes, initializers: built.initializers };
}

class CaptureDone extends Error {}

/**
 * The feeds of `inputs` for another batch: the batch's own tensors, and the tensors the model makes from the batch
 * on the host, captured from its forward under a trace, which stops as soon as all are made (for CenterPoint: once the
 * pillars are cut, before any layer runs).
 */
export function captureFeeds(model: ExportableModel, batch: unknown, inputs: OnnxInputInfo[], where = 'captureFeeds'): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  const own = new Map(batchTensors(batch));
  const wanted = new Set<string>();
  for (const i of inputs) {
    const t = own.get(i.name);
    if (t) feeds[i.name] = { data: t.dataSync() as HostTensor['data'], dims: [...t.shape], dtype: hostDtype(t.dtype) };
    else wanted.add(i.name);
  }
  if (wanted.size === 0) return feeds;
  const trace = {
    detached: () => {},
    input: (name: string, t: tf.Tensor) => {
      if (!wanted.has(name) || name in feeds) return;
      feeds[name] = { data: t.dataSync().slice() as HostTensor['data'], dims: [...t.shape], dtype: hostDtype(t.dtype) };
      if (Object.keys(feeds).filter((k) => wanted.has(k)).length === wanted.size) throw new CaptureDone();
    },
  };
  try {
    tf.tidy(() => withKernelTrace(trace, () => void model.forward(batch, { training: false })));
  } catch (e) {
    if (!(e instanceof CaptureDone)) throw e;
  }
  const missing = [...wanted].filter((n) => !(n in feeds));
  if (missing.length) throw new OnnxExportError(`${where}: inputs`, `the model to make ${[...wanted].join(', ')} from the batch`, `${missing.join(', ')} never made`);
  return feeds;
}
