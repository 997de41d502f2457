/**
 * Records one forward pass kernel by kernel with core's `recordKernels` (the recorder the runner's `bench:step` uses
 * too). A tensor is known by its data and shape (tfjs shares data between a tensor and its reshape; ONNX values do
 * not). An input that no recorded call produced is a leaf: a model variable (named by `namedParameters()`), a named
 * batch input (a tensor of the batch object, or one that the model reported through core's `traceInput`), or a
 * constant.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { recordKernels, type KernelRecording, type LeafOrigin, type RecordedLeaf } from '@bevzoo/core';

export { kernelCounts, type KernelCall, type LeafValues, type TensorRef } from '@bevzoo/core';

/** What a leaf is to the exporter. */
interface LeafKind {
  /** `param`: a model variable (an initializer); `input`: batch data (a graph input); `const`: anything else. */
  kind: 'param' | 'input' | 'const';
  /** The variable's dotted name (param) or the input's name (input). */
  name?: string;
  /** Input axes whose length changes from batch to batch. */
  dynamicAxes?: number[];
}

/** A value the pass reads but no recorded call made. */
export type Leaf = RecordedLeaf<LeafKind>;

export type Recording = KernelRecording<LeafKind>;

const classify = ({ variable, input }: LeafOrigin): LeafKind =>
  variable
    ? { kind: 'param', name: variable.name }
    : input
      ? { kind: 'input', name: input.name, ...(input.dynamicAxes ? { dynamicAxes: input.dynamicAxes } : {}) }
      : { kind: 'const' };

/**
 * Run `fn` (a forward pass returning named tensors) with every kernel of the active backend recorded. `variables` name
 * the model's variables; `batchTensors` name tensors made before the pass that are graph inputs (e.g. `batch.images`).
 */
export function recordForward(fn: () => Record<string, tf.Tensor>, variables: [string, tf.Variable][], batchTensors: [string, tf.Tensor][] = []): Recording {
  return recordKernels(fn, {
    variables,
    batchTensors,
    key: (data, t) => `${data}:${t.dtype}:${t.shape.join('x')}`,
    leaf: classify,
    detachKernel: 'Identity',
  });
}
