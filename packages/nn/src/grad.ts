import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace } from '@bevzoo/core';

/**
 * Runs `fn` (inside `tf.tidy`) with every gradient tape paused, as PyTorch's `torch.no_grad()`: its ops are not
 * recorded, so tfjs keeps no copy of the tensors their gradients would need, and what it returns has no gradient path
 * to anything it was computed from. For forwards whose result is a target only (BEVDet4D's previous frame).
 */
export function noGrad<T extends tf.TensorContainer>(fn: () => T): T {
  // tfjs records an op when a tape is open and no kernel is running (Engine.isTapeOn); counting one more running
  // kernel pauses the recording without touching the open tapes.
  const state = (tf.engine() as unknown as { state: { kernelDepth: number } }).state;
  state.kernelDepth++;
  try {
    return tf.tidy(fn);
  } finally {
    state.kernelDepth--;
  }
}

/**
 * `fn()`'s tensor with no gradient to anything it was computed from (`noGrad`). Under a kernel trace (an ONNX export,
 * the step benchmark's PyTorch twin) it is copied on the host and reported as such (`KernelTrace.detached`).
 */
export function frozen<T extends tf.Tensor>(fn: () => T): T {
  const t = noGrad(fn);
  const trace = activeKernelTrace();
  if (!trace) return t;
  const copy = tf.tensor(t.dataSync(), t.shape, t.dtype) as T;
  trace.detached(t, copy);
  t.dispose();
  return copy;
}

/**
 * The same values with a zero gradient (PyTorch `.detach()`), recorded on the tape so that a gradient with respect to
 * the input is zeros rather than missing: distillers use it on teacher targets and on attention maps.
 */
export function detach<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: (args[0] as tf.Tensor).clone(),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return f(x) as T;
}
