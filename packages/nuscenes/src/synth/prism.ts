/**
 * The one shape of the synthetic world: a vertical convex prism, the intersection of k slabs in the ground
 * plane (k = 2: an oriented box; k = 4: a regular octagon, standing in for cylinders) and a z interval.
 * The LiDAR, the cameras and the Occ3D voxeliser all use the same exact ray / point tests on it, so the
 * three modalities agree.
 */

/** Surface kinds (for colour, texture and LiDAR reflectivity). */
export const Surface = {
  Plain: 0, Building: 1, Glass: 2, Tyre: 3, Cone: 4, StripedBarrier: 5, Foliage: 6, Bark: 7, Sign: 8, Skin: 9,
  Cloth: 10, Metal: 11, Concrete: 12, Bus: 13,
} as const;
export type Surface = (typeof Surface)[keyof typeof Surface];

export class Prism {
  /** Per slab j: s[4j] = nx, s[4j+1] = ny (unit normal in the ground plane), s[4j+2] = n·centre, s[4j+3] = half width. */
  readonly s: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  readonly k: number;
  /** Radius of the footprint's circumscribed circle. */
  readonly radius: number;
  private verts: number[] | null = null;

  /**
   * @param cx, cy centre of the footprint
   * @param yaw heading of the local x axis
   * @param hx, hy half extents along local x and y (octagon: hx = apothem, hy ignored)
   * @param z0, z1 bottom and top
   * @param octagon octagonal footprint instead of a rectangle
   * @param object index of the world object this part belongs to, −1 for static scenery
   * @param occ Occ3D class of the voxels it fills
   */
  constructor(
    readonly cx: number, readonly cy: number, readonly yaw: number,
    readonly hx: number, readonly hy: number, readonly z0: number, readonly z1: number,
    readonly octagon: boolean,
    readonly object: number,
    readonly occ: number,
    readonly r: number, readonly g: number, readonly b: number,
    readonly surface: Surface,
    /** LiDAR reflectivity 0..255 before incidence / noise. */
    readonly reflectivity: number,
  ) {
    this.k = octagon ? 4 : 2;
    const s = this.s;
    for (let j = 0; j < this.k; j++) {
      const a = yaw + (octagon ? (j * Math.PI) / 4 : (j * Math.PI) / 2);
      const nx = Math.cos(a), ny = Math.sin(a);
      s[4 * j] = nx;
      s[4 * j + 1] = ny;
      s[4 * j + 2] = nx * cx + ny * cy;
      s[4 * j + 3] = octagon || j === 0 ? hx : hy;
    }
    this.radius = octagon ? hx / Math.cos(Math.PI / 8) : Math.hypot(hx, hy);
  }

  /** Footprint vertices (x, y) counter-clockwise. */
  footprint(): [number, number][] {
    const out: [number, number][] = [];
    if (this.octagon) {
      for (let i = 0; i < 8; i++) {
        const a = this.yaw + Math.PI / 8 + (i * Math.PI) / 4;
        out.push([this.cx + this.radius * Math.cos(a), this.cy + this.radius * Math.sin(a)]);
      }
      return out;
    }
    const c = Math.cos(this.yaw), s = Math.sin(this.yaw);
    for (const [lx, ly] of [[1, 1], [-1, 1], [-1, -1], [1, -1]] as const) {
      const x = lx * this.hx, y = ly * this.hy;
      out.push([this.cx + c * x - s * y, this.cy + s * x + c * y]);
    }
    return out;
  }

  /** The 8 or 16 vertices as a flat [x, y, z, ...] array (computed once). */
  vertices(): number[] {
    if (this.verts) return this.verts;
    const v: number[] = [];
    for (const [x, y] of this.footprint()) v.push(x, y, this.z0, x, y, this.z1);
    return (this.verts = v);
  }

  /** Lower bound of the horizontal distance from (x, y) to the footprint (0 inside). */
  distanceLowerBound(x: number, y: number): number {
    const s = this.s;
    let d = 0;
    for (let j = 0; j < this.k; j++) d = Math.max(d, Math.abs(s[4 * j]! * x + s[4 * j + 1]! * y - s[4 * j + 2]!) - s[4 * j + 3]!);
    return d;
  }

  /** Whether a point lies inside the prism grown by `margin` on every side. */
  contains(x: number, y: number, z: number, margin = 0): boolean {
    if (z < this.z0 - margin || z > this.z1 + margin) return false;
    const s = this.s;
    for (let j = 0; j < this.k; j++) {
      if (Math.abs(s[4 * j]! * x + s[4 * j + 1]! * y - s[4 * j + 2]!) > s[4 * j + 3]! + margin) return false;
    }
    return true;
  }

  /** Unit normal (x, y) of slab j. */
  normal(j: number): [number, number] {
    return [this.s[4 * j]!, this.s[4 * j + 1]!];
  }
}

/** Face hit by the last successful `intersectPrism`: 0 bottom, 1 top, 2 + 2j (−n_j side), 3 + 2j (+n_j side). */
export let hitFace = -1;

/**
 * Entry distance t of the ray o + t·d into the prism (t > tMin), or Infinity. A ray starting inside reports
 * no hit (sensors are never inside scenery).
 */
export function intersectPrism(p: Prism, ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, tMin = 1e-6): number {
  let t0 = -Infinity, t1 = Infinity, face = -1;
  if (dz > 1e-12 || dz < -1e-12) {
    const inv = 1 / dz;
    let a = (p.z0 - oz) * inv, b = (p.z1 - oz) * inv;
    let f = 0;
    if (a > b) { const t = a; a = b; b = t; f = 1; }
    t0 = a; t1 = b; face = f;
  } else if (oz < p.z0 || oz > p.z1) return Infinity;
  const k = p.k, sl = p.s;
  for (let j = 0; j < k; j++) {
    const q = 4 * j;
    const nx = sl[q]!, ny = sl[q + 1]!, h = sl[q + 3]!;
    const dn = nx * dx + ny * dy;
    const on = nx * ox + ny * oy - sl[q + 2]!;
    if (dn > 1e-12 || dn < -1e-12) {
      const inv = 1 / dn;
      let a = (-h - on) * inv, b = (h - on) * inv;
      let f = 2 + 2 * j;
      if (a > b) { const t = a; a = b; b = t; f = 3 + 2 * j; }
      if (a > t0) { t0 = a; face = f; }
      if (b < t1) t1 = b;
      if (t0 > t1) return Infinity;
    } else if (on < -h || on > h) return Infinity;
  }
  if (t0 > t1 || t0 <= tMin) return Infinity;
  hitFace = face;
  return t0;
}

/** Outward normal of a face of a prism. */
export function faceNormal(p: Prism, face: number): [number, number, number] {
  if (face === 0) return [0, 0, -1];
  if (face === 1) return [0, 0, 1];
  const j = (face - 2) >> 1;
  const sgn = (face - 2) & 1 ? 1 : -1;
  return [sgn * p.s[4 * j]!, sgn * p.s[4 * j + 1]!, 0];
}
