/**
 * CenterPoint decoding (mmdet3d CenterPointBBoxCoder.decode + CenterHead.get_bboxes): per task sigmoid heatmap,
 * optional 3×3 max-pool suppression, top-K over classes × cells, score threshold, box from the regressions,
 * post-centre range, NMS (circle or rotated BEV), post max size. Tensors are read once; the rest is plain JS.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CenterHeadError, REG_HEADS, type CenterHeadConfig, type RegHeadName } from './config.js';
import type { TaskOutput } from './loss.js';
import { argsortDesc, circleNms, rotatedNms } from './nms.js';

/** A detected box in the ego BEV frame (centre at the geometric centre, size (w, l, h)). */
export interface DetBox {
  center: [number, number, number];
  size: [number, number, number];
  yaw: number;
  velocity: [number, number];
  score: number;
  /** Index into the config's classNames. */
  label: number;
}

/** One task's outputs read back as arrays (heatmap already sigmoid-ed, and max-pool-suppressed if asked). */
export interface TaskArrays {
  /** [B, H, W, C] of the heatmap. */
  shape: [number, number, number, number];
  /** [B, H, W, C] scores in [0, 1]. */
  scores: Float32Array;
  /** [B, H, W, k] per regression head (reg 2, height 1, dim 3 (log w, l, h), rot 2 (sin, cos), vel 2). */
  reg: Float32Array;
  height: Float32Array;
  dim: Float32Array;
  rot: Float32Array;
  vel: Float32Array;
}

type DecodeCfg = Pick<CenterHeadConfig, 'classNames' | 'tasks' | 'grid' | 'decode'>;

/** Boxes of one task for each sample of the batch, best first within a sample. */
export function decodeTaskArrays(a: TaskArrays, task: number, cfg: DecodeCfg): DetBox[][] {
  const [B, H, W, C] = a.shape;
  const d = cfg.decode;
  const { range, cellSize, stride } = cfg.grid;
  const labels = cfg.tasks[task]!.map((n) => cfg.classNames.indexOf(n));
  const HWC = H * W * C, HW = H * W;
  const out: DetBox[][] = [];
  for (let b = 0; b < B; b++) {
    // Top-K of the thresholded scores (the same set as mmdet3d's top-K then threshold).
    const cand: number[] = [];
    const candScore: number[] = [];
    for (let i = 0; i < HWC; i++) {
      const s = a.scores[b * HWC + i]!;
      if (s > d.scoreThreshold) {
        cand.push(i);
        candScore.push(s);
      }
    }
    const top = argsortDesc(candScore).slice(0, d.topK);
    let boxes: DetBox[] = [];
    for (const j of top) {
      const i = cand[j]!;
      const cell = Math.floor(i / C), c = i - cell * C;
      const y = Math.floor(cell / W), x = cell - y * W;
      const p = b * HW + cell;
      const cx = (x + a.reg[p * 2]!) * stride * cellSize[0] + range[0];
      const cy = (y + a.reg[p * 2 + 1]!) * stride * cellSize[1] + range[1];
      const cz = a.height[p]!;
      if (d.postCenterRange) {
        const r = d.postCenterRange;
        if (!(cx >= r[0] && cy >= r[1] && cz >= r[2] && cx <= r[3] && cy <= r[4] && cz <= r[5])) continue;
      }
      boxes.push({
        center: [cx, cy, cz],
        size: [Math.exp(a.dim[p * 3]!), Math.exp(a.dim[p * 3 + 1]!), Math.exp(a.dim[p * 3 + 2]!)],
        yaw: Math.atan2(a.rot[p * 2]!, a.rot[p * 2 + 1]!),
        velocity: [a.vel[p * 2]!, a.vel[p * 2 + 1]!],
        score: candScore[j]!,
        label: labels[c]!,
      });
    }
    const nms = d.nms;
    if (nms.type === 'circle') {
      const keep = circleNms(boxes.map((q) => q.center[0]), boxes.map((q) => q.center[1]), boxes.map((q) => q.score), nms.radii[task]!, d.postMaxSize);
      boxes = keep.map((k) => boxes[k]!);
    } else if (nms.type === 'rotate') {
      const keep = rotatedNms(boxes, boxes.map((q) => q.score), nms.iouThreshold, { preMaxSize: nms.preMaxSize, postMaxSize: d.postMaxSize });
      boxes = keep.map((k) => boxes[k]!);
    } else {
      boxes = boxes.slice(0, d.postMaxSize);
    }
    out.push(boxes);
  }
  return out;
}

/** Sigmoid scores of a heatmap, keeping only 3×3 local maxima when maxPoolNms is set. */
export function heatmapScores(heatmapLogits: tf.Tensor4D, maxPoolNms: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const s = tf.sigmoid(heatmapLogits) as tf.Tensor4D;
    if (!maxPoolNms) return s;
    const m = tf.maxPool(s, 3, 1, 'same');
    return tf.mul(s, tf.cast(tf.equal(m, s), 'float32')) as tf.Tensor4D;
  });
}

/** Read one task's outputs into arrays. */
export async function readTaskOutput(out: TaskOutput, maxPoolNms: boolean): Promise<TaskArrays> {
  const [B, H, W, C] = out.heatmap.shape;
  for (const [name, ch] of REG_HEADS) {
    const s = out[name].shape;
    if (s[0] !== B || s[1] !== H || s[2] !== W || s[3] !== ch)
      throw new CenterHeadError(`decode: output '${name}' must be [${B}, ${H}, ${W}, ${ch}], found [${s.join(', ')}]`, { field: name });
  }
  const scores = heatmapScores(out.heatmap, maxPoolNms);
  const read = async (name: RegHeadName): Promise<Float32Array> => (await out[name].data()) as Float32Array;
  try {
    return {
      shape: [B, H, W, C],
      scores: (await scores.data()) as Float32Array,
      reg: await read('reg'), height: await read('height'), dim: await read('dim'), rot: await read('rot'), vel: await read('vel'),
    };
  } finally {
    scores.dispose();
  }
}

/** Decode all tasks: per sample, the boxes of task 0, then task 1, … (each best first). */
export async function decodeCenterHead(outputs: readonly TaskOutput[], cfg: DecodeCfg): Promise<DetBox[][]> {
  if (outputs.length !== cfg.tasks.length) throw new CenterHeadError(`decode: expected ${cfg.tasks.length} task outputs, found ${outputs.length}`);
  let result: DetBox[][] | null = null;
  for (const [t, out] of outputs.entries()) {
    if (out.heatmap.shape[3] !== cfg.tasks[t]!.length)
      throw new CenterHeadError(`decode: task ${t} heatmap must have ${cfg.tasks[t]!.length} channels, found ${out.heatmap.shape[3]}`);
    const per = decodeTaskArrays(await readTaskOutput(out, cfg.decode.maxPoolNms), t, cfg);
    result = result === null ? per : result.map((r, b) => r.concat(per[b]!));
  }
  return result!;
}
