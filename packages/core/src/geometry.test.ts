import { describe, expect, it } from 'vitest';
import {
  axisAngleToQuat, boxCorners, orientedBoxCorners, quatRotate, quatSlerp, quatYaw, transformOrientedBox, yawToQuat,
  type OrientedBox3, type Quat, type Vec3,
} from './geometry.js';

const close = (a: readonly number[], b: readonly number[], digits = 12) => a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, digits));

describe('quatSlerp', () => {
  it('interpolates the angle about a fixed axis, with the amount clamped to [0, 1]', () => {
    const a = yawToQuat(0.2), b = yawToQuat(1.4);
    for (const t of [0, 0.25, 0.5, 0.9, 1]) expect(quatYaw(quatSlerp(a, b, t))).toBeCloseTo(0.2 + 1.2 * t, 12);
    close(quatSlerp(a, b, -3), a);
    close(quatSlerp(a, b, 7), b);
  });

  it('takes the shorter arc (q and −q are the same rotation) and normalises its inputs', () => {
    const a = yawToQuat(3.0), b = yawToQuat(-3.0); // 0.28 rad apart across ±π
    const mid = quatSlerp(a, b, 0.5);
    expect(Math.abs(quatYaw(mid))).toBeCloseTo(Math.PI, 12);
    const scaled = quatSlerp([2, 0, 0, 0], yawToQuat(1).map((v) => 3 * v) as Quat, 0.5);
    expect(Math.hypot(...scaled)).toBeCloseTo(1, 14);
    expect(quatYaw(scaled)).toBeCloseTo(0.5, 12);
  });

  it('interpolates nearly equal rotations linearly (pyquaternion: dot > 0.9995)', () => {
    const a = yawToQuat(0.5), b = yawToQuat(0.5 + 1e-3);
    expect(quatYaw(quatSlerp(a, b, 0.5))).toBeCloseTo(0.5005, 9);
  });
});

describe('oriented boxes', () => {
  const box: OrientedBox3 = { center: [10, -2, 1], size: [2, 4, 1.5], rotation: yawToQuat(0.7) };

  it('has the corners of boxCorners for a yaw-only rotation', () => {
    const a = orientedBoxCorners(box), b = boxCorners({ center: box.center, size: box.size, yaw: 0.7 });
    a.forEach((c, i) => close(c, b[i]!));
  });

  it('rotates the corners with a full rotation: front face at +l/2 along the rotated x axis', () => {
    const tilted: OrientedBox3 = { center: [0, 0, 0], size: [2, 4, 6], rotation: axisAngleToQuat([0, 1, 0], Math.PI / 2) };
    const corners = orientedBoxCorners(tilted);
    // Pitch by +90° about y: local x (length) points along −z; local z (height) along +x.
    close(corners[0]!, [3, 1, -2]);
    close(corners[6]!, [-3, -1, 2]);
  });

  it('moves a box by a rigid transform: centre R·c + t, rotation composed, other fields kept', () => {
    const tf = { rotation: yawToQuat(Math.PI / 2), translation: [1, 2, 3] as Vec3 };
    const moved = transformOrientedBox(tf, { ...box, name: 'car' });
    close(moved.center, [1 + 2, 2 + 10, 3 + 1]);
    expect(quatYaw(moved.rotation)).toBeCloseTo(0.7 + Math.PI / 2, 12);
    expect(moved.name).toBe('car');
    expect(moved.size).toEqual(box.size);
    // corners of the moved box = the moved corners
    const tc = orientedBoxCorners(box).map((c) => quatRotate(tf.rotation, c).map((v, k) => v + tf.translation[k]!));
    orientedBoxCorners(moved).forEach((c, i) => close(c, tc[i]!));
  });
});
