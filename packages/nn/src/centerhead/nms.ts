/** BEV non-maximum suppression: CenterPoint's circle NMS and rotated-rectangle NMS (pure JS). */
import { boxBevCorners, type Box3 } from '@bevzoo/core';

export type Point2 = [number, number];

/** Indices ordered by descending score (ties: lower index first). */
export function argsortDesc(scores: ArrayLike<number>): number[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  return idx.sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/**
 * CenterPoint's circle NMS (mmdet3d circle_nms): greedily, in descending score, keep a centre and suppress every
 * later one whose squared distance to it is ≤ `thresh` (m²). Returns kept indices, best first, at most postMaxSize.
 */
export function circleNms(xs: ArrayLike<number>, ys: ArrayLike<number>, scores: ArrayLike<number>, thresh: number, postMaxSize = Infinity): number[] {
  const order = argsortDesc(scores);
  const suppressed = new Uint8Array(scores.length);
  const keep: number[] = [];
  for (let a = 0; a < order.length; a++) {
    const i = order[a]!;
    if (suppressed[i]) continue;
    keep.push(i);
    for (let b = a + 1; b < order.length; b++) {
      const j = order[b]!;
      if (suppressed[j]) continue;
      const dx = xs[i]! - xs[j]!, dy = ys[i]! - ys[j]!;
      if (dx * dx + dy * dy <= thresh) suppressed[j] = 1;
    }
  }
  return keep.slice(0, postMaxSize);
}

/** Signed area of a polygon (positive when counter-clockwise). */
export function polygonArea(poly: readonly Point2[]): number {
  let s = 0;
  for (let i = 0; i < poly.length; i++) {
    const [x0, y0] = poly[i]!, [x1, y1] = poly[(i + 1) % poly.length]!;
    s += x0 * y1 - x1 * y0;
  }
  return s / 2;
}

/** Sutherland–Hodgman: the part of `subject` inside the convex counter-clockwise polygon `clip`. */
export function clipConvexPolygon(subject: readonly Point2[], clip: readonly Point2[]): Point2[] {
  let out: Point2[] = [...subject];
  for (let e = 0; e < clip.length && out.length > 0; e++) {
    const [ax, ay] = clip[e]!, [bx, by] = clip[(e + 1) % clip.length]!;
    const side = (p: Point2): number => (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax); // > 0: left (inside)
    const input = out;
    out = [];
    for (let i = 0; i < input.length; i++) {
      const p = input[i]!, q = input[(i + 1) % input.length]!;
      const sp = side(p), sq = side(q);
      if (sp >= 0) out.push(p);
      if ((sp >= 0) !== (sq >= 0)) {
        const t = sp / (sp - sq);
        out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
      }
    }
  }
  return out;
}

/** IoU of two boxes' rotated BEV footprints (size (w, l, ·), yaw about +z). */
export function rotatedIouBev(a: Box3, b: Box3): number {
  const dx = a.center[0] - b.center[0], dy = a.center[1] - b.center[1];
  const reach = (Math.hypot(a.size[0], a.size[1]) + Math.hypot(b.size[0], b.size[1])) / 2;
  if (dx * dx + dy * dy >= reach * reach) return 0; // circumscribed circles apart
  const pa = boxBevCorners(a), pb = boxBevCorners(b);
  const areaA = a.size[0] * a.size[1], areaB = b.size[0] * b.size[1];
  const inter = Math.abs(polygonArea(clipConvexPolygon(pa, pb)));
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Rotated BEV NMS (mmdet3d nms_bev): the preMaxSize best boxes, greedily in descending score; a box is dropped when
 * its BEV IoU with a kept one exceeds iouThreshold. Returns kept indices, best first, at most postMaxSize.
 */
export function rotatedNms(boxes: readonly Box3[], scores: ArrayLike<number>, iouThreshold: number, opts: { preMaxSize?: number; postMaxSize?: number } = {}): number[] {
  const order = argsortDesc(scores).slice(0, opts.preMaxSize ?? Infinity);
  const keep: number[] = [];
  const postMax = opts.postMaxSize ?? Infinity;
  for (const i of order) {
    if (keep.length >= postMax) break;
    let ok = true;
    for (const k of keep) {
      if (rotatedIouBev(boxes[i]!, boxes[k]!) > iouThreshold) {
        ok = false;
        break;
      }
    }
    if (ok) keep.push(i);
  }
  return keep;
}
