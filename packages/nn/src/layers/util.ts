import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../errors.js';

export type Pair = number | [number, number];
export type Triple = number | [number, number, number];

export function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

export function triple(v: Triple): [number, number, number] {
  return typeof v === 'number' ? [v, v, v] : v;
}

/** Throw a ShapeError unless `x` has the given rank and (when given) last-axis size. */
export function checkInput(where: string, x: tf.Tensor, rank: number | number[], channels?: number, layout = 'NHWC'): void {
  const ranks = typeof rank === 'number' ? [rank] : rank;
  const c = x.shape[x.rank - 1];
  if (!ranks.includes(x.rank) || (channels !== undefined && c !== channels)) {
    throw new ShapeError(where, `rank ${ranks.join(' or ')} (${layout})${channels !== undefined ? ` with ${channels} channels` : ''}`, `shape [${x.shape}]`);
  }
}
