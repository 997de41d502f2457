/**
 * Records one forward(+loss) pass at the kernel level, for the PyTorch twin of `bench:step`, with core's
 * `recordKernels` (the recorder `@bevzoo/onnx`'s exporter uses too). A tensor is known by its data id alone (tensors
 * that share data, e.g. a reshape's, are one value; the twin reshapes where shapes differ). An input that no recorded
 * call produced is a leaf: a model variable (named by `namedParameters()`, trainable or not) or a constant (the
 * batch, tensors made outside kernels). A copy made on the host to cut the gradient is recorded as the pseudo-kernel
 * `BevzooDetach` (PyTorch: `.detach()`). The runner does not depend on tfjs-core itself: the tfjs namespace comes
 * from the engine.
 */
import { recordKernels, type KernelCall, type RecordedLeaf, type TensorRef } from '@bevzoo/core';
import type { Engine } from '@bevzoo/engine';

export { kernelCounts, type KernelCall, type TensorRef } from '@bevzoo/core';

/** The pseudo-kernel of a host copy that cuts the gradient (input `x`, one output with its values). */
export const DETACH = 'BevzooDetach';

export type TF = Engine['tf'];
export type Tensor = InstanceType<TF['Tensor']>;
export type Variable = InstanceType<TF['Variable']>;

/** What a leaf is to the twin. */
interface LeafKind {
  /** `param`: a trainable variable; `buffer`: a variable that is not trained; `const`: anything else. */
  kind: 'param' | 'buffer' | 'const';
  /** The variable's dotted name (param, buffer). */
  name?: string;
  /**
   * A constant made while the pass ran (not before it, as the batch's tensors are): values the pass computed on
   * the host with tf.tensor. One that depends on the model's variables is work the twin does not replay.
   */
  madeInPass?: boolean;
}

/** A value the forward reads but no recorded call made; its key is its data id's number (digits only). */
export type Leaf = RecordedLeaf<LeafKind>;

export interface RecordedGraph {
  /** The calls the loss depends on, in the order they ran. */
  calls: KernelCall[];
  /** Leaves in the order they were first read. */
  leaves: Leaf[];
  /** The loss (a scalar). */
  output: TensorRef;
  /** Its value in this pass. */
  loss: number;
  /** Calls recorded before pruning (some do not feed the loss, e.g. running-statistics updates). */
  recordedCalls: number;
  backend: string;
}

/**
 * Run `fn` (a forward pass returning the scalar loss) with every kernel of the active backend recorded, and return
 * the graph of the calls the loss depends on. `fn` runs inside `tf.tidy`; the loss is read.
 */
export function recordForward(tf: TF, fn: () => Tensor, variables: [string, Variable][]): RecordedGraph {
  const backend = tf.backend() as unknown as { dataIdNextNumber?: number };
  // The wasm backend numbers its data ids: those from here on were made during the pass.
  const firstNew = typeof backend.dataIdNextNumber === 'number' ? backend.dataIdNextNumber : Infinity;
  const madeInPass = (dataId: object) => typeof (dataId as { id?: unknown }).id === 'number' && (dataId as { id: number }).id >= firstNew;
  const rec = recordKernels<LeafKind>(
    () => {
      const l = fn();
      if (l.rank !== 0) throw new Error(`recordForward: expected a scalar loss, found shape [${l.shape}]`);
      return { loss: l };
    },
    {
      variables,
      key: (data) => String(data),
      leaf: ({ variable, dataId }) =>
        variable ? { kind: variable.trainable ? 'param' : 'buffer', name: variable.name } : { kind: 'const', ...(madeInPass(dataId) ? { madeInPass: true } : {}) },
      detachKernel: DETACH,
    },
  );
  const output = rec.outputs[0]![1];
  if (rec.leaves.has(output.key)) throw new Error('recordForward: the loss was made by no recorded kernel');
  return { calls: rec.calls, leaves: [...rec.leaves.values()], output, loss: rec.values.get('loss')![0]!, recordedCalls: rec.recordedCalls, backend: rec.backend };
}
