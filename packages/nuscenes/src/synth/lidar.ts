/**
 * A 32-beam spinning LiDAR ray-cast against the world: the ground plane and every prism. Each prism is only
 * tested against the rays of its angular window (azimuth from its vertices, elevation from a conservative
 * distance bound), which keeps a scan at a few tens of milliseconds. Output: float32 × 5 per point
 * (x, y, z, intensity, ring) in the LIDAR_TOP frame, as in nuScenes' .pcd.bin files.
 */
import { quatToMatrix, type Mat3, type Rng, type Vec3 } from '@bevzoo/core';
import { MARK_WHITE, MARK_YELLOW, MAT_FLAT, MAT_MASK, MAT_ROAD, MAT_SIDEWALK, type GroundMap } from './ground.js';
import { faceNormal, hitFace, intersectPrism, type Prism } from './prism.js';
import { LIDAR_BEAMS, LIDAR_ELEV_MAX, LIDAR_ELEV_MIN } from './rig.js';

export interface LidarModel {
  azimuthSteps: number;
  maxRange: number;
  minRange: number;
  /** Sensor-frame unit directions, ray r = azimuthIndex · beams + beam. */
  dx: Float64Array; dy: Float64Array; dz: Float64Array;
}

export function makeLidarModel(azimuthSteps: number, maxRange: number): LidarModel {
  const n = azimuthSteps * LIDAR_BEAMS;
  const dx = new Float64Array(n), dy = new Float64Array(n), dz = new Float64Array(n);
  for (let i = 0; i < azimuthSteps; i++) {
    const a = (2 * Math.PI * i) / azimuthSteps;
    for (let b = 0; b < LIDAR_BEAMS; b++) {
      const e = LIDAR_ELEV_MIN + ((LIDAR_ELEV_MAX - LIDAR_ELEV_MIN) * b) / (LIDAR_BEAMS - 1);
      const r = i * LIDAR_BEAMS + b;
      dx[r] = Math.cos(e) * Math.cos(a);
      dy[r] = Math.cos(e) * Math.sin(a);
      dz[r] = Math.sin(e);
    }
  }
  return { azimuthSteps, maxRange, minRange: 1.0, dx, dy, dz };
}

/** A scan. Its arrays are views of per-thread scratch buffers, valid until the next castLidar call. */
export interface LidarScan {
  /** n × 5 float32: x, y, z, intensity, ring (sensor frame). */
  points: Float32Array;
  count: number;
  /** Sensor origin and hit points in the world frame (for Occ3D ray accumulation). */
  origin: Vec3;
  hits: Float64Array;
}

/** Per-thread scratch buffers reused across scans of the same size. */
let scratch: {
  n: number; wx: Float64Array; wy: Float64Array; wz: Float64Array; tBest: Float64Array; hit: Int32Array; face: Int8Array;
  points: Float32Array; hits: Float64Array;
} | null = null;

/** Reflectivity of ground materials. */
function groundReflectivity(code: number): number {
  if (code & MARK_WHITE) return 70;
  if (code & MARK_YELLOW) return 55;
  const m = code & MAT_MASK;
  return m === MAT_ROAD ? 7 : m === MAT_SIDEWALK ? 20 : m === MAT_FLAT ? 16 : 12;
}

/**
 * Cast one scan. `rotation`/`origin` give the sensor pose in the world frame; `prims` are all prisms
 * (static and object parts at the scan's time).
 */
export function castLidar(
  model: LidarModel, ground: GroundMap, prims: readonly Prism[], rotation: [number, number, number, number], origin: Vec3, rng: Rng,
): LidarScan {
  const R: Mat3 = quatToMatrix(rotation);
  const nB = LIDAR_BEAMS, nA = model.azimuthSteps, n = nA * nB;
  const [ox, oy, oz] = origin;
  if (!scratch || scratch.n !== n) {
    scratch = {
      n, wx: new Float64Array(n), wy: new Float64Array(n), wz: new Float64Array(n), tBest: new Float64Array(n),
      hit: new Int32Array(n), face: new Int8Array(n), points: new Float32Array(n * 5), hits: new Float64Array(n * 3),
    };
  }
  const { wx, wy, wz, tBest, hit, face, points, hits } = scratch;
  tBest.fill(model.maxRange);
  hit.fill(-1);
  for (let r = 0; r < n; r++) {
    const x = model.dx[r]!, y = model.dy[r]!, z = model.dz[r]!;
    wx[r] = R[0] * x + R[1] * y + R[2] * z;
    wy[r] = R[3] * x + R[4] * y + R[5] * z;
    const dzw = (wz[r] = R[6] * x + R[7] * y + R[8] * z);
    if (dzw < -1e-9) {
      const t = -oz / dzw;
      if (t < tBest[r]!) { tBest[r] = t; hit[r] = -2; }
    }
  }
  const dEl = (LIDAR_ELEV_MAX - LIDAR_ELEV_MIN) / (nB - 1);
  const dAz = (2 * Math.PI) / nA;
  const margin = (1.5 * Math.PI) / 180;
  for (let pi = 0; pi < prims.length; pi++) {
    const p = prims[pi]!;
    const cdx = p.cx - ox, cdy = p.cy - oy;
    const dc = Math.hypot(cdx, cdy);
    if (dc - p.radius > model.maxRange) continue;
    const rhoMin = p.distanceLowerBound(ox, oy);
    let az0 = 0, az1 = nA - 1;
    let full = rhoMin < 0.3;
    if (!full) {
      // Azimuth window from the vertices in the sensor frame.
      const v = p.vertices();
      const cs = toSensorAz(R, cdx, cdy, (p.z0 + p.z1) / 2 - oz);
      let lo = Infinity, hi = -Infinity;
      for (let k = 0; k < v.length; k += 3) {
        const a = toSensorAz(R, v[k]! - ox, v[k + 1]! - oy, v[k + 2]! - oz);
        let d = a - cs;
        d -= 2 * Math.PI * Math.round(d / (2 * Math.PI));
        if (d < lo) lo = d;
        if (d > hi) hi = d;
      }
      if (hi - lo > Math.PI) full = true;
      else {
        az0 = Math.floor((cs + lo - margin) / dAz);
        az1 = Math.ceil((cs + hi + margin) / dAz);
      }
    }
    // Elevation window (conservative).
    const rhoMax = dc + p.radius;
    const zt = p.z1 - oz, zb = p.z0 - oz;
    const elHi = Math.atan2(zt, zt > 0 ? Math.max(rhoMin, 1e-3) : rhoMax) + margin;
    const elLo = Math.atan2(zb, zb < 0 ? Math.max(rhoMin, 1e-3) : rhoMax) - margin;
    const b0 = Math.max(0, Math.floor((elLo - LIDAR_ELEV_MIN) / dEl)), b1 = Math.min(nB - 1, Math.ceil((elHi - LIDAR_ELEV_MIN) / dEl));
    if (b0 > b1) continue;
    if (full) { az0 = 0; az1 = nA - 1; }
    for (let ai = az0; ai <= az1; ai++) {
      const i = ((ai % nA) + nA) % nA;
      const base = i * nB;
      for (let b = b0; b <= b1; b++) {
        const r = base + b;
        const t = intersectPrism(p, ox, oy, oz, wx[r]!, wy[r]!, wz[r]!);
        if (t < tBest[r]!) { tBest[r] = t; hit[r] = pi; face[r] = hitFace; }
      }
    }
  }
  let count = 0;
  // Per-point noise from a fast local generator (mulberry32) seeded by the scan's stream.
  let st = rng.int(0x100000000) | 0;
  const rand = (): number => {
    st = (st + 0x6d2b79f5) | 0;
    let z = st;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  for (let r = 0; r < n; r++) {
    const h = hit[r]!;
    if (h === -1) continue;
    const t = tBest[r]!;
    if (t < model.minRange || t >= model.maxRange) continue;
    const u = t / model.maxRange;
    if (rand() < 0.01 + 0.12 * u * u) continue;
    // Range noise: sum of three uniforms, σ = 1.2 cm.
    const tn = t + (rand() + rand() + rand() - 1.5) * 0.024;
    let refl: number, cosi: number;
    if (h === -2) {
      refl = groundReflectivity(ground.at(ox + wx[r]! * t, oy + wy[r]! * t));
      cosi = -wz[r]!;
    } else {
      const p = prims[h]!;
      refl = p.reflectivity;
      const nrm = faceNormal(p, face[r]!);
      cosi = Math.abs(nrm[0] * wx[r]! + nrm[1] * wy[r]! + nrm[2] * wz[r]!);
    }
    const intensity = Math.max(0, Math.min(255, Math.round(refl * (0.3 + 0.7 * cosi) * (0.8 + 0.4 * rand()))));
    const o5 = count * 5, o3 = count * 3;
    points[o5] = model.dx[r]! * tn;
    points[o5 + 1] = model.dy[r]! * tn;
    points[o5 + 2] = model.dz[r]! * tn;
    points[o5 + 3] = intensity;
    points[o5 + 4] = r % nB;
    hits[o3] = ox + wx[r]! * tn;
    hits[o3 + 1] = oy + wy[r]! * tn;
    hits[o3 + 2] = oz + wz[r]! * tn;
    count++;
  }
  return { points: points.subarray(0, count * 5), count, origin: [ox, oy, oz], hits: hits.subarray(0, count * 3) };
}

/** Azimuth in the sensor frame of a world-frame offset (R is sensor → world, so sensor = Rᵀ·offset). */
function toSensorAz(R: Mat3, x: number, y: number, z: number): number {
  const sx = R[0] * x + R[3] * y + R[6] * z;
  const sy = R[1] * x + R[4] * y + R[7] * z;
  return Math.atan2(sy, sx);
}
