/**
 * num_lidar_pts as the devkit defines it: LiDAR points (as stored in the .pcd.bin) inside the annotation box,
 * with the box test of @bevzoo/core. The generator and the tests use this one function.
 */
import { pointInBox, quatToMatrix, quatYaw, type Box3, type Quat, type Vec3 } from '@bevzoo/core';

export interface PoseRecord { translation: Vec3; rotation: Quat }

/** Points (n × `stride` floats, xyz first, sensor frame) → global frame through sensor→ego and ego→global. */
export function sensorPointsToGlobal(points: Float32Array, stride: number, cs: PoseRecord, ep: PoseRecord): Float64Array {
  const A = quatToMatrix(cs.rotation), B = quatToMatrix(ep.rotation);
  const n = Math.floor(points.length / stride);
  const out = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const x = points[i * stride]!, y = points[i * stride + 1]!, z = points[i * stride + 2]!;
    const ex = A[0] * x + A[1] * y + A[2] * z + cs.translation[0];
    const ey = A[3] * x + A[4] * y + A[5] * z + cs.translation[1];
    const ez = A[6] * x + A[7] * y + A[8] * z + cs.translation[2];
    out[i * 3] = B[0] * ex + B[1] * ey + B[2] * ez + ep.translation[0];
    out[i * 3 + 1] = B[3] * ex + B[4] * ey + B[5] * ez + ep.translation[1];
    out[i * 3 + 2] = B[6] * ex + B[7] * ey + B[8] * ez + ep.translation[2];
  }
  return out;
}

/** The Box3 of an annotation record (yaw-only rotation, as the generator writes). */
export function annotationBox(ann: { translation: Vec3; size: Vec3; rotation: Quat }): Box3 {
  return { center: ann.translation, size: ann.size, yaw: quatYaw(ann.rotation) };
}

/** Number of points (global frame, xyz triples) inside each box. */
export function countPointsInBoxes(global: Float64Array, boxes: readonly Box3[]): number[] {
  const n = global.length / 3;
  const p: Vec3 = [0, 0, 0];
  return boxes.map((box) => {
    const r = Math.hypot(box.size[0], box.size[1]) / 2 + 1e-6;
    const r2 = r * r, cx = box.center[0], cy = box.center[1];
    let count = 0;
    for (let i = 0; i < n; i++) {
      const dx = global[i * 3]! - cx, dy = global[i * 3 + 1]! - cy;
      if (dx * dx + dy * dy > r2) continue;
      p[0] = global[i * 3]!; p[1] = global[i * 3 + 1]!; p[2] = global[i * 3 + 2]!;
      if (pointInBox(box, p)) count++;
    }
    return count;
  });
}
