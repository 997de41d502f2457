/**
 * Occ3D-nuScenes labels of a keyframe: `semantics` (uint8 200×200×16, [x, y, z] in the ego frame, 17 = free)
 * by analytic voxelisation of the world, `mask_lidar` from the accumulated LiDAR rays (voxels traversed or
 * hit) and `mask_camera` from camera rays (free voxels up to and including the first occupied one).
 */
import { OCC_FREE, OCC_GRID } from '../tables.js';
import { MATERIAL_OCC, MAT_MASK, type GroundMap } from './ground.js';
import type { Prism } from './prism.js';

const [NX, NY, NZ] = OCC_GRID.size;
const VS = OCC_GRID.voxel;
const [MINX, MINY, MINZ] = OCC_GRID.min;
/** z index of the voxel layer holding the ground surface (z = 0). */
export const GROUND_LAYER = Math.floor((0 - MINZ) / VS);

export interface EgoFrame { x: number; y: number; yaw: number }

export interface OccLabels { semantics: Uint8Array; maskLidar: Uint8Array; maskCamera: Uint8Array }

const idx = (i: number, j: number, k: number) => (i * NY + j) * NZ + k;

/**
 * Semantics: ground layer from the ground materials, then every prism whose grown shape (by 0.1 m) contains
 * a voxel centre above the ground layer; object prisms (object ≥ 0) are drawn last and win.
 */
export function voxelise(ego: EgoFrame, ground: GroundMap, prims: readonly Prism[]): Uint8Array {
  const sem = new Uint8Array(NX * NY * NZ).fill(OCC_FREE);
  const c = Math.cos(ego.yaw), s = Math.sin(ego.yaw);
  for (let i = 0; i < NX; i++) {
    const x = MINX + VS * (i + 0.5);
    for (let j = 0; j < NY; j++) {
      const y = MINY + VS * (j + 0.5);
      const code = ground.at(ego.x + c * x - s * y, ego.y + s * x + c * y);
      sem[idx(i, j, GROUND_LAYER)] = MATERIAL_OCC[code & MAT_MASK]!;
    }
  }
  const grow = 0.1;
  const reach = Math.hypot(40, 40) + 1;
  for (const pass of [0, 1]) {
    for (const p of prims) {
      if ((p.object >= 0 ? 1 : 0) !== pass) continue;
      const dx = p.cx - ego.x, dy = p.cy - ego.y;
      if (Math.hypot(dx, dy) - p.radius > reach) continue;
      // Prism centre and extent in the ego frame.
      const ex = c * dx + s * dy, ey = -s * dx + c * dy;
      const rr = p.radius + grow;
      const i0 = Math.max(0, Math.floor((ex - rr - MINX) / VS)), i1 = Math.min(NX - 1, Math.floor((ex + rr - MINX) / VS));
      const j0 = Math.max(0, Math.floor((ey - rr - MINY) / VS)), j1 = Math.min(NY - 1, Math.floor((ey + rr - MINY) / VS));
      const k0 = Math.max(GROUND_LAYER + 1, Math.floor((p.z0 - grow - MINZ) / VS)), k1 = Math.min(NZ - 1, Math.floor((p.z1 + grow - MINZ) / VS));
      if (i0 > i1 || j0 > j1 || k0 > k1) continue;
      for (let i = i0; i <= i1; i++) {
        const x = MINX + VS * (i + 0.5);
        for (let j = j0; j <= j1; j++) {
          const y = MINY + VS * (j + 0.5);
          const wx = ego.x + c * x - s * y, wy = ego.y + s * x + c * y;
          if (!p.contains(wx, wy, p.z0, grow)) continue;
          for (let k = k0; k <= k1; k++) {
            const z = MINZ + VS * (k + 0.5);
            if (z >= p.z0 - grow && z <= p.z1 + grow) sem[idx(i, j, k)] = p.occ;
          }
        }
      }
    }
  }
  return sem;
}

/**
 * 3-D DDA through the grid from a (ego frame, metres) along d (metres per unit t) for t ∈ [0, tLimit]: marks
 * every voxel visited in `mask`. With `sem`, stops after marking the first voxel that is not free.
 */
function dda(ax: number, ay: number, az: number, dxm: number, dym: number, dzm: number, tLimit: number, mask: Uint8Array, sem: Uint8Array | null): void {
  let px = (ax - MINX) / VS, py = (ay - MINY) / VS, pz = (az - MINZ) / VS;
  const dx = dxm / VS, dy = dym / VS, dz = dzm / VS;
  // Clip to the grid.
  let tEnter = 0, tExit = tLimit;
  if (Math.abs(dx) < 1e-12) { if (px < 0 || px >= NX) return; } else {
    let t0 = -px / dx, t1 = (NX - px) / dx;
    if (t0 > t1) { const t = t0; t0 = t1; t1 = t; }
    if (t0 > tEnter) tEnter = t0;
    if (t1 < tExit) tExit = t1;
  }
  if (Math.abs(dy) < 1e-12) { if (py < 0 || py >= NY) return; } else {
    let t0 = -py / dy, t1 = (NY - py) / dy;
    if (t0 > t1) { const t = t0; t0 = t1; t1 = t; }
    if (t0 > tEnter) tEnter = t0;
    if (t1 < tExit) tExit = t1;
  }
  if (Math.abs(dz) < 1e-12) { if (pz < 0 || pz >= NZ) return; } else {
    let t0 = -pz / dz, t1 = (NZ - pz) / dz;
    if (t0 > t1) { const t = t0; t0 = t1; t1 = t; }
    if (t0 > tEnter) tEnter = t0;
    if (t1 < tExit) tExit = t1;
  }
  if (tEnter > tExit) return;
  px += dx * tEnter; py += dy * tEnter; pz += dz * tEnter;
  let i = Math.min(NX - 1, Math.max(0, Math.floor(px)));
  let j = Math.min(NY - 1, Math.max(0, Math.floor(py)));
  let k = Math.min(NZ - 1, Math.max(0, Math.floor(pz)));
  const si = dx > 0 ? 1 : -1, sj = dy > 0 ? 1 : -1, sk = dz > 0 ? 1 : -1;
  const tdx = Math.abs(dx) > 1e-12 ? Math.abs(1 / dx) : Infinity;
  const tdy = Math.abs(dy) > 1e-12 ? Math.abs(1 / dy) : Infinity;
  const tdz = Math.abs(dz) > 1e-12 ? Math.abs(1 / dz) : Infinity;
  let tmx = tdx === Infinity ? Infinity : (dx > 0 ? i + 1 - px : px - i) * tdx + tEnter;
  let tmy = tdy === Infinity ? Infinity : (dy > 0 ? j + 1 - py : py - j) * tdy + tEnter;
  let tmz = tdz === Infinity ? Infinity : (dz > 0 ? k + 1 - pz : pz - k) * tdz + tEnter;
  for (;;) {
    const v = (i * NY + j) * NZ + k;
    mask[v] = 1;
    if (sem !== null && sem[v] !== OCC_FREE) return;
    if (tmx < tmy && tmx < tmz) {
      if (tmx > tExit) return;
      i += si; tmx += tdx;
      if (i < 0 || i >= NX) return;
    } else if (tmy < tmz) {
      if (tmy > tExit) return;
      j += sj; tmy += tdy;
      if (j < 0 || j >= NY) return;
    } else {
      if (tmz > tExit) return;
      k += sk; tmz += tdz;
      if (k < 0 || k >= NZ) return;
    }
  }
}

/** Accumulate LiDAR rays (origin and hits in the ego frame) into a mask: every voxel traversed or hit. */
export function markLidarRays(mask: Uint8Array, origin: [number, number, number], hits: Float64Array, count: number): void {
  const [ox, oy, oz] = origin;
  for (let n = 0; n < count; n++) dda(ox, oy, oz, hits[n * 3]! - ox, hits[n * 3 + 1]! - oy, hits[n * 3 + 2]! - oz, 1, mask, null);
}

/** Camera rays (unit directions in the ego frame) from an origin: free voxels up to and including the first occupied one. */
export function markCameraRays(mask: Uint8Array, sem: Uint8Array, origin: [number, number, number], dirs: Float64Array): void {
  const [ox, oy, oz] = origin;
  for (let n = 0; n < dirs.length; n += 3) dda(ox, oy, oz, dirs[n]!, dirs[n + 1]!, dirs[n + 2]!, Infinity, mask, sem);
}
