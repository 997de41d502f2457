/**
 * The feature-imitation adapters φ (parameters of the distiller, never of the student): student feature → the
 * teacher feature's channels (and grid, for BEV maps).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureSpec, Rng } from '@bevzoo/core';
import { Conv2d, Linear, Module, resize2d } from '@bevzoo/nn';
import { RadOccError } from './errors.js';

export interface FeatureAdapter extends Module {
  forward(x: tf.Tensor): tf.Tensor;
}

/** BEV maps [B, Y, X, C]: bilinear resize (align_corners) to the teacher's cells when they differ, then a 1×1 conv. */
export class BevAdapter extends Conv2d implements FeatureAdapter {
  constructor(inChannels: number, outChannels: number, readonly size: [number, number], rng?: Rng) {
    super(inChannels, outChannels, 1, { rng });
  }

  override forward(x: tf.Tensor): tf.Tensor4D {
    if (x.rank !== 4) throw new RadOccError(`feature adapter: expected a BEV feature NHWC [B, Y, X, C]; found shape [${x.shape}]`);
    return tf.tidy(() => super.forward(x.shape[1] === this.size[0] && x.shape[2] === this.size[1] ? x : resize2d(x, this.size, 'linear', true)));
  }
}

/** Voxel volumes [B, X, Y, Z, C] on the teacher's grid: a linear map of the channels (a 1×1×1 conv). */
export class VoxelAdapter extends Linear implements FeatureAdapter {
  override forward(x: tf.Tensor): tf.Tensor {
    if (x.rank !== 5) throw new RadOccError(`feature adapter: expected a voxel feature [B, X, Y, Z, C]; found shape [${x.shape}]`);
    return super.forward(x);
  }
}

/** The adapter of a student feature imitating a teacher feature (both BEV, or both voxel on one grid). */
export function featureAdapter(student: FeatureSpec, teacher: FeatureSpec, rng: Rng): FeatureAdapter {
  if (student.kind !== teacher.kind || (teacher.kind !== 'bev' && teacher.kind !== 'voxel'))
    throw new RadOccError(`feature imitation pairs two BEV or two voxel features; found a student ${student.kind} and a teacher ${teacher.kind} feature`);
  return teacher.kind === 'bev'
    ? new BevAdapter(student.channels, teacher.channels, [teacher.grid.cells[1]!, teacher.grid.cells[0]!], rng)
    : new VoxelAdapter(student.channels, teacher.channels, { rng });
}
