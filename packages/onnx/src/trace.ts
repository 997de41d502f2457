/**
 * Records one forward pass kernel by kernel (the approach of the runner's `bench:step` recorder): every kernel of the
 * active backend is wrapped while the pass runs, so that each top-level call leaves its kernel name, inputs, attributes
 * and outputs. A tensor is known by its data and shape (tfjs shares data between a tensor and its reshape). An input
 * that no recorded call produced is a leaf: a model variable (named by `namedParameters()`), a named batch input (a
 * tensor of the batch object, or one that the model reported through core's `traceInput`), or a constant (values read
 * at once). The pass runs under core's KernelTrace, so ops with a host (JS) form take their tensor form.
 */
import * as tf from '@tensorflow/tfjs-core';
import { withKernelTrace } from '@bevzoo/core';
import { OnnxExportError } from './errors.js';

type KernelConfig = ReturnType<typeof tf.getKernelsForBackend>[number];
type KernelParams = Parameters<KernelConfig['kernelFunc']>[0];
interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

/** A tensor as the recording knows it: `key` names its data and shape (equal keys, equal values). */
export interface TensorRef {
  key: string;
  shape: number[];
  dtype: string;
}

/** One kernel call: inputs in the order the kernel names them (variadic kernels name them '0', '1', …). */
export interface KernelCall {
  kernel: string;
  inputs: [string, TensorRef][];
  attrs: Record<string, unknown>;
  outputs: TensorRef[];
}

export type LeafValues = Float32Array | Int32Array | Uint8Array;

/** A value the pass reads but no recorded call made. */
export interface Leaf extends TensorRef {
  /** `param`: a model variable; `input`: batch data (a graph input); `const`: anything else. */
  kind: 'param' | 'input' | 'const';
  /** The variable's dotted name (param) or the input's name (input). */
  name?: string;
  /** Input axes whose length changes from batch to batch. */
  dynamicAxes?: number[];
  values: LeafValues;
}

export interface Recording {
  calls: KernelCall[];
  /** Leaves by key, in the order they were first read. */
  leaves: Map<string, Leaf>;
  /** The named results of the pass. */
  outputs: [string, TensorRef][];
  /** The values of the named results in this pass (for comparisons). */
  values: Map<string, LeafValues>;
  backend: string;
}

function cloneAttrs(attrs: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!attrs) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    out[k] = v === undefined ? null : JSON.parse(JSON.stringify(v, (_, x) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x)));
  }
  return out;
}

/**
 * Run `fn` (a forward pass returning named tensors) with every kernel of the active backend recorded. `variables` name
 * the model's variables; `batchTensors` name tensors made before the pass that are graph inputs (e.g. `batch.images`).
 * The kernel registry is restored afterwards, also when `fn` throws.
 */
export function recordForward(
  fn: () => Record<string, tf.Tensor>,
  variables: [string, tf.Variable][],
  batchTensors: [string, tf.Tensor][] = [],
): Recording {
  const backendName = tf.getBackend();
  const backend = tf.backend() as unknown as { readSync(dataId: object): ArrayLike<number> };
  const dataIds = new Map<object, number>();
  const keyOf = (t: TensorInfo): string => {
    let id = dataIds.get(t.dataId);
    if (id === undefined) dataIds.set(t.dataId, (id = dataIds.size));
    return `${id}:${t.dtype}:${t.shape.join('x')}`;
  };
  const ref = (t: TensorInfo): TensorRef => ({ key: keyOf(t), shape: [...t.shape], dtype: t.dtype });
  const variableByData = new Map<object, string>();
  for (const [name, v] of variables) variableByData.set((v as unknown as TensorInfo).dataId, name);
  const named = new Map<object, { name: string; dynamicAxes?: number[] }>();
  for (const [name, t] of batchTensors) named.set((t as unknown as TensorInfo).dataId, { name });
  const produced = new Set<string>();
  const leaves = new Map<string, Leaf>();
  const calls: KernelCall[] = [];
  let depth = 0;
  const readValues = (t: TensorInfo): LeafValues => {
    const raw = backend.readSync(t.dataId);
    return t.dtype === 'int32' ? Int32Array.from(raw) : t.dtype === 'bool' ? Uint8Array.from(raw) : Float32Array.from(raw);
  };
  const readLeaf = (t: TensorInfo, r: TensorRef): void => {
    if (produced.has(r.key) || leaves.has(r.key)) return;
    if (t.dtype === 'string' || t.dtype === 'complex64') throw new OnnxExportError('trace', `float32, int32 or bool tensors`, `a ${t.dtype} input of shape [${t.shape}]`);
    const v = variableByData.get(t.dataId);
    const n = named.get(t.dataId);
    const leaf: Leaf = v
      ? { ...r, kind: 'param', name: v, values: readValues(t) }
      : n
        ? { ...r, kind: 'input', name: n.name, ...(n.dynamicAxes ? { dynamicAxes: n.dynamicAxes } : {}), values: readValues(t) }
        : { ...r, kind: 'const', values: readValues(t) };
    leaves.set(r.key, leaf);
  };
  const wrap = (cfg: KernelConfig): KernelConfig => ({
    ...cfg,
    kernelFunc: (params: KernelParams) => {
      if (depth > 0) return cfg.kernelFunc(params); // a kernel built from other kernels: only the outer call counts
      const inputs: [string, TensorRef][] = [];
      for (const [name, t] of Object.entries(params.inputs)) {
        if (!t) continue;
        const r = ref(t as TensorInfo);
        readLeaf(t as TensorInfo, r);
        inputs.push([name, r]);
      }
      depth++;
      let out: ReturnType<KernelConfig['kernelFunc']>;
      try {
        out = cfg.kernelFunc(params);
      } finally {
        depth--;
      }
      const outs = (Array.isArray(out) ? out : [out]) as TensorInfo[];
      const outputs = outs.map(ref);
      for (const o of outputs) produced.add(o.key);
      calls.push({ kernel: cfg.kernelName, inputs, attrs: cloneAttrs(params.attrs as Record<string, unknown>), outputs });
      return out;
    },
  });
  const originals = tf.getKernelsForBackend(backendName);
  for (const cfg of originals) {
    tf.unregisterKernel(cfg.kernelName, backendName);
    tf.registerKernel(wrap(cfg));
  }
  const outputs: [string, TensorRef][] = [];
  const values = new Map<string, LeafValues>();
  try {
    const trace = {
      detached: (input: tf.Tensor, copy: tf.Tensor) => {
        const x = input as unknown as TensorInfo;
        const r = ref(x);
        readLeaf(x, r);
        const o = ref(copy as unknown as TensorInfo);
        produced.add(o.key);
        calls.push({ kernel: 'Identity', inputs: [['x', r]], attrs: {}, outputs: [o] });
      },
      input: (name: string, t: tf.Tensor, opts?: { dynamicAxes?: number[] }) => {
        named.set((t as unknown as TensorInfo).dataId, { name, ...(opts?.dynamicAxes ? { dynamicAxes: opts.dynamicAxes } : {}) });
      },
    };
    tf.tidy(() =>
      withKernelTrace(trace, () => {
        const res = fn();
        for (const [name, t] of Object.entries(res)) {
          const info = t as unknown as TensorInfo;
          const r = ref(info);
          readLeaf(info, r);
          outputs.push([name, r]);
          values.set(name, readValues(info));
        }
      }),
    );
  } finally {
    for (const cfg of originals) {
      tf.unregisterKernel(cfg.kernelName, backendName);
      tf.registerKernel(cfg);
    }
  }
  // Keep the calls the outputs depend on (walking back; a call is needed when one of its outputs is).
  const needed = new Set<string>(outputs.map(([, r]) => r.key));
  const keep: KernelCall[] = [];
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i]!;
    if (!c.outputs.some((o) => needed.has(o.key))) continue;
    keep.push(c);
    for (const [, r] of c.inputs) needed.add(r.key);
  }
  keep.reverse();
  const used = new Map([...leaves].filter(([k]) => needed.has(k)));
  return { calls: keep, leaves: used, outputs, values, backend: backendName };
}

/** How many calls of each kernel a recording holds, most frequent first. */
export function kernelCounts(r: Recording): [string, number][] {
  const n = new Map<string, number>();
  for (const c of r.calls) n.set(c.kernel, (n.get(c.kernel) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}
