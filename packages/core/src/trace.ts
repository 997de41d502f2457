import * as tf from '@tensorflow/tfjs-core';
import { BevzooError } from './errors.js';

/**
 * Kernel-level tracing: a tool that records a forward pass kernel by kernel (`recordKernels` below: the ONNX exporter
 * of `@bevzoo/onnx`, the runner's `bench:step`, which writes a PyTorch twin of a model from it) sets a trace while the
 * pass runs. With a trace active:
 * - ops that compute on the host in JS (a loop inside tf.customGrad that reads its inputs and makes its output with
 *   tf.tensor, e.g. BEVPool's 'host' form) take their pure-tensor form, so that every step of the pass is a kernel;
 * - a copy made on the host to cut the gradient (a stop-gradient) reports itself through `detached`;
 * - a tensor made on the host from the batch (e.g. the pillars cut from the points) reports itself through `input`
 *   with a name, so that an exporter (`@bevzoo/onnx`) makes it a named graph input rather than a constant, and the
 *   host computation that would otherwise follow it (centres, masks, scatter indices) takes its tensor form.
 * Without a trace (training, evaluation) nothing changes.
 */
export interface KernelTrace {
  /** `copy` holds the values of `input`, copied on the host: the same values, no gradient to `input`. */
  detached(input: tf.Tensor, copy: tf.Tensor): void;
  /**
   * `tensor` holds batch data named `name` (the same name for the same data wherever it is made again);
   * `dynamicAxes` are the axes whose length changes from batch to batch (e.g. the number of pillars).
   */
  input?(name: string, tensor: tf.Tensor, opts?: { dynamicAxes?: number[] }): void;
}

/**
 * A tensor of batch data made on the host: `make()`, reported to the active trace (if any) as the input `name`.
 * Outside a trace this is `make()`.
 */
export function traceInput<T extends tf.Tensor>(name: string, make: () => T, opts?: { dynamicAxes?: number[] }): T {
  const t = make();
  active?.input?.(name, t, opts);
  return t;
}

let active: KernelTrace | null = null;

/** The trace of the pass running now, or null (no kernel-level recording). */
export function activeKernelTrace(): KernelTrace | null {
  return active;
}

/** Run `fn` with `trace` active (restored afterwards, also when `fn` throws). */
export function withKernelTrace<T>(trace: KernelTrace, fn: () => T): T {
  const prev = active;
  active = trace;
  try {
    return fn();
  } finally {
    active = prev;
  }
}

type KernelConfig = ReturnType<typeof tf.getKernelsForBackend>[number];
type KernelParams = Parameters<KernelConfig['kernelFunc']>[0];
interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

/** A tensor as a recording knows it: `key` (made by `RecordKernelsOptions.key`) names its data. */
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

/** What a recording knows of a value the pass reads but no recorded call made: `RecordKernelsOptions.leaf` classifies it. */
export interface LeafOrigin {
  /** The backend's data id of the tensor. */
  dataId: object;
  /** The model variable holding this data (`variables`), if one does. */
  variable?: { name: string; trainable: boolean };
  /** The batch input holding this data (`batchTensors`, or reported through `traceInput`), if one does. */
  input?: { name: string; dynamicAxes?: number[] };
}

/** A leaf: its ref, what `leaf` made of its origin, and its values (read when the pass first read it). */
export type RecordedLeaf<L> = TensorRef & L & { values: LeafValues };

export interface RecordKernelsOptions<L> {
  /** The model's variables by name (a variable's data read by the pass is a leaf with `origin.variable`). */
  variables: [string, tf.Variable][];
  /** Tensors made before the pass that are batch inputs (e.g. `batch.images`): leaves with `origin.input`. */
  batchTensors?: [string, tf.Tensor][];
  /**
   * A tensor's key from `data`, the number of its data id (0, 1, … in the order first seen; tfjs shares data between
   * a tensor and its reshape), and its shape and dtype: tensors with equal keys are one value to the consumer.
   */
  key(data: number, t: { shape: readonly number[]; dtype: string }): string;
  /** What a leaf is (its kind, its name…): fields added to its ref and values. */
  leaf(origin: LeafOrigin): L;
  /** The kernel name a host copy that cuts the gradient (`KernelTrace.detached`) is recorded under. */
  detachKernel: string;
}

export interface KernelRecording<L> {
  /** The calls the named results depend on, in the order they ran. */
  calls: KernelCall[];
  /** The leaves those calls and results read, by key, in the order they were first read. */
  leaves: Map<string, RecordedLeaf<L>>;
  /** The named results of the pass. */
  outputs: [string, TensorRef][];
  /** The values of the named results in this pass. */
  values: Map<string, LeafValues>;
  /** Calls recorded before pruning (some feed no result, e.g. running-statistics updates). */
  recordedCalls: number;
  backend: string;
}

function cloneAttrs(attrs: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!attrs) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    // Attributes are plain data (numbers, strings, booleans, arrays of them); typed arrays become arrays.
    out[k] = v === undefined ? null : JSON.parse(JSON.stringify(v, (_, x) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x)));
  }
  return out;
}

/**
 * Record one pass kernel by kernel: every kernel of the active backend is wrapped while `fn` (a forward pass returning
 * named tensors) runs, so that each top-level call leaves its kernel name, inputs, attributes and outputs; a kernel
 * built from other kernels counts once. An input that no recorded call produced is a leaf, whose values are read at
 * once and which `opts.leaf` classifies (a variable, a batch input, anything else). The pass runs under a KernelTrace
 * (ops with a host form take their tensor form; host copies that cut the gradient are recorded as
 * `opts.detachKernel`; `traceInput` names batch inputs) inside `tf.tidy`, and the results are read. Only the calls
 * the results depend on are kept. The kernel registry is restored afterwards, also when `fn` throws.
 */
export function recordKernels<L>(fn: () => Record<string, tf.Tensor>, opts: RecordKernelsOptions<L>): KernelRecording<L> {
  const backendName = tf.getBackend();
  const backend = tf.backend() as unknown as { readSync(dataId: object): ArrayLike<number> };
  const dataNumbers = new Map<object, number>();
  const ref = (t: TensorInfo): TensorRef => {
    let n = dataNumbers.get(t.dataId);
    if (n === undefined) dataNumbers.set(t.dataId, (n = dataNumbers.size));
    return { key: opts.key(n, t), shape: [...t.shape], dtype: t.dtype };
  };
  const variables = new Map<object, { name: string; trainable: boolean }>();
  for (const [name, v] of opts.variables) variables.set((v as unknown as TensorInfo).dataId, { name, trainable: v.trainable });
  const inputs = new Map<object, { name: string; dynamicAxes?: number[] }>();
  for (const [name, t] of opts.batchTensors ?? []) inputs.set((t as unknown as TensorInfo).dataId, { name });
  const produced = new Set<string>();
  const leaves = new Map<string, RecordedLeaf<L>>();
  const calls: KernelCall[] = [];
  let depth = 0;
  const readValues = (t: TensorInfo): LeafValues => {
    const raw = backend.readSync(t.dataId);
    return t.dtype === 'int32' ? Int32Array.from(raw) : t.dtype === 'bool' ? Uint8Array.from(raw) : Float32Array.from(raw);
  };
  const readLeaf = (t: TensorInfo, r: TensorRef): void => {
    if (produced.has(r.key) || leaves.has(r.key)) return;
    if (t.dtype === 'string' || t.dtype === 'complex64')
      throw new BevzooError(`kernel trace: expected float32, int32 or bool tensors, found a ${t.dtype} input of shape [${t.shape}]`, { dtype: t.dtype, shape: [...t.shape] });
    const variable = variables.get(t.dataId);
    const input = inputs.get(t.dataId);
    const origin: LeafOrigin = { dataId: t.dataId, ...(variable ? { variable } : {}), ...(input ? { input } : {}) };
    leaves.set(r.key, { ...r, ...opts.leaf(origin), values: readValues(t) });
  };
  const wrap = (cfg: KernelConfig): KernelConfig => ({
    ...cfg,
    kernelFunc: (params: KernelParams) => {
      if (depth > 0) return cfg.kernelFunc(params); // a kernel built from other kernels: only the outer call counts
      const ins: [string, TensorRef][] = [];
      for (const [name, t] of Object.entries(params.inputs)) {
        if (!t) continue;
        const r = ref(t as TensorInfo);
        readLeaf(t as TensorInfo, r);
        ins.push([name, r]);
      }
      depth++;
      let out: ReturnType<KernelConfig['kernelFunc']>;
      try {
        out = cfg.kernelFunc(params);
      } finally {
        depth--;
      }
      const outputs = ((Array.isArray(out) ? out : [out]) as TensorInfo[]).map(ref);
      for (const o of outputs) produced.add(o.key);
      calls.push({ kernel: cfg.kernelName, inputs: ins, attrs: cloneAttrs(params.attrs as Record<string, unknown>), outputs });
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
    const trace: KernelTrace = {
      detached: (input, copy) => {
        const x = input as unknown as TensorInfo;
        const r = ref(x);
        readLeaf(x, r);
        const o = ref(copy as unknown as TensorInfo);
        produced.add(o.key);
        calls.push({ kernel: opts.detachKernel, inputs: [['x', r]], attrs: {}, outputs: [o] });
      },
      input: (name, t, o) => {
        inputs.set((t as unknown as TensorInfo).dataId, { name, ...(o?.dynamicAxes ? { dynamicAxes: o.dynamicAxes } : {}) });
      },
    };
    tf.tidy(() =>
      withKernelTrace(trace, () => {
        for (const [name, t] of Object.entries(fn())) {
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
  // Keep the calls the results depend on: walk back (a call is needed when one of its outputs is; an output that
  // shares its input's data, a reshape, still needs the call that made that input).
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
  return { calls: keep, leaves: used, outputs, values, recordedCalls: calls.length, backend: backendName };
}

/** How many calls of each kernel a recording holds, most frequent first. */
export function kernelCounts(r: { calls: readonly KernelCall[] }): [string, number][] {
  const n = new Map<string, number>();
  for (const c of r.calls) n.set(c.kernel, (n.get(c.kernel) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/**
 * tfjs's padding of a 2-D window kernel (conv, pooling; NHWC) from its `pad` and `dimRoundingMode` attributes:
 * [top, bottom, left, right], for writers of the same computation elsewhere (the ONNX exporter, the PyTorch twin). What
 * they cannot write (a `dimRoundingMode`, an unknown `pad`) goes to the writer's `fail`.
 */
export function windowPadding(
  kernel: { attr(name: string): unknown; fail(detail: string): never },
  inH: number, inW: number, k: [number, number], s: [number, number], d: [number, number], outH: number, outW: number,
): [number, number, number, number] {
  const pad = kernel.attr('pad') as unknown;
  const rounding = kernel.attr('dimRoundingMode');
  if (rounding != null) kernel.fail(`dimRoundingMode ${String(rounding)}`);
  if (pad === 'valid') return [0, 0, 0, 0];
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  if (Array.isArray(pad)) return [pad[1][0], pad[1][1], pad[2][0], pad[2][1]];
  if (pad === 'same') {
    const total = (o: number, st: number, kk: number, dd: number, i: number) => Math.max((o - 1) * st + (kk - 1) * dd + 1 - i, 0);
    const th = total(outH, s[0], k[0], d[0], inH);
    const tw = total(outW, s[1], k[1], d[1], inW);
    return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  }
  return kernel.fail(`pad ${JSON.stringify(pad)}`);
}
