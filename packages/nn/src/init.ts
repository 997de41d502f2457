import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Rng } from '@bevzoo/core';

/**
 * Seeded weight initialisation. Every layer draws its initial weights from an `Rng` (from
 * `@bevzoo/core`): the one passed in its options, or the module-level default set by `setInitSeed`.
 * The same seed and the same construction order give the same weights.
 */
let defaultRng: Rng = createRng(0);

/** Reset the module-level default generator used by layers constructed without an explicit `rng`. */
export function setInitSeed(seed: number): void {
  defaultRng = createRng(seed);
}

/** The generator a layer uses: the explicit one, or the module-level default. */
export function initRng(rng?: Rng): Rng {
  return rng ?? defaultRng;
}

/** Weight initialisation schemes (PyTorch names). */
export type InitKind =
  /** PyTorch's layer default: kaiming_uniform_(a=√5) → U(±1/√fan_in); bias U(±1/√fan_in). */
  | 'default'
  /** kaiming_normal_(mode='fan_out', nonlinearity='relu'), bias 0 (torchvision ResNet, mmcv Kaiming). */
  | 'kaiming_normal'
  /** kaiming_uniform_(mode='fan_in', nonlinearity='relu'), bias 0. */
  | 'kaiming_uniform'
  /** xavier_uniform_, bias 0. */
  | 'xavier_uniform';

function fill(shape: number[], draw: () => number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = draw();
  return tf.tensor(data, shape, 'float32');
}

export function uniformTensor(shape: number[], bound: number, rng: Rng): tf.Tensor {
  return fill(shape, () => rng.uniform(-bound, bound));
}

export function normalTensor(shape: number[], std: number, rng: Rng): tf.Tensor {
  return fill(shape, () => rng.normal(0, std));
}

/**
 * Initial weight and bias for a layer with the given fans (computed as PyTorch computes them on its own
 * weight layout). Returns new tensors the caller owns.
 */
export function initWeight(kind: InitKind, shape: number[], fanIn: number, fanOut: number, rng: Rng): tf.Tensor {
  switch (kind) {
    case 'default':
      // gain = sqrt(2 / (1 + 5)); bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
      return uniformTensor(shape, 1 / Math.sqrt(fanIn), rng);
    case 'kaiming_normal':
      return normalTensor(shape, Math.sqrt(2 / fanOut), rng);
    case 'kaiming_uniform':
      return uniformTensor(shape, Math.sqrt(2) * Math.sqrt(3 / fanIn), rng);
    case 'xavier_uniform':
      return uniformTensor(shape, Math.sqrt(6 / (fanIn + fanOut)), rng);
  }
}

export function initBias(kind: InitKind, size: number, fanIn: number, rng: Rng): tf.Tensor {
  if (kind === 'default') return uniformTensor([size], fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0, rng);
  return tf.zeros([size]);
}
