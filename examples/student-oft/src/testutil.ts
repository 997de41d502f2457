/** Test helpers (not exported from the package): a hand-made batch on a 6-camera rig like nuScenes'. */
import { createRng, type Mat3 } from '@bevzoo/core';
import type { Batch, BatchBoxes } from '@bevzoo/nuscenes';

export interface BoxSpec {
  center: [number, number, number];
  size: [number, number, number];
  yaw: number;
  label: number;
}

const I3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** camera → ego of a camera at height `z` looking along ego yaw `yaw` (camera x right, y down, z forward). */
export function cameraToEgo(yaw: number, t: [number, number, number]): number[] {
  const c = Math.cos(yaw), s = Math.sin(yaw);
  // Columns: camera x = (sin, −cos, 0), camera y = (0, 0, −1), camera z = (cos, sin, 0) in the ego frame.
  return [s, 0, c, t[0], -c, 0, s, t[1], 0, -1, 0, t[2], 0, 0, 0, 1];
}

function boxesOf(list: BoxSpec[]): BatchBoxes {
  const n = list.length;
  return {
    count: n, center: Float32Array.from(list.flatMap((b) => b.center)), size: Float32Array.from(list.flatMap((b) => b.size)),
    yaw: Float32Array.from(list.map((b) => b.yaw)), velocity: new Float32Array(n * 2), velocityValid: new Uint8Array(n),
    label: Int32Array.from(list.map((b) => b.label)), tokens: list.map((_, i) => `box${i}`), instanceTokens: list.map((_, i) => `inst${i}`), attributeNames: list.map(() => ''),
  };
}

/** B samples (one per box list) with random images, six cameras (70° field of view) 60° apart, and the given bda / postAug. */
export function makeBatch(imageSize: [number, number], boxes: BoxSpec[][], opts: { seed?: number; bda?: Mat3[]; postAug?: Mat3 } = {}): Batch {
  const [H, W] = imageSize, B = boxes.length;
  const rng = createRng(opts.seed ?? 0);
  const f = W / 2 / Math.tan((35 / 180) * Math.PI);
  const cams = Array.from({ length: B * 6 }, (_, k) => k % 6);
  return {
    epoch: 0, index: 0, batchSize: B, imageSize: [H, W], sampleTokens: boxes.map((_, b) => `sample${b}`),
    images: Float32Array.from({ length: B * 6 * H * W * 3 }, () => rng.normal(0, 1)),
    intrinsics: Float32Array.from(cams.flatMap(() => [f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1])),
    sensor2ego: Float32Array.from(cams.flatMap((n) => cameraToEgo((n * Math.PI) / 3, [Math.cos((n * Math.PI) / 3), Math.sin((n * Math.PI) / 3), 1.6]))),
    postAug: Float32Array.from(cams.flatMap(() => opts.postAug ?? I3)),
    bda: Float32Array.from(boxes.flatMap((_, b) => opts.bda?.[b] ?? I3)),
    boxes: boxes.map(boxesOf),
    shapes: { images: [B, 6, H, W, 3], intrinsics: [B, 6, 3, 3], sensor2ego: [B, 6, 4, 4], postAug: [B, 6, 3, 3], bda: [B, 3, 3] },
  };
}

/** Six boxes of several classes around the ego (car, car, pedestrian, barrier, traffic cone, truck). */
export function sampleBoxes(seed: number): BoxSpec[] {
  const rng = createRng(seed);
  return [0, 0, 5, 9, 8, 1].map((label) => {
    const size: [number, number, number] = label === 0 ? [1.9, 4.5, 1.6] : label === 1 ? [2.5, 7, 3] : label === 5 ? [0.7, 0.7, 1.8] : [0.5, 2, 1];
    const r = rng.uniform(8, 40), a = rng.uniform(-Math.PI, Math.PI);
    return { center: [r * Math.cos(a), r * Math.sin(a), size[2] / 2 - 0.2], size, yaw: rng.uniform(-Math.PI, Math.PI), label };
  });
}
