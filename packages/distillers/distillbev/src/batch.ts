/**
 * The part of a detection batch the distiller reads: the ground-truth boxes of each sample, in the ego frame
 * after BEV augmentation. A structural type, so that the distiller does not depend on @bevzoo/nuscenes (whose
 * `createLoader` batches satisfy it).
 */
export interface DetBoxes {
  count: number;
  /** [N, 3] geometric centre (x, y, z), metres. */
  center: ArrayLike<number>;
  /** [N, 3] (w, l, h), metres: l along the heading, w across it. */
  size: ArrayLike<number>;
  /** [N] yaw about +z from +x. */
  yaw: ArrayLike<number>;
  /** [N] class index (car, truck, bus, trailer, construction_vehicle, pedestrian, motorcycle, bicycle, traffic_cone, barrier). */
  label: ArrayLike<number>;
}

export interface DetBatch {
  boxes: readonly DetBoxes[];
}
