/**
 * Detection boxes (the devkit's DetectionBox) and the per-box measures of eval/common/utils.py, in float64 with
 * the devkit's operation order.
 */
import type { DetectionClass } from '@bevzoo/nuscenes';
import { fma } from './fma.js';
import { pyMod } from './numpy.js';

export interface EvalBox {
  sample_token: string;
  /** Box centre, global frame (m). */
  translation: [number, number, number];
  /** width, length, height (m). */
  size: [number, number, number];
  /** Quaternion w, x, y, z (need not be normalised). */
  rotation: [number, number, number, number];
  /** Global vx, vy (m/s); NaN where unknown. */
  velocity: [number, number];
  detection_name: DetectionClass;
  /** −1 for ground truth. */
  detection_score: number;
  /** A valid attribute of the class, or "". */
  attribute_name: string;
  /** Box centre minus the ego position of the sample's LIDAR_TOP keyframe (set by addCenterDist). */
  ego_translation: [number, number, number];
  /** LiDAR + radar points in the box; −1 (unknown) for predictions. */
  num_pts: number;
}

/** Boxes grouped by sample, in insertion order (the devkit's EvalBoxes; the order breaks ties in matching). */
export type EvalBoxes = Map<string, EvalBox[]>;

/** The devkit's DetectionBox defaults for omitted fields. */
export function makeEvalBox(b: Partial<EvalBox> & Pick<EvalBox, 'sample_token'>): EvalBox {
  return {
    sample_token: b.sample_token,
    translation: b.translation ?? [0, 0, 0],
    size: b.size ?? [0, 0, 0],
    rotation: b.rotation ?? [0, 0, 0, 0],
    velocity: b.velocity ?? [0, 0],
    detection_name: b.detection_name ?? 'car',
    detection_score: b.detection_score ?? -1,
    attribute_name: b.attribute_name ?? '',
    ego_translation: b.ego_translation ?? [0, 0, 0],
    num_pts: b.num_pts ?? -1,
  };
}

/** All boxes in sample order, then list order (EvalBoxes.all). */
export function allBoxes(boxes: EvalBoxes): EvalBox[] {
  const out: EvalBox[] = [];
  for (const list of boxes.values()) for (const b of list) out.push(b);
  return out;
}

export function countBoxes(boxes: EvalBoxes): number {
  let n = 0;
  for (const list of boxes.values()) n += list.length;
  return n;
}

/** center_distance: xy L2 distance between the centres. */
export function centerDistance(gt: EvalBox, pred: EvalBox): number {
  const dx = pred.translation[0] - gt.translation[0];
  const dy = pred.translation[1] - gt.translation[1];
  return Math.sqrt(dx * dx + dy * dy);
}

/** velocity_l2: L2 distance of the xy velocities (NaN if either is NaN). */
export function velocityL2(gt: EvalBox, pred: EvalBox): number {
  const dx = pred.velocity[0] - gt.velocity[0];
  const dy = pred.velocity[1] - gt.velocity[1];
  return Math.sqrt(dx * dx + dy * dy);
}

/** scale_iou: IoU of the two sizes with centres and orientations aligned. Sizes must be > 0. */
export function scaleIou(gt: EvalBox, pred: EvalBox): number {
  const a = gt.size, b = pred.size;
  const inter = 1 * Math.min(a[0], b[0]) * Math.min(a[1], b[1]) * Math.min(a[2], b[2]);
  const va = 1 * a[0] * a[1] * a[2];
  const vb = 1 * b[0] * b[1] * b[2];
  return inter / (va + vb - inter);
}

function normalisedQuat(q: readonly number[]): [number, number, number, number] {
  // pyquaternion's _normalise: only when |1 − Σq²| ≥ 1e-14, divide by sqrt(Σq²) (np.dot sums in order).
  let a = q[0]!, b = q[1]!, c = q[2]!, d = q[3]!;
  const ss = a * a + b * b + c * c + d * d;
  if (!(Math.abs(1.0 - ss) < 1e-14)) {
    const n = Math.sqrt(ss);
    if (n > 0) {
      a /= n; b /= n; c /= n; d /= n;
    }
  }
  return [a, b, c, d];
}

/** Σ_k x[k]·y[k] accumulated with FMA from 0, in k order — OpenBLAS dgemm's inner loop. */
function dot4(x0: number, x1: number, x2: number, x3: number, y0: number, y1: number, y2: number, y3: number): number {
  return fma(x3, y3, fma(x2, y2, fma(x1, y1, x0 * y0 + 0)));
}

/**
 * pyquaternion's rotation_matrix (row-major 3×3): normalise, then Q(q)·Q̄(q)ᵀ restricted to rows/cols 1..3,
 * each entry accumulated like OpenBLAS's dgemm.
 */
export function rotationMatrix(q: readonly number[]): number[] {
  const [a, b, c, d] = normalisedQuat(q);
  // Rows 1..3 of Q and of Q̄ (pyquaternion's _q_matrix / _q_bar_matrix).
  const Q = [[b, a, -d, c], [c, d, a, -b], [d, -c, b, a]];
  const B = [[b, a, d, -c], [c, -d, a, b], [d, c, -b, a]];
  const R = new Array<number>(9);
  for (let i = 0; i < 3; i++) {
    const x = Q[i]!;
    for (let j = 0; j < 3; j++) {
      const y = B[j]!;
      R[i * 3 + j] = dot4(x[0]!, x[1]!, x[2]!, x[3]!, y[0]!, y[1]!, y[2]!, y[3]!);
    }
  }
  return R;
}

/** quaternion_yaw: atan2 of the rotated x axis (R[1][0], R[0][0]). */
export function quaternionYaw(q: readonly number[]): number {
  const [a, b, c, d] = normalisedQuat(q);
  const r00 = dot4(b, a, -d, c, b, a, d, -c);
  const r10 = dot4(c, d, a, -b, b, a, d, -c);
  return Math.atan2(r10, r00);
}

/** angle_diff(x, y, period): signed smallest difference from y to x, in (−π, π]. */
export function angleDiff(x: number, y: number, period: number): number {
  let diff = pyMod(x - y + period / 2, period) - period / 2;
  if (diff > Math.PI) diff = diff - 2 * Math.PI;
  return diff;
}

/** yaw_diff: |angle_diff(yaw_gt, yaw_pred, period)|. */
export function yawDiff(gt: EvalBox, pred: EvalBox, period = 2 * Math.PI): number {
  return Math.abs(angleDiff(quaternionYaw(gt.rotation), quaternionYaw(pred.rotation), period));
}

/** attr_acc: NaN when the GT has no attribute, else 1 if the names are equal, 0 otherwise. */
export function attrAcc(gt: EvalBox, pred: EvalBox): number {
  if (gt.attribute_name === '') return NaN;
  return gt.attribute_name === pred.attribute_name ? 1 : 0;
}

/** EvalBox.ego_dist: xy norm of ego_translation. */
export function egoDist(box: EvalBox): number {
  const x = box.ego_translation[0], y = box.ego_translation[1];
  return Math.sqrt(x * x + y * y);
}

/** A box as the devkit's Box: centre, size (w, l, h), rotation quaternion. */
export interface RawBox {
  translation: readonly number[];
  size: readonly number[];
  rotation: readonly number[];
}

/**
 * Precomputed points_in_box test for one box (nuscenes/utils/geometry_utils.py): corners as Box.corners()
 * (rotation applied like dgemm, then the centre added), reference corner 0 and the three edges to corners
 * 4 (x), 1 (y) and 3 (z); a point is inside when each projection of (p − corner0) lies in [0, |edge|²].
 */
export interface PointInBoxTest {
  contains(p: readonly number[]): boolean;
}

export function pointsInBoxTest(box: RawBox): PointInBoxTest {
  const R = rotationMatrix(box.rotation);
  const [w, l, h] = [box.size[0]!, box.size[1]!, box.size[2]!];
  const xs = [1, 1, 1, 1, -1, -1, -1, -1];
  const ys = [1, -1, -1, 1, 1, -1, -1, 1];
  const zs = [1, 1, -1, -1, 1, 1, -1, -1];
  const corner = (m: number): number[] => {
    const x = (l / 2) * xs[m]!, y = (w / 2) * ys[m]!, z = (h / 2) * zs[m]!;
    const out: number[] = [];
    for (let r = 0; r < 3; r++) {
      out.push(fma(R[r * 3 + 2]!, z, fma(R[r * 3 + 1]!, y, R[r * 3]! * x + 0)) + box.translation[r]!);
    }
    return out;
  };
  const p1 = corner(0), px = corner(4), py = corner(1), pz = corner(3);
  const sub = (u: number[], v: number[]): number[] => [u[0]! - v[0]!, u[1]! - v[1]!, u[2]! - v[2]!];
  const i = sub(px, p1), j = sub(py, p1), k = sub(pz, p1);
  const dot = (u: readonly number[], v: readonly number[]): number => u[0]! * v[0]! + u[1]! * v[1]! + u[2]! * v[2]!;
  const ii = dot(i, i), jj = dot(j, j), kk = dot(k, k);
  return {
    contains(p) {
      const v = [p[0]! - p1[0]!, p[1]! - p1[1]!, p[2]! - p1[2]!];
      const iv = dot(i, v), jv = dot(j, v), kv = dot(k, v);
      return iv >= 0 && iv <= ii && jv >= 0 && jv <= jj && kv >= 0 && kv <= kk;
    },
  };
}
