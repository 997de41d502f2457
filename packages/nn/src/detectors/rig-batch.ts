/**
 * A synthetic batch for tests of camera models: random images, a realistic 6-camera rig (nuScenes' camera yaws),
 * identity image augmentation, the given BEV augmentation and GT boxes; optionally a previous keyframe and LiDAR
 * points. Shaped like @bevzoo/nuscenes' `Batch` (the fields camera models read).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, Trainer, type Mat3, type TaskModel } from '@bevzoo/core';
import type { BatchBoxesLike } from '../centerhead/task.js';
import type { LSSDetectorBatch } from './lss-detector.js';

/** Camera yaws of the nuScenes rig (front, front-right, front-left, back, back-left, back-right). */
export const RIG_YAWS = [0, -55, 55, 180, 110, -110].map((d) => (d / 180) * Math.PI);

const rotZ = (a: number): Mat3 => [Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1];

/** camera → ego of a camera at 1.6 m, 1 m from the ego origin, looking along `yaw`. */
export function rigExtrinsics(yaw: number): number[] {
  const R0 = [0, 0, 1, -1, 0, 0, 0, -1, 0]; // camera x right, y down, z forward → ego x forward, y left, z up
  const Rz = rotZ(yaw);
  const R = Array.from({ length: 9 }, (_, k) => Rz[Math.floor(k / 3) * 3]! * R0[k % 3]! + Rz[Math.floor(k / 3) * 3 + 1]! * R0[3 + (k % 3)]! + Rz[Math.floor(k / 3) * 3 + 2]! * R0[6 + (k % 3)]!);
  return [R[0]!, R[1]!, R[2]!, Math.cos(yaw), R[3]!, R[4]!, R[5]!, Math.sin(yaw), R[6]!, R[7]!, R[8]!, 1.6, 0, 0, 0, 1];
}

export interface BoxSpec {
  center: [number, number, number];
  size: [number, number, number];
  yaw: number;
  velocity?: [number, number];
  label: number;
}

function boxesOf(list: BoxSpec[]): BatchBoxesLike & { tokens: string[]; instanceTokens: string[]; attributeNames: string[] } {
  const n = list.length;
  const out = {
    count: n, center: new Float32Array(n * 3), size: new Float32Array(n * 3), yaw: new Float32Array(n), velocity: new Float32Array(n * 2),
    velocityValid: new Uint8Array(n), label: new Int32Array(n), tokens: [] as string[], instanceTokens: [] as string[], attributeNames: [] as string[],
  };
  list.forEach((b, i) => {
    out.center.set(b.center, i * 3);
    out.size.set(b.size, i * 3);
    out.yaw[i] = b.yaw;
    if (b.velocity) {
      out.velocity.set(b.velocity, i * 2);
      out.velocityValid[i] = 1;
    }
    out.label[i] = b.label;
    out.tokens.push(`box${i}`);
    out.instanceTokens.push(`inst${i}`);
    out.attributeNames.push('');
  });
  return out;
}

/** A batch of B samples at [H, W] with random images, the 6-camera rig, identity augmentation and the given boxes. */
export function rigBatch(imageSize: [number, number], boxes: BoxSpec[][], seed = 0, bda?: Mat3[]): LSSDetectorBatch & { batchSize: number; sampleTokens: string[] } {
  const [H, W] = imageSize;
  const B = boxes.length;
  const rng = createRng(seed);
  const f = W / 2 / Math.tan((35 / 180) * Math.PI); // 70° horizontal field of view
  const images = new Float32Array(B * 6 * H * W * 3);
  for (let i = 0; i < images.length; i++) images[i] = rng.normal(0, 1);
  const intrinsics = new Float32Array(B * 54), sensor2ego = new Float32Array(B * 96), postAug = new Float32Array(B * 54);
  for (let b = 0; b < B; b++) {
    RIG_YAWS.forEach((yaw, n) => {
      const k = b * 6 + n;
      intrinsics.set([f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1], k * 9);
      sensor2ego.set(rigExtrinsics(yaw), k * 16);
      postAug.set([1, 0, 0, 0, 1, 0, 0, 0, 1], k * 9);
    });
  }
  const bdaArr = new Float32Array(B * 9);
  for (let b = 0; b < B; b++) bdaArr.set(bda?.[b] ?? [1, 0, 0, 0, 1, 0, 0, 0, 1], b * 9);
  return { batchSize: B, sampleTokens: boxes.map((_, b) => `sample${b}`), images, intrinsics, sensor2ego, postAug, bda: bdaArr, boxes: boxes.map(boxesOf) };
}

/** A few boxes of several classes spread around the ego. */
export function sampleBoxes(seed: number): BoxSpec[] {
  const rng = createRng(seed);
  const out: BoxSpec[] = [];
  for (let i = 0; i < 6; i++) {
    const label = [0, 0, 5, 9, 8, 1][i]!; // car, car, pedestrian, barrier, traffic_cone, truck
    const size: [number, number, number] = label === 0 ? [1.9, 4.5, 1.6] : label === 1 ? [2.5, 7, 3] : label === 5 ? [0.7, 0.7, 1.8] : [0.5, 2, 1];
    const r = rng.uniform(8, 40), a = rng.uniform(-Math.PI, Math.PI);
    out.push({ center: [r * Math.cos(a), r * Math.sin(a), size[2] / 2 - 0.2], size, yaw: rng.uniform(-Math.PI, Math.PI), velocity: label < 2 ? [rng.uniform(-3, 3), rng.uniform(-3, 3)] : undefined, label });
  }
  return out;
}

/**
 * The batch with a previous keyframe: images of seed `seed`, the same rig, and `egoMotion` (current ego ← previous
 * ego, row-major 4×4, the same for every sample; identity by default).
 */
export function withPrevFrame<T extends LSSDetectorBatch>(batch: T, seed = 1, egoMotion: number[] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]): T {
  const B = batch.bda.length / 9;
  const rng = createRng(seed);
  const images = Float32Array.from(batch.images, () => rng.normal(0, 1));
  const motion = new Float32Array(B * 16);
  for (let b = 0; b < B; b++) motion.set(egoMotion, b * 16);
  return { ...batch, prev: { images, intrinsics: batch.intrinsics, sensor2ego: batch.sensor2ego, postAug: batch.postAug, egoMotion: motion } };
}

/** A keyframe LiDAR cloud (x, y, z, intensity, Δt) of `n` points on the ground 4–40 m around the ego, Δt `dt`. */
export function groundCloud(n = 400, dt = 0): Float32Array {
  return Float32Array.from(Array.from({ length: n }, (_, i) => {
    const a = (i / n) * 2 * Math.PI, r = 4 + (i % 37);
    return [r * Math.cos(a), r * Math.sin(a), 0, 1, dt];
  }).flat());
}

/**
 * Train a model on one fixed batch with the core Trainer (AdamW, no warm-up): the loss and the live tensor count
 * after every step, and the loss parts of the first — what a test of a model's training needs.
 */
export async function fitBatch<B>(model: TaskModel<B>, batch: B, opts: { steps: number; lr: number }): Promise<{ losses: number[]; counts: number[]; parts: Record<string, number> }> {
  const losses: number[] = [], counts: number[] = [];
  let parts: Record<string, number> = {};
  const trainer = new Trainer<B>({
    model, batches: [batch], steps: opts.steps, optimizer: { lr: opts.lr, weightDecay: 0.01 }, progress: false,
    onStep: (r) => {
      losses.push(r.loss);
      counts.push(tf.memory().numTensors);
      if (r.step === 1) parts = r.losses;
    },
  });
  await trainer.run();
  trainer.dispose();
  return { losses, counts, parts };
}

/**
 * The batch with Occ3D labels ([B, 200, 200, 16] each, [x, y, z] order): a road (driveable surface) along x with
 * sidewalks, terrain beyond, on the ground layer (z index 2); per sample a car-sized block of label 4 on the road at
 * x = 6 + 4·b m; free above; camera-visible within 30 m of the ego.
 */
export function withOccLabels<T extends { bda: Float32Array }>(batch: T): T & { occ: { semantics: Uint8Array; maskLidar: Uint8Array; maskCamera: Uint8Array } } {
  const B = batch.bda.length / 9;
  const [X, Y, Z] = [200, 200, 16];
  const V = X * Y * Z;
  const semantics = new Uint8Array(B * V).fill(17), maskCamera = new Uint8Array(B * V), maskLidar = new Uint8Array(B * V);
  const centre = (i: number) => -40 + 0.4 * (i + 0.5);
  for (let b = 0; b < B; b++)
    for (let x = 0; x < X; x++)
      for (let y = 0; y < Y; y++) {
        const px = centre(x), py = centre(y);
        const ground = Math.abs(py) < 6 ? 11 : Math.abs(py) < 9 ? 13 : 14;
        const o = b * V + (x * Y + y) * Z;
        semantics[o + 2] = ground;
        const carX = 6 + 4 * b;
        if (Math.abs(px - carX) < 2.2 && Math.abs(py - 2) < 1) for (let z = 3; z < 7; z++) semantics[o + z] = 4;
        if (px * px + py * py < 900) for (let z = 0; z < Z; z++) {
          maskCamera[o + z] = 1;
          maskLidar[o + z] = 1;
        }
      }
  return { ...batch, occ: { semantics, maskLidar, maskCamera } };
}
