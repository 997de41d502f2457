/** Free-space bookkeeping of the world generator: intervals along a road side, and prism footprint overlaps. */
import type { Prism } from './prism.js';

/** Occupied intervals [a, b) along a road side. */
export class Intervals {
  private readonly list: [number, number][] = [];
  free(a: number, b: number): boolean {
    for (const [x, y] of this.list) if (a < y && b > x) return false;
    return true;
  }
  add(a: number, b: number): void {
    this.list.push([a, b]);
  }
}

/** Overlap test of prism footprints by separating axes (the slab normals of both). */
export function footprintsOverlap(a: Prism, b: Prism, margin: number): boolean {
  const dx = a.cx - b.cx, dy = a.cy - b.cy;
  if (dx * dx + dy * dy > (a.radius + b.radius + margin) ** 2) return false;
  const va = a.footprint(), vb = b.footprint();
  for (const p of [a, b]) {
    for (let j = 0; j < p.k; j++) {
      const [nx, ny] = p.normal(j);
      let amin = Infinity, amax = -Infinity, bmin = Infinity, bmax = -Infinity;
      for (const [x, y] of va) { const d = nx * x + ny * y; amin = Math.min(amin, d); amax = Math.max(amax, d); }
      for (const [x, y] of vb) { const d = nx * x + ny * y; bmin = Math.min(bmin, d); bmax = Math.max(bmax, d); }
      if (amax + margin <= bmin || bmax + margin <= amin) return false;
    }
  }
  return true;
}

/** Spatial hash of static footprints for overlap tests. */
export class FootprintIndex {
  private readonly cells = new Map<number, Prism[]>();
  private static readonly CELL = 16;
  private keys(p: Prism, grow: number): number[] {
    const r = p.radius + grow;
    const c = FootprintIndex.CELL;
    const out: number[] = [];
    for (let i = Math.floor((p.cx - r) / c); i <= Math.floor((p.cx + r) / c); i++)
      for (let j = Math.floor((p.cy - r) / c); j <= Math.floor((p.cy + r) / c); j++) out.push(i * 100003 + j);
    return out;
  }
  overlaps(p: Prism, margin: number): boolean {
    const seen = new Set<Prism>();
    for (const k of this.keys(p, margin)) {
      for (const q of this.cells.get(k) ?? []) {
        if (seen.has(q)) continue;
        seen.add(q);
        if (footprintsOverlap(p, q, margin)) return true;
      }
    }
    return false;
  }
  add(p: Prism): void {
    for (const k of this.keys(p, 0)) {
      const l = this.cells.get(k);
      if (l) l.push(p);
      else this.cells.set(k, [p]);
    }
  }
}
