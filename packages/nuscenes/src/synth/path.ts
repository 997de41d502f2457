/**
 * Planar paths made of straight lines and circular arcs, parametrised by arc length. Roads, lanes,
 * sidewalk walking lines and the ego route are paths; lanes are exact offsets of the road centreline.
 */
export interface LinePiece { kind: 'line'; x0: number; y0: number; h0: number; len: number }
/** Arc around (cx, cy) of radius r starting at polar angle a0, turning left (dir +1) or right (dir −1). */
export interface ArcPiece { kind: 'arc'; cx: number; cy: number; r: number; a0: number; dir: 1 | -1; len: number }
export type Piece = LinePiece | ArcPiece;

export interface PathPose { x: number; y: number; heading: number }

export type PathSpec = { line: number } | { arc: number; angle: number };

export class Path {
  readonly starts: number[] = [];
  readonly length: number;

  constructor(readonly pieces: Piece[]) {
    let s = 0;
    for (const p of pieces) {
      this.starts.push(s);
      s += p.len;
    }
    this.length = s;
  }

  /** Build from a start pose and a list of pieces: `{line: L}` or `{arc: R, angle}` (angle > 0 turns left). */
  static build(x: number, y: number, heading: number, specs: PathSpec[]): Path {
    const pieces: Piece[] = [];
    let px = x, py = y, h = heading;
    for (const sp of specs) {
      if ('line' in sp) {
        pieces.push({ kind: 'line', x0: px, y0: py, h0: h, len: sp.line });
        px += Math.cos(h) * sp.line;
        py += Math.sin(h) * sp.line;
      } else {
        const dir: 1 | -1 = sp.angle >= 0 ? 1 : -1;
        const cx = px - dir * Math.sin(h) * sp.arc, cy = py + dir * Math.cos(h) * sp.arc;
        const a0 = Math.atan2(py - cy, px - cx);
        const sweep = Math.abs(sp.angle);
        pieces.push({ kind: 'arc', cx, cy, r: sp.arc, a0, dir, len: sp.arc * sweep });
        const a1 = a0 + dir * sweep;
        px = cx + sp.arc * Math.cos(a1);
        py = cy + sp.arc * Math.sin(a1);
        h += dir * sweep;
      }
    }
    return new Path(pieces);
  }

  private pieceAt(s: number): number {
    let lo = 0, hi = this.pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= s) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Pose at arc length s; beyond either end the path continues straight along its end tangent. */
  at(s: number): PathPose {
    if (s < 0) {
      const p = this.at(0);
      return { x: p.x + Math.cos(p.heading) * s, y: p.y + Math.sin(p.heading) * s, heading: p.heading };
    }
    if (s > this.length) {
      const p = this.at(this.length);
      const e = s - this.length;
      return { x: p.x + Math.cos(p.heading) * e, y: p.y + Math.sin(p.heading) * e, heading: p.heading };
    }
    const i = this.pieceAt(s);
    const p = this.pieces[i]!;
    const u = Math.min(s - this.starts[i]!, p.len);
    if (p.kind === 'line') return { x: p.x0 + Math.cos(p.h0) * u, y: p.y0 + Math.sin(p.h0) * u, heading: p.h0 };
    const a = p.a0 + (p.dir * u) / p.r;
    return { x: p.cx + p.r * Math.cos(a), y: p.cy + p.r * Math.sin(a), heading: a + (p.dir * Math.PI) / 2 };
  }

  /** The path shifted sideways by d (left of the direction of travel positive). */
  offset(d: number): Path {
    return new Path(this.pieces.map((p): Piece => {
      if (p.kind === 'line') return { ...p, x0: p.x0 - Math.sin(p.h0) * d, y0: p.y0 + Math.cos(p.h0) * d };
      const r = p.r - p.dir * d;
      if (!(r > 0)) throw new RangeError(`Path.offset: offset ${d} exceeds the arc radius ${p.r}`);
      return { ...p, r, len: (p.len / p.r) * r };
    }));
  }

  /** The same path travelled the other way. */
  reversed(): Path {
    const out: Piece[] = [];
    for (let i = this.pieces.length - 1; i >= 0; i--) {
      const p = this.pieces[i]!;
      if (p.kind === 'line') {
        out.push({ kind: 'line', x0: p.x0 + Math.cos(p.h0) * p.len, y0: p.y0 + Math.sin(p.h0) * p.len, h0: p.h0 + Math.PI, len: p.len });
      } else {
        out.push({ kind: 'arc', cx: p.cx, cy: p.cy, r: p.r, a0: p.a0 + (p.dir * p.len) / p.r, dir: p.dir === 1 ? -1 : 1, len: p.len });
      }
    }
    return new Path(out);
  }

  /** Points every `step` metres (both ends included). */
  sample(step: number): PathPose[] {
    const n = Math.max(1, Math.ceil(this.length / step));
    const out: PathPose[] = [];
    for (let i = 0; i <= n; i++) out.push(this.at((this.length * i) / n));
    return out;
  }
}

/**
 * Position of (x, y) relative to one piece: arc length from the piece start `u` (in centreline metres) and
 * signed lateral offset `d` (left positive). Returns false when the point projects outside the piece.
 */
export function projectOnPiece(p: Piece, x: number, y: number, out: { u: number; d: number }): boolean {
  if (p.kind === 'line') {
    const dx = x - p.x0, dy = y - p.y0;
    const c = Math.cos(p.h0), s = Math.sin(p.h0);
    const u = c * dx + s * dy;
    if (u < 0 || u > p.len) return false;
    out.u = u;
    out.d = -s * dx + c * dy;
    return true;
  }
  const dx = x - p.cx, dy = y - p.cy;
  const rho = Math.hypot(dx, dy);
  let a = p.dir * (Math.atan2(dy, dx) - p.a0);
  a -= 2 * Math.PI * Math.floor(a / (2 * Math.PI));
  const u = a * p.r;
  if (u > p.len) return false;
  out.u = u;
  out.d = p.dir * (p.r - rho);
  return true;
}

/** Axis-aligned bounds of a piece. */
export function pieceBounds(p: Piece): [number, number, number, number] {
  if (p.kind === 'line') {
    const x1 = p.x0 + Math.cos(p.h0) * p.len, y1 = p.y0 + Math.sin(p.h0) * p.len;
    return [Math.min(p.x0, x1), Math.min(p.y0, y1), Math.max(p.x0, x1), Math.max(p.y0, y1)];
  }
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const n = Math.max(2, Math.ceil(p.len / 2));
  for (let i = 0; i <= n; i++) {
    const a = p.a0 + (p.dir * p.len * i) / n / p.r;
    const x = p.cx + p.r * Math.cos(a), y = p.cy + p.r * Math.sin(a);
    minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x); maxY = Math.max(maxY, y);
  }
  return [minX, minY, maxX, maxY];
}
