/**
 * The ground of a synthetic world: a flat plane z = 0 whose material (road, sidewalk, terrain, other flat)
 * and lane markings are stored in a raster at 0.2 m. Roads are stamped from their centreline paths and
 * cross sections.
 */
import { pieceBounds, projectOnPiece, type Path } from './path.js';

export const MAT_TERRAIN = 0;
export const MAT_ROAD = 1;
export const MAT_SIDEWALK = 2;
export const MAT_FLAT = 3;
export const MAT_MASK = 0x0f;
export const MARK_WHITE = 0x10;
export const MARK_YELLOW = 0x20;

/** Occ3D label of each ground material. */
export const MATERIAL_OCC = [14, 11, 13, 12];
const PRIORITY = [0, 3, 2, 1];

/** Road cross section. Index 0 of per-side arrays is the right side (d < 0), 1 the left side (d > 0). */
export interface CrossSection {
  /** Half width of the central median (other_flat), 0 for none. */
  median: number;
  lanes: number;
  laneWidth: number;
  bike: [number, number];
  parking: [number, number];
  sidewalk: [number, number];
  /** Dashed centre line (single lane each way) instead of the double yellow line. */
  dashedCentre: boolean;
}

export function curbOffset(xs: CrossSection, side: number): number {
  return xs.median + xs.lanes * xs.laneWidth + xs.bike[side]! + xs.parking[side]!;
}
export function outerOffset(xs: CrossSection, side: number): number {
  return curbOffset(xs, side) + xs.sidewalk[side]!;
}

export class GroundMap {
  readonly data: Uint8Array;
  /** Id + 1 of the road that claimed the driveable surface of a cell (255: more than one = intersection). */
  private readonly owner: Uint8Array;

  constructor(readonly x0: number, readonly y0: number, readonly w: number, readonly h: number, readonly res: number) {
    this.data = new Uint8Array(w * h);
    this.owner = new Uint8Array(w * h);
  }

  /** Material code (with marking bits) at a world point; terrain outside the raster. */
  at(x: number, y: number): number {
    const i = Math.floor((x - this.x0) / this.res), j = Math.floor((y - this.y0) / this.res);
    if (i < 0 || j < 0 || i >= this.w || j >= this.h) return MAT_TERRAIN;
    return this.data[j * this.w + i]!;
  }

  private claim(idx: number, mat: number, mark: number, road: number): void {
    const cur = this.data[idx]! & MAT_MASK;
    if (mat === MAT_ROAD) {
      const o = this.owner[idx]!;
      if (o === 0 || cur !== MAT_ROAD) {
        this.owner[idx] = road + 1;
        this.data[idx] = MAT_ROAD | mark;
      } else if (o !== road + 1) {
        this.owner[idx] = 255;
        this.data[idx] = MAT_ROAD;
      } else if (o !== 255) this.data[idx] = (this.data[idx]! | mark);
      return;
    }
    if (PRIORITY[mat]! > PRIORITY[cur]!) this.data[idx] = mat;
  }

  /** Stamp a road: material by |lateral offset| on each side, lane markings on its own driveable cells. */
  stampRoad(road: number, path: Path, xs: CrossSection): void {
    const reach = Math.max(outerOffset(xs, 0), outerOffset(xs, 1)) + 0.5;
    const pr = { u: 0, d: 0 };
    const lw = xs.laneWidth;
    let sBase = 0;
    for (const piece of path.pieces) {
      const [bx0, by0, bx1, by1] = pieceBounds(piece);
      const i0 = Math.max(0, Math.floor((bx0 - reach - this.x0) / this.res)), i1 = Math.min(this.w - 1, Math.ceil((bx1 + reach - this.x0) / this.res));
      const j0 = Math.max(0, Math.floor((by0 - reach - this.y0) / this.res)), j1 = Math.min(this.h - 1, Math.ceil((by1 + reach - this.y0) / this.res));
      for (let j = j0; j <= j1; j++) {
        const y = this.y0 + (j + 0.5) * this.res;
        for (let i = i0; i <= i1; i++) {
          const x = this.x0 + (i + 0.5) * this.res;
          if (!projectOnPiece(piece, x, y, pr)) continue;
          const ad = Math.abs(pr.d);
          if (ad > reach) continue;
          const side = pr.d < 0 ? 0 : 1;
          const curb = curbOffset(xs, side);
          let mat: number;
          if (ad < xs.median) mat = MAT_FLAT;
          else if (ad <= curb) mat = MAT_ROAD;
          else if (ad <= curb + xs.sidewalk[side]!) mat = MAT_SIDEWALK;
          else continue;
          let mark = 0;
          if (mat === MAT_ROAD) {
            const s = sBase + pr.u;
            const lanesEdge = xs.median + xs.lanes * lw;
            if (xs.median === 0 && xs.dashedCentre) {
              if (ad < 0.06 && s % 9 < 3) mark = MARK_WHITE;
            } else if (xs.median === 0) {
              if (ad > 0.05 && ad < 0.17) mark = MARK_YELLOW;
            } else if (ad - xs.median < 0.3 && ad - xs.median > 0.15) mark = MARK_YELLOW;
            for (let k = 1; k < xs.lanes; k++) {
              if (Math.abs(ad - (xs.median + k * lw)) < 0.07 && s % 9 < 3) mark = MARK_WHITE;
            }
            if (Math.abs(ad - lanesEdge) < 0.07) mark = MARK_WHITE;
            if (xs.bike[side]! > 0 && xs.parking[side]! > 0 && Math.abs(ad - lanesEdge - xs.bike[side]!) < 0.07) mark = MARK_WHITE;
          }
          this.claim(j * this.w + i, mat, mark, road);
        }
      }
      sBase += piece.len;
    }
  }

  /** Stamp an oriented rectangle (a parking lot): cells still terrain become `mat`. */
  stampRect(cx: number, cy: number, yaw: number, hx: number, hy: number, mat: number): void {
    const c = Math.cos(yaw), s = Math.sin(yaw);
    const r = Math.hypot(hx, hy);
    const i0 = Math.max(0, Math.floor((cx - r - this.x0) / this.res)), i1 = Math.min(this.w - 1, Math.ceil((cx + r - this.x0) / this.res));
    const j0 = Math.max(0, Math.floor((cy - r - this.y0) / this.res)), j1 = Math.min(this.h - 1, Math.ceil((cy + r - this.y0) / this.res));
    for (let j = j0; j <= j1; j++) {
      const y = this.y0 + (j + 0.5) * this.res - cy;
      for (let i = i0; i <= i1; i++) {
        const x = this.x0 + (i + 0.5) * this.res - cx;
        if (Math.abs(c * x + s * y) > hx || Math.abs(-s * x + c * y) > hy) continue;
        const idx = j * this.w + i;
        if ((this.data[idx]! & MAT_MASK) === MAT_TERRAIN) this.data[idx] = mat;
      }
    }
  }

  /** Whether every sample (every `step` m) of an oriented rectangle lies on one of the `allowed` materials. */
  rectOn(cx: number, cy: number, yaw: number, hx: number, hy: number, allowed: readonly number[], step = 0.5): boolean {
    const c = Math.cos(yaw), s = Math.sin(yaw);
    const nx = Math.max(1, Math.ceil((2 * hx) / step)), ny = Math.max(1, Math.ceil((2 * hy) / step));
    for (let a = 0; a <= nx; a++) {
      const lx = -hx + (2 * hx * a) / nx;
      for (let b = 0; b <= ny; b++) {
        const ly = -hy + (2 * hy * b) / ny;
        const m = this.at(cx + c * lx - s * ly, cy + s * lx + c * ly) & MAT_MASK;
        if (!allowed.includes(m)) return false;
      }
    }
    return true;
  }
}

/** Integer hash of a lattice point → [0, 1). */
export function hash2(ix: number, iy: number, seed: number): number {
  let h = Math.imul(ix, 0x27d4eb2d) ^ Math.imul(iy, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Smooth value noise in [0, 1) at (x, y) with lattice spacing 1. */
export function valueNoise(x: number, y: number, seed: number): number {
  const ix = Math.floor(x), iy = Math.floor(y);
  const fx = x - ix, fy = y - iy;
  const ux = fx * fx * (3 - 2 * fx), uy = fy * fy * (3 - 2 * fy);
  const a = hash2(ix, iy, seed), b = hash2(ix + 1, iy, seed), c = hash2(ix, iy + 1, seed), d = hash2(ix + 1, iy + 1, seed);
  return a + (b - a) * ux + (c - a) * uy + (a - b - c + d) * ux * uy;
}
