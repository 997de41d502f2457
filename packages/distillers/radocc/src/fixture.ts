/**
 * Test and benchmark fixtures (not exported from the package): occupancy teacher / student plugins wrapping
 * @bevzoo/nn's LSSOcc2D (FlashOcc's structure) at FlashOcc's tiny and small sizes, and a batch of a small scene —
 * the 6-camera rig, a ground plane (road, sidewalk, terrain) and one car per sample, seen by a keyframe LiDAR cloud,
 * by per-camera segment-id maps (exact, ray-cast) and by Occ3D labels, with a BEV x-flip on odd samples.
 */
import { defineStudent, defineTeacher, type DeepPartial, type Mat3 } from '@bevzoo/core';
import { flashOccPresetParts, flipOccVolume, LSSOcc2D, lssOcc2DFeatures, lssOcc2DSchema, rigBatch, withOccLabels, type LSSOcc2DConfig, type LSSOccBatch } from '@bevzoo/nn';
import type { OccDistillBatch } from './batch.js';

/** FlashOcc's tiny and small sizes (@bevzoo/nn's `flashOccPresetParts`, as packages/students/flashocc uses them). */
export const LSS_OCC_PRESETS: Record<'tiny' | 'small', DeepPartial<LSSOcc2DConfig>> = {
  tiny: {
    ...flashOccPresetParts.tiny,
    train: { steps: 20, batchSize: 2, lr: 1e-3, warmupSteps: 0 },
    data: { imageSize: [64, 176] },
  },
  small: {
    ...flashOccPresetParts.small,
    train: { steps: 600, batchSize: 2, lr: 2e-3, warmupSteps: 30, clip: 35 },
    data: { imageSize: [128, 352] },
  },
};

const common = {
  version: '0.0.0',
  task: 'occ' as const,
  package: '@bevzoo/distill-radocc (test fixture)',
  configSchema: lssOcc2DSchema,
  presets: LSS_OCC_PRESETS,
  defaultPreset: 'tiny',
  provides: lssOcc2DFeatures,
};

/** A test-only occupancy teacher (LSSOcc2D): provides `occ_logits`, `pre_head`, `stage0..2`. */
export const fixtureTeacher = defineTeacher<LSSOcc2DConfig, LSSOcc2D>({
  ...common, name: 'radocc-fixture-teacher', description: 'test fixture: LSSOcc2D as an occupancy teacher',
  create: (config, ctx) => new LSSOcc2D(config, { rng: ctx.rng, name: 'radocc-fixture-teacher' }),
});

/** A test-only occupancy student (LSSOcc2D). */
export const fixtureStudent = defineStudent<LSSOcc2DConfig, LSSOcc2D>({
  ...common, name: 'radocc-fixture-student', description: 'test fixture: LSSOcc2D as an occupancy student',
  create: (config, ctx) => new LSSOcc2D(config, { rng: ctx.rng, name: 'radocc-fixture-student' }),
});

/** Ground classes by |y| (Occ3D labels): road 11, sidewalk 13, terrain 14 — the layout of `withOccLabels`. */
const groundSegment = (y: number) => (Math.abs(y) < 6 ? 1 : Math.abs(y) < 9 ? 2 : 3);
const CAR_HALF: [number, number, number] = [2.2, 1, 0.8];
const carCentre = (b: number): [number, number, number] => [6 + 4 * b, 2, 1.0];

export type FixtureBatch = LSSOccBatch & OccDistillBatch & { imageSize: [number, number]; segments: Int32Array; points: Float32Array[] };

/**
 * A batch of B samples at [H, W]: random images, the rig with identity image augmentation, a keyframe cloud of the
 * ground (0.6 m spacing within 30 m) and the car's surface (after bda), exact segment ids (1 road, 2 sidewalk,
 * 3 terrain, 4 the car, 0 nothing within 40 m), Occ3D labels flipped with the bda.
 */
export function fixtureBatch(imageSize: [number, number], B: number, seed = 0): FixtureBatch {
  const bdas: Mat3[] = Array.from({ length: B }, (_, b) => (b % 2 ? [-1, 0, 0, 0, 1, 0, 0, 0, 1] : [1, 0, 0, 0, 1, 0, 0, 0, 1]));
  const base = withOccLabels(rigBatch(imageSize, Array.from({ length: B }, () => []), seed, bdas));
  const [H, W] = imageSize;
  const V = 200 * 200 * 16;
  const points: Float32Array[] = [];
  for (let b = 0; b < B; b++) {
    const flip = b % 2 ? -1 : 1;
    const pts: number[] = [];
    for (let x = -30; x <= 30; x += 0.6) for (let y = -30; y <= 30; y += 0.6) if (x * x + y * y < 900 && x * x + y * y > 4) pts.push(flip * x, y, 0, 1, 0);
    const [cx, cy, cz] = carCentre(b);
    for (let u = -1; u <= 1; u += 0.1) for (let v = -1; v <= 1; v += 0.1) {
      for (const s of [-1, 1]) {
        pts.push(flip * (cx + s * CAR_HALF[0]), cy + u * CAR_HALF[1], cz + v * CAR_HALF[2], 1, 0);
        pts.push(flip * (cx + u * CAR_HALF[0]), cy + s * CAR_HALF[1], cz + v * CAR_HALF[2], 1, 0);
        pts.push(flip * (cx + u * CAR_HALF[0]), cy + v * CAR_HALF[1], cz + s * CAR_HALF[2], 1, 0);
      }
    }
    points.push(Float32Array.from(pts));
    if (flip < 0) {
      const one = (a: Uint8Array) => a.set(flipOccVolume(a.subarray(b * V, (b + 1) * V), [200, 200, 16], true, false), b * V);
      one(base.occ.semantics);
      one(base.occ.maskCamera);
      one(base.occ.maskLidar);
    }
  }
  // segments: cast each pixel's ray (un-augmented ego frame) against the car box and the ground plane z = 0
  const segments = new Int32Array(B * 6 * H * W);
  for (let b = 0; b < B; b++) {
    const [cx, cy, cz] = carCentre(b);
    const lo = [cx - CAR_HALF[0], cy - CAR_HALF[1], cz - CAR_HALF[2]], hi = [cx + CAR_HALF[0], cy + CAR_HALF[1], cz + CAR_HALF[2]];
    for (let n = 0; n < 6; n++) {
      const k = b * 6 + n;
      const Km = base.intrinsics.subarray(k * 9, k * 9 + 9), T = base.sensor2ego.subarray(k * 16, k * 16 + 16);
      const o = [T[3]!, T[7]!, T[11]!];
      for (let v = 0; v < H; v++) for (let u = 0; u < W; u++) {
        const c = [(u - Km[2]!) / Km[0]!, (v - Km[5]!) / Km[4]!, 1];
        const d = [0, 1, 2].map((i) => T[i * 4]! * c[0]! + T[i * 4 + 1]! * c[1]! + T[i * 4 + 2]! * c[2]!);
        let tNear = 0, tFar = Infinity;
        for (let a = 0; a < 3; a++) {
          if (Math.abs(d[a]!) < 1e-9) {
            if (o[a]! < lo[a]! || o[a]! > hi[a]!) tFar = -1;
            continue;
          }
          const t1 = (lo[a]! - o[a]!) / d[a]!, t2 = (hi[a]! - o[a]!) / d[a]!;
          tNear = Math.max(tNear, Math.min(t1, t2));
          tFar = Math.min(tFar, Math.max(t1, t2));
        }
        const tCar = tNear <= tFar && tFar > 0 ? tNear : Infinity;
        const tGround = d[2]! < 0 ? -o[2]! / d[2]! : Infinity;
        let id = 0;
        if (tCar < tGround) id = 4;
        else if (tGround < Infinity) {
          const gx = o[0]! + d[0]! * tGround, gy = o[1]! + d[1]! * tGround;
          if (gx * gx + gy * gy < 1600) id = groundSegment(gy);
        }
        segments[k * H * W + v * W + u] = id;
      }
    }
  }
  return { ...base, imageSize, points, segments };
}
