/**
 * Geometry in the nuScenes conventions: quaternions (w, x, y, z) with the Hamilton product,
 * right-handed axes x forward, y left, z up; boxes with size (width, length, height), length along the
 * box's heading (local x), width along local y.
 */
export type Vec3 = [number, number, number];
export type Quat = [number, number, number, number]; // w, x, y, z
/** Row-major 3×3 matrix. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

/** A rigid transform p' = R·p + t. */
export interface RigidTransform {
  rotation: Quat;
  translation: Vec3;
}

export function quatMultiply(a: Quat, b: Quat): Quat {
  const [aw, ax, ay, az] = a;
  const [bw, bx, by, bz] = b;
  return [
    aw * bw - ax * bx - ay * by - az * bz,
    aw * bx + ax * bw + ay * bz - az * by,
    aw * by - ax * bz + ay * bw + az * bx,
    aw * bz + ax * by - ay * bx + az * bw,
  ];
}

export function quatConjugate(q: Quat): Quat {
  return [q[0], -q[1], -q[2], -q[3]];
}

export function quatNorm(q: Quat): number {
  return Math.hypot(q[0], q[1], q[2], q[3]);
}

export function quatNormalize(q: Quat): Quat {
  const n = quatNorm(q);
  if (n === 0) throw new RangeError('quatNormalize: zero quaternion');
  return [q[0] / n, q[1] / n, q[2] / n, q[3] / n];
}

/** Inverse of a (not necessarily unit) quaternion. */
export function quatInverse(q: Quat): Quat {
  const n2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3];
  return [q[0] / n2, -q[1] / n2, -q[2] / n2, -q[3] / n2];
}

/** Rotation matrix of a quaternion (normalised first, as pyquaternion does). */
export function quatToMatrix(q: Quat): Mat3 {
  const [w, x, y, z] = quatNormalize(q);
  return [
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ];
}

/** Quaternion of a rotation matrix (Shepperd's method), w ≥ 0. */
export function matrixToQuat(m: Mat3): Quat {
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = m;
  const tr = m00 + m11 + m22;
  let q: Quat;
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    q = [0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s];
  } else if (m00 > m11 && m00 > m22) {
    const s = Math.sqrt(1 + m00 - m11 - m22) * 2;
    q = [(m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s];
  } else if (m11 > m22) {
    const s = Math.sqrt(1 + m11 - m00 - m22) * 2;
    q = [(m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s];
  } else {
    const s = Math.sqrt(1 + m22 - m00 - m11) * 2;
    q = [(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s];
  }
  if (q[0] < 0) q = [-q[0], -q[1], -q[2], -q[3]];
  return quatNormalize(q);
}

/** Rotate a vector by a quaternion: q·v·q⁻¹. */
export function quatRotate(q: Quat, v: Vec3): Vec3 {
  return mat3MulVec(quatToMatrix(q), v);
}

/** Quaternion for a rotation of `yaw` radians about +z. */
export function yawToQuat(yaw: number): Quat {
  return [Math.cos(yaw / 2), 0, 0, Math.sin(yaw / 2)];
}

/** Quaternion from an axis (need not be unit) and an angle in radians. */
export function axisAngleToQuat(axis: Vec3, angle: number): Quat {
  const n = Math.hypot(axis[0], axis[1], axis[2]);
  const s = Math.sin(angle / 2) / n;
  return [Math.cos(angle / 2), axis[0] * s, axis[1] * s, axis[2] * s];
}

/** Yaw of a quaternion as the devkit computes it: atan2(2(xy+wz), w²+x²−y²−z²). */
export function quatYaw(q: Quat): number {
  const [w, x, y, z] = q;
  return Math.atan2(2 * (x * y + w * z), w * w + x * x - y * y - z * z);
}

export function mat3MulVec(m: Mat3, v: Vec3): Vec3 {
  return [
    m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
    m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
    m[6] * v[0] + m[7] * v[1] + m[8] * v[2],
  ];
}

export function mat3Mul(a: Mat3, b: Mat3): Mat3 {
  const r = new Array(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
  return r;
}

export function mat3Transpose(m: Mat3): Mat3 {
  return [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];
}

export function mat3Inverse(m: Mat3): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (det === 0) throw new RangeError('mat3Inverse: singular matrix');
  const inv = 1 / det;
  return [
    A * inv, -(b * i - c * h) * inv, (b * f - c * e) * inv,
    B * inv, (a * i - c * g) * inv, -(a * f - c * d) * inv,
    C * inv, -(a * h - b * g) * inv, (a * e - b * d) * inv,
  ];
}

/** Apply p' = R·p + t. */
export function transformPoint(tf: RigidTransform, p: Vec3): Vec3 {
  const r = quatRotate(tf.rotation, p);
  return [r[0] + tf.translation[0], r[1] + tf.translation[1], r[2] + tf.translation[2]];
}

/** Inverse transform: p = R⁻¹·(p' − t). */
export function inverseTransformPoint(tf: RigidTransform, p: Vec3): Vec3 {
  return quatRotate(quatInverse(tf.rotation), [p[0] - tf.translation[0], p[1] - tf.translation[1], p[2] - tf.translation[2]]);
}

/** a ∘ b: first b, then a. */
export function composeTransforms(a: RigidTransform, b: RigidTransform): RigidTransform {
  return { rotation: quatNormalize(quatMultiply(a.rotation, b.rotation)), translation: transformPoint(a, b.translation) };
}

export function invertTransform(tf: RigidTransform): RigidTransform {
  const qi = quatNormalize(quatInverse(tf.rotation));
  const t = quatRotate(qi, tf.translation);
  return { rotation: qi, translation: [-t[0], -t[1], -t[2]] };
}

/** 4×4 row-major homogeneous matrix of a rigid transform. */
export function transformToMatrix4(tf: RigidTransform): number[] {
  const r = quatToMatrix(tf.rotation);
  const t = tf.translation;
  return [r[0], r[1], r[2], t[0], r[3], r[4], r[5], t[1], r[6], r[7], r[8], t[2], 0, 0, 0, 1];
}

/** Apply a row-major 4×4 matrix to n xyz points stored with `stride` floats per point (in place). */
export function transformPointsInPlace(m: ArrayLike<number>, pts: Float32Array | Float64Array, stride: number): void {
  for (let o = 0; o + 2 < pts.length; o += stride) {
    const x = pts[o]!, y = pts[o + 1]!, z = pts[o + 2]!;
    pts[o] = m[0]! * x + m[1]! * y + m[2]! * z + m[3]!;
    pts[o + 1] = m[4]! * x + m[5]! * y + m[6]! * z + m[7]!;
    pts[o + 2] = m[8]! * x + m[9]! * y + m[10]! * z + m[11]!;
  }
}

/** A 3-D box: centre, size (width, length, height), yaw about +z. */
export interface Box3 {
  center: Vec3;
  size: Vec3; // w, l, h
  yaw: number;
}

/**
 * The 8 corners of a box in the devkit's order (Box.corners): x_corners = l/2·[1,1,1,1,−1,−1,−1,−1],
 * y_corners = w/2·[1,−1,−1,1,1,−1,−1,1], z_corners = h/2·[1,1,−1,−1,1,1,−1,−1]; corners 0–3 are the front face.
 */
export function boxCorners(box: Box3): Vec3[] {
  const [w, l, h] = box.size;
  const xs = [1, 1, 1, 1, -1, -1, -1, -1];
  const ys = [1, -1, -1, 1, 1, -1, -1, 1];
  const zs = [1, 1, -1, -1, 1, 1, -1, -1];
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  const out: Vec3[] = [];
  for (let i = 0; i < 8; i++) {
    const x = (l / 2) * xs[i]!, y = (w / 2) * ys[i]!, z = (h / 2) * zs[i]!;
    out.push([box.center[0] + c * x - s * y, box.center[1] + s * x + c * y, box.center[2] + z]);
  }
  return out;
}

/** A 3-D box with a full rotation (a nuScenes annotation): centre, size (width, length, height), quaternion. */
export interface OrientedBox3 {
  center: Vec3;
  size: Vec3; // w, l, h
  rotation: Quat;
}

/** The 8 corners of a box with a full rotation, in the devkit's Box.corners order (as boxCorners). */
export function orientedBoxCorners(box: OrientedBox3): Vec3[] {
  const [w, l, h] = box.size;
  const R = quatToMatrix(box.rotation);
  const xs = [1, 1, 1, 1, -1, -1, -1, -1], ys = [1, -1, -1, 1, 1, -1, -1, 1], zs = [1, 1, -1, -1, 1, 1, -1, -1];
  const out: Vec3[] = [];
  for (let i = 0; i < 8; i++) {
    const x = (l / 2) * xs[i]!, y = (w / 2) * ys[i]!, z = (h / 2) * zs[i]!;
    out.push([
      R[0] * x + R[1] * y + R[2] * z + box.center[0],
      R[3] * x + R[4] * y + R[5] * z + box.center[1],
      R[6] * x + R[7] * y + R[8] * z + box.center[2],
    ]);
  }
  return out;
}

/** A box moved by a rigid transform (the devkit's Box.rotate then Box.translate): centre R·c + t, rotation q_tf·q. */
export function transformOrientedBox<B extends OrientedBox3>(tf: RigidTransform, box: B): B {
  return { ...box, center: transformPoint(tf, box.center), rotation: quatMultiply(quatNormalize(tf.rotation), box.rotation) };
}

/**
 * pyquaternion's Quaternion.slerp: the rotation `amount` (clamped to [0, 1]) of the way from a to b along the
 * shorter arc; both are normalised first, nearly equal rotations are interpolated linearly and renormalised.
 */
export function quatSlerp(a: Quat, b: Quat, amount: number): Quat {
  let q0 = quatNormalize(a);
  const q1 = quatNormalize(b);
  const t = Math.min(1, Math.max(0, amount));
  let dot = q0[0] * q1[0] + q0[1] * q1[1] + q0[2] * q1[2] + q0[3] * q1[3];
  if (dot < 0) {
    q0 = [-q0[0], -q0[1], -q0[2], -q0[3]];
    dot = -dot;
  }
  if (dot > 0.9995) return quatNormalize(q0.map((v, k) => v + t * (q1[k]! - v)) as Quat);
  const theta0 = Math.acos(dot), sin0 = Math.sin(theta0);
  const theta = theta0 * t, sinT = Math.sin(theta);
  const s0 = Math.cos(theta) - (dot * sinT) / sin0, s1 = sinT / sin0;
  return q0.map((v, k) => s0 * v + s1 * q1[k]!) as Quat;
}

/** The 4 BEV corners (x, y) of a box, counter-clockwise starting front-left. */
export function boxBevCorners(box: Box3): [number, number][] {
  const [w, l] = box.size;
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  const local: [number, number][] = [[l / 2, w / 2], [-l / 2, w / 2], [-l / 2, -w / 2], [l / 2, -w / 2]];
  return local.map(([x, y]) => [box.center[0] + c * x - s * y, box.center[1] + s * x + c * y]);
}

/** Whether two boxes' BEV footprints overlap (separating axes; touching counts as overlapping). */
export function bevBoxesOverlap(a: Box3, b: Box3): boolean {
  const ca = boxBevCorners(a), cb = boxBevCorners(b);
  for (const poly of [ca, cb]) {
    for (let e = 0; e < 2; e++) {
      // The normal of edge e (edges 0 and 1 of a rectangle are perpendicular).
      const nx = poly[e]![1] - poly[e + 1]![1], ny = poly[e + 1]![0] - poly[e]![0];
      let aMin = Infinity, aMax = -Infinity, bMin = Infinity, bMax = -Infinity;
      for (let k = 0; k < 4; k++) {
        const pa = nx * ca[k]![0] + ny * ca[k]![1], pb = nx * cb[k]![0] + ny * cb[k]![1];
        aMin = Math.min(aMin, pa); aMax = Math.max(aMax, pa); bMin = Math.min(bMin, pb); bMax = Math.max(bMax, pb);
      }
      if (aMax < bMin || bMax < aMin) return false;
    }
  }
  return true;
}

/** Whether a point lies inside a box (inclusive), like the devkit's points_in_box. */
export function pointInBox(box: Box3, p: Vec3): boolean {
  const dx = p[0] - box.center[0], dy = p[1] - box.center[1], dz = p[2] - box.center[2];
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  const lx = c * dx + s * dy, ly = -s * dx + c * dy;
  return Math.abs(lx) <= box.size[1] / 2 && Math.abs(ly) <= box.size[0] / 2 && Math.abs(dz) <= box.size[2] / 2;
}

/** Whether an (x, y) point lies inside a box's BEV footprint (inclusive). */
export function pointInBoxBev(box: Box3, x: number, y: number): boolean {
  const dx = x - box.center[0], dy = y - box.center[1];
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  return Math.abs(c * dx + s * dy) <= box.size[1] / 2 && Math.abs(-s * dx + c * dy) <= box.size[0] / 2;
}

/** Wrap an angle to [−π, π). */
export function wrapAngle(a: number): number {
  const p = 2 * Math.PI;
  return ((((a + Math.PI) % p) + p) % p) - Math.PI;
}

/** The determinant of a 3×3 matrix. */
export function mat3Det(m: Mat3): number {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
}

/** Whether a 3×3 matrix is exactly the identity. */
export function isIdentity3(m: ArrayLike<number>): boolean {
  for (let i = 0; i < 9; i++) if (m[i] !== (i % 4 === 0 ? 1 : 0)) return false;
  return true;
}

/** A box in the ego BEV frame: centre, size (w, l, h), yaw, velocity (vx, vy). */
export interface BevBox {
  center: readonly number[];
  size: readonly number[];
  yaw: number;
  velocity: readonly number[];
}

/**
 * A box predicted in the frame after a BEV augmentation `bda` (rotation, scale, flips: p_aug = bda·p) mapped back
 * to the keyframe ego frame: centre, heading direction and velocity through bda⁻¹, the size divided by bda's scale
 * (the cube root of |det|). An identity bda returns the box unchanged.
 */
export function undoBevAugmentation<T extends BevBox>(box: T, bda: ArrayLike<number>): T & { center: Vec3; size: Vec3; velocity: [number, number] } {
  const m = Array.from({ length: 9 }, (_, i) => bda[i]!) as Mat3;
  if (isIdentity3(m)) return box as T & { center: Vec3; size: Vec3; velocity: [number, number] };
  const inv = mat3Inverse(m);
  const scale = Math.cbrt(Math.abs(mat3Det(m)));
  const heading = mat3MulVec(inv, [Math.cos(box.yaw), Math.sin(box.yaw), 0]);
  const v = mat3MulVec(inv, [box.velocity[0]!, box.velocity[1]!, 0]);
  return {
    ...box,
    center: mat3MulVec(inv, [box.center[0]!, box.center[1]!, box.center[2]!]),
    size: [box.size[0]! / scale, box.size[1]! / scale, box.size[2]! / scale],
    yaw: Math.atan2(heading[1], heading[0]),
    velocity: [v[0], v[1]],
  };
}
