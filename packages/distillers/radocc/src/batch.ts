/**
 * The part of a batch RadOcc reads (a structural type: @bevzoo/nuscenes' `Batch` satisfies it, so the distiller does
 * not depend on the data package).
 */
export interface OccDistillBatch {
  /** [H, W] of the batch images: the pixels rays go through. */
  imageSize: readonly [number, number];
  /** [B, 6, 3, 3] intrinsics of the un-augmented (resized) images. */
  intrinsics: ArrayLike<number>;
  /** [B, 6, 4, 4] camera → ego, before bda. */
  sensor2ego: ArrayLike<number>;
  /** [B, 6, 3, 3] image augmentation (pixel_aug = postAug · [u, v, 1]). */
  postAug: ArrayLike<number>;
  /** [B, 3, 3] BEV augmentation (the models' logits live in this augmented ego frame). */
  bda: ArrayLike<number>;
  /** Per sample: x, y, z, intensity, Δt in the ego frame after bda; the Δt = 0 (keyframe) points pick the rays (RDC, RSC). */
  points?: readonly Float32Array[];
  /** [B, 6, H, W] segment id per pixel of the augmented images, ≤ 0 = none (RSC affinity; loader option `segments`). */
  segments?: ArrayLike<number>;
  /** Occ3D labels [B, 200, 200, 16] each, flipped with the bda (the voxel KL's camera mask). */
  occ?: { semantics: ArrayLike<number>; maskCamera: ArrayLike<number> };
}
