import type * as tf from '@tensorflow/tfjs-core';

/**
 * Kernel-level tracing: a tool that records a forward pass kernel by kernel (the runner's `bench:step`, which writes
 * a PyTorch twin of a model from it) sets a trace while the pass runs. With a trace active:
 * - ops that compute on the host in JS (a loop inside tf.customGrad that reads its inputs and makes its output with
 *   tf.tensor, e.g. BEVPool's 'host' form) take their pure-tensor form, so that every step of the pass is a kernel;
 * - a copy made on the host to cut the gradient (a stop-gradient) reports itself through `detached`.
 * Without a trace (training, evaluation) nothing changes.
 */
export interface KernelTrace {
  /** `copy` holds the values of `input`, copied on the host: the same values, no gradient to `input`. */
  detached(input: tf.Tensor, copy: tf.Tensor): void;
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
