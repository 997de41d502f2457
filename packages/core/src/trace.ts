import type * as tf from '@tensorflow/tfjs-core';

/**
 * Kernel-level tracing: a tool that records a forward pass kernel by kernel (the runner's `bench:step`, which writes
 * a PyTorch twin of a model from it) sets a trace while the pass runs. With a trace active:
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
