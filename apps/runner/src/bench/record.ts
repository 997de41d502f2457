/**
 * Records one forward(+loss) pass at the kernel level, for the PyTorch twin of `bench:step`: every kernel that the
 * active backend runs is wrapped (only while recording) so that each top-level call leaves its kernel name, inputs
 * (by data id, shape and dtype), attributes and outputs. The dataflow graph follows data ids: an input that an
 * earlier recorded call produced is an edge; any other input is a leaf, either a model variable (named by
 * `namedParameters()`, trainable or not) or a constant (the batch, tensors made outside kernels), whose values are
 * read at once. The pass runs under core's KernelTrace: ops with a host (JS) form take their tensor form, and a copy
 * made on the host to cut the gradient is recorded as the pseudo-kernel `BevzooDetach` (PyTorch: `.detach()`).
 * The runner does not depend on tfjs-core itself: the tfjs namespace comes from the engine.
 */

/** The pseudo-kernel of a host copy that cuts the gradient (input `x`, one output with its values). */
export const DETACH = 'BevzooDetach';
import { withKernelTrace } from '@bevzoo/core';
import type { Engine } from '@bevzoo/engine';

export type TF = Engine['tf'];
export type Tensor = InstanceType<TF['Tensor']>;
export type Variable = InstanceType<TF['Variable']>;
type KernelConfig = ReturnType<TF['getKernelsForBackend']>[number];
type KernelParams = Parameters<KernelConfig['kernelFunc']>[0];
interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

/** A tensor as the graph knows it: `id` numbers its data (tensors that share data, e.g. a reshape's, share it). */
export interface TensorRef {
  id: number;
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

/** A value the forward reads but no recorded call made. */
export interface Leaf extends TensorRef {
  /** `param`: a trainable variable; `buffer`: a variable that is not trained; `const`: anything else. */
  kind: 'param' | 'buffer' | 'const';
  /** The variable's dotted name (param, buffer). */
  name?: string;
  /**
   * A constant made while the pass ran (not before it, as the batch's tensors are): values the pass computed on
   * the host with tf.tensor. One that depends on the model's variables is work the twin does not replay.
   */
  madeInPass?: boolean;
  values: Float32Array | Int32Array | Uint8Array;
}

export interface RecordedGraph {
  /** The calls the loss depends on, in the order they ran. */
  calls: KernelCall[];
  /** Leaves by id, in the order they were first read. */
  leaves: Leaf[];
  /** The loss (a scalar). */
  output: TensorRef;
  /** Its value in this pass. */
  loss: number;
  /** Calls recorded before pruning (some do not feed the loss, e.g. running-statistics updates). */
  recordedCalls: number;
  backend: string;
}

function cloneAttrs(attrs: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!attrs) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    // Attributes are plain data (numbers, strings, booleans, arrays of them); anything else is kept by its type name.
    out[k] = v === undefined ? null : JSON.parse(JSON.stringify(v, (_, x) => (ArrayBuffer.isView(x) ? Array.from(x as unknown as ArrayLike<number>) : x)));
  }
  return out;
}

/**
 * Run `fn` (a forward pass returning the scalar loss) with every kernel of the active backend recorded, and return
 * the graph of the calls the loss depends on. `fn` runs inside `tf.tidy`; the loss is read (dataSync). The kernel
 * registry is restored afterwards, also when `fn` throws.
 */
export function recordForward(tf: TF, fn: () => Tensor, variables: [string, Variable][]): RecordedGraph {
  const backendName = tf.getBackend();
  const backend = tf.backend() as unknown as { readSync(dataId: object): ArrayLike<number>; dataIdNextNumber?: number };
  // The wasm backend numbers its data ids: those from here on were made during the pass.
  const firstNew = typeof backend.dataIdNextNumber === 'number' ? backend.dataIdNextNumber : Infinity;
  const madeInPass = (dataId: object) => typeof (dataId as { id?: unknown }).id === 'number' && (dataId as { id: number }).id >= firstNew;
  const ids = new Map<object, number>();
  const idOf = (dataId: object): number => {
    let id = ids.get(dataId);
    if (id === undefined) ids.set(dataId, (id = ids.size));
    return id;
  };
  const byData = new Map<object, { name: string; trainable: boolean }>();
  for (const [name, v] of variables) byData.set((v as unknown as TensorInfo).dataId, { name, trainable: v.trainable });
  const produced = new Set<number>();
  const leaves = new Map<number, Leaf>();
  const calls: KernelCall[] = [];
  let depth = 0;
  const ref = (t: TensorInfo): TensorRef => ({ id: idOf(t.dataId), shape: [...t.shape], dtype: t.dtype });
  const readLeaf = (t: TensorInfo, r: TensorRef): void => {
    if (produced.has(r.id) || leaves.has(r.id)) return;
    if (t.dtype === 'string' || t.dtype === 'complex64') throw new Error(`recordForward: a ${t.dtype} input of shape [${t.shape}] cannot be handed to the PyTorch twin`);
    const raw = backend.readSync(t.dataId);
    const values = t.dtype === 'int32' ? Int32Array.from(raw) : t.dtype === 'bool' ? Uint8Array.from(raw) : Float32Array.from(raw);
    const v = byData.get(t.dataId);
    leaves.set(r.id, { ...r, kind: v ? (v.trainable ? 'param' : 'buffer') : 'const', ...(v ? { name: v.name } : madeInPass(t.dataId) ? { madeInPass: true } : {}), values });
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
      for (const o of outputs) produced.add(o.id);
      calls.push({ kernel: cfg.kernelName, inputs, attrs: cloneAttrs(params.attrs as Record<string, unknown>), outputs });
      return out;
    },
  });
  const originals = tf.getKernelsForBackend(backendName);
  for (const cfg of originals) {
    tf.unregisterKernel(cfg.kernelName, backendName);
    tf.registerKernel(wrap(cfg));
  }
  let output: TensorRef | undefined;
  let loss = NaN;
  try {
    const trace = {
      detached: (input: Tensor, copy: Tensor) => {
        const x = input as unknown as TensorInfo;
        const r = ref(x);
        readLeaf(x, r);
        const o = ref(copy as unknown as TensorInfo);
        produced.add(o.id);
        calls.push({ kernel: DETACH, inputs: [['x', r]], attrs: {}, outputs: [o] });
      },
    };
    tf.tidy(() => withKernelTrace(trace, () => {
      const l = fn();
      if (l.rank !== 0) throw new Error(`recordForward: expected a scalar loss, found shape [${l.shape}]`);
      output = ref(l as unknown as TensorInfo);
      loss = l.dataSync()[0]!;
    }));
  } finally {
    for (const cfg of originals) {
      tf.unregisterKernel(cfg.kernelName, backendName);
      tf.registerKernel(cfg);
    }
  }
  if (!output) throw new Error('recordForward: no loss');
  // Keep the calls the loss depends on: walk back from it (a call is needed when one of its outputs is).
  const needed = new Set<number>([output.id]);
  const keep: KernelCall[] = [];
  for (let i = calls.length - 1; i >= 0; i--) {
    const c = calls[i]!;
    if (!c.outputs.some((o) => needed.has(o.id))) continue;
    keep.push(c);
    // An output that shares its input's data (reshape) still needs the call that made that input.
    for (const [, r] of c.inputs) needed.add(r.id);
  }
  keep.reverse();
  const usedLeaves = [...leaves.values()].filter((l) => needed.has(l.id));
  if (!produced.has(output.id) && !leaves.has(output.id)) throw new Error('recordForward: the loss was made by no recorded kernel');
  return { calls: keep, leaves: usedLeaves, output, loss, recordedCalls: calls.length, backend: backendName };
}

/** How many calls of each kernel a graph holds, most frequent first. */
export function kernelCounts(g: RecordedGraph): [string, number][] {
  const n = new Map<string, number>();
  for (const c of g.calls) n.set(c.kernel, (n.get(c.kernel) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}
