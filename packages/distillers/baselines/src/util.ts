import * as tf from '@tensorflow/tfjs-core';
import type { FeatureSpec, ForwardOutput } from '@bevzoo/core';
import { resize2d } from '@bevzoo/nn';
import { BaselineDistillError } from './errors.js';

/** A named NHWC feature of a forward output, checked against its spec's channels (and grid, when `grid`). */
export function featureOf(out: ForwardOutput, side: 'teacher' | 'student', name: string, spec: FeatureSpec, who: string, grid = false): tf.Tensor4D {
  const f = out.features[name];
  if (!f) throw new BaselineDistillError(`${who}: the ${side}'s forward output has no feature "${name}" (it has ${Object.keys(out.features).join(', ') || 'none'})`);
  const [X, Y] = spec.grid.cells as [number, number];
  if (f.rank !== 4 || f.shape[3] !== spec.channels || (grid && (f.shape[1] !== Y || f.shape[2] !== X)))
    throw new BaselineDistillError(`${who}: ${side} feature "${name}" should be NHWC [B, ${grid ? `${Y}, ${X}` : 'Y, X'}, ${spec.channels}] (its spec); found [${f.shape}]`);
  return f as tf.Tensor4D;
}

/** Bilinear resize (align_corners) to [H, W] unless the feature already has it. */
export function resizeTo(x: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  return x.shape[1] === size[0] && x.shape[2] === size[1] ? x : resize2d(x, size, 'linear', true);
}
