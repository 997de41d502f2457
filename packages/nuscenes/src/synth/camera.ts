/**
 * Camera renderer: a z-buffer over the analytic ground plane and the world's prisms. Each prism is rasterised
 * over its projected screen bounding box with the exact ray–prism test (the same test the LiDAR uses), so a
 * box appears exactly where the calibration puts it. Deferred shading: sky gradient, ground materials with
 * lane markings and noise texture, facades with windows, per-face Lambert shading, distance haze.
 * Besides the RGBA image it returns, per pixel, the index of the world object seen (−1: none) and per object
 * the pixels it covers without occlusion (for the visibility level).
 */
import { quatToMatrix, type Mat3, type Quat, type Vec3 } from '@bevzoo/core';
import { MARK_WHITE, MARK_YELLOW, MAT_FLAT, MAT_MASK, MAT_ROAD, MAT_SIDEWALK, hash2, valueNoise, type GroundMap } from './ground.js';
import { Surface, hitFace, intersectPrism, type Prism } from './prism.js';
import type { Environment } from './world.js';

export interface CameraView {
  width: number; height: number;
  /** Intrinsics. */
  fx: number; fy: number; cx: number; cy: number;
  /** Camera → world rotation (optical frame) and camera centre in the world. */
  rotation: Quat;
  origin: Vec3;
}

export interface RenderResult {
  /** RGBA, width × height × 4. */
  rgba: Uint8Array;
  /** World object index per pixel, −1 where no object is seen. */
  objectAt: Int32Array;
  /** Pixels each object would cover without occlusion. */
  coverage: Int32Array;
  /** Pixels where each object is the nearest surface. */
  visible: Int32Array;
}

const NEAR = 0.05;

/** Per-thread scratch buffers reused across frames of the same size. */
let scratch: { n: number; dx: Float64Array; dy: Float64Array; dz: Float64Array; depth: Float64Array; id: Int32Array; face: Int8Array; stamp: Int32Array } | null = null;

/**
 * Render one camera. `prims` are the static prisms followed by the object parts at the frame's time; parts of
 * one object must be consecutive. `seed` varies the sensor noise.
 */
export function renderCamera(view: CameraView, env: Environment, ground: GroundMap, prims: readonly Prism[], nObjects: number, seed: number): RenderResult {
  const { width: W, height: H, fx, fy, cx, cy } = view;
  const R: Mat3 = quatToMatrix(view.rotation);
  const [ox, oy, oz] = view.origin;
  const n = W * H;
  if (!scratch || scratch.n !== n) {
    scratch = { n, dx: new Float64Array(n), dy: new Float64Array(n), dz: new Float64Array(n), depth: new Float64Array(n), id: new Int32Array(n), face: new Int8Array(n), stamp: new Int32Array(n) };
  }
  const { dx, dy, dz, depth, id, face, stamp } = scratch;
  depth.fill(Infinity);
  id.fill(-1);
  stamp.fill(-1);
  for (let v = 0; v < H; v++) {
    const yc = (v + 0.5 - cy) / fy;
    for (let u = 0; u < W; u++) {
      const xc = (u + 0.5 - cx) / fx;
      const i = v * W + u;
      dx[i] = R[0] * xc + R[1] * yc + R[2];
      dy[i] = R[3] * xc + R[4] * yc + R[5];
      const z = (dz[i] = R[6] * xc + R[7] * yc + R[8]);
      if (z < -1e-9) {
        const t = -oz / z;
        if (t < 2000) { depth[i] = t; id[i] = -2; }
      }
    }
  }

  const coverage = new Int32Array(nObjects);
  // Visit object parts first (in order: parts of an object are consecutive, for coverage counting), then
  // static scenery front to back with a per-pixel early out against the depth buffer.
  const objOrder: number[] = [], statOrder: number[] = [];
  const zminOf = new Float64Array(prims.length);
  for (let pi = 0; pi < prims.length; pi++) {
    const p = prims[pi]!;
    const wx = p.cx - ox, wy = p.cy - oy, wz = (p.z0 + p.z1) / 2 - oz;
    const zc = R[2] * wx + R[5] * wy + R[8] * wz;
    const rad = Math.hypot(p.radius, (p.z1 - p.z0) / 2);
    if (zc < -rad || zc - rad > 600) continue;
    zminOf[pi] = zc - rad;
    (p.object >= 0 ? objOrder : statOrder).push(pi);
  }
  statOrder.sort((a, b) => zminOf[a]! - zminOf[b]! || a - b);
  for (const pi of objOrder.concat(statOrder)) {
    const p = prims[pi]!;
    const bb = screenBounds(p, R, ox, oy, oz, fx, fy, cx, cy, W, H);
    if (!bb) continue;
    const [iu0, iu1, iv0, iv1] = bb;
    const obj = p.object;
    const zmin = obj >= 0 ? -Infinity : zminOf[pi]!;
    for (let v = iv0; v <= iv1; v++) {
      let i = v * W + iu0;
      for (let u = iu0; u <= iu1; u++, i++) {
        if (depth[i]! <= zmin) continue;
        const t = intersectPrism(p, ox, oy, oz, dx[i]!, dy[i]!, dz[i]!);
        if (t === Infinity) continue;
        if (obj >= 0 && stamp[i] !== obj) { stamp[i] = obj; coverage[obj]++; }
        if (t < depth[i]!) { depth[i] = t; id[i] = pi; face[i] = hitFace; }
      }
    }
  }

  // Shading.
  const rgba = new Uint8Array(n * 4);
  const objectAt = new Int32Array(n).fill(-1);
  const visible = new Int32Array(nObjects);
  const [sx, sy, sz] = env.sun;
  const tex = env.texture;
  const hazeDist = env.lighting === 'overcast' ? 260 : 420;
  const hr = env.skyHorizon[0], hg = env.skyHorizon[1], hb = env.skyHorizon[2];
  for (let i = 0; i < n; i++) {
    const h = id[i]!;
    let r: number, g: number, b: number;
    const ddx = dx[i]!, ddy = dy[i]!, ddz = dz[i]!;
    const dn = Math.sqrt(ddx * ddx + ddy * ddy + ddz * ddz);
    if (h === -1) {
      const el = Math.max(0, ddz / dn);
      const f = Math.min(1, el * 2.2);
      r = hr + (env.skyTop[0] - hr) * f;
      g = hg + (env.skyTop[1] - hg) * f;
      b = hb + (env.skyTop[2] - hb) * f;
    } else {
      const t = depth[i]!;
      const px = ox + ddx * t, py = oy + ddy * t, pz = oz + ddz * t;
      let nx = 0, ny = 0, nz = 1;
      if (h === -2) {
        const code = ground.at(px, py);
        const m = code & MAT_MASK;
        const n1 = valueNoise(px * 0.6, py * 0.6, tex);
        const n2 = valueNoise(px * 3.1, py * 3.1, tex + 7);
        let base: readonly number[];
        let k: number;
        if (code & (MARK_WHITE | MARK_YELLOW)) {
          base = code & MARK_WHITE ? [228, 228, 222] : [225, 185, 60];
          k = 0.85 + 0.15 * n2;
        } else if (m === MAT_ROAD) {
          base = env.road;
          k = 0.86 + 0.14 * n1 + 0.1 * (n2 - 0.5);
        } else if (m === MAT_SIDEWALK) {
          base = env.sidewalk;
          const fxx = px / 1.2 - Math.floor(px / 1.2), fyy = py / 1.2 - Math.floor(py / 1.2);
          k = (fxx < 0.05 || fyy < 0.05 ? 0.82 : 1) * (0.92 + 0.08 * n2);
        } else if (m === MAT_FLAT) {
          base = env.flat;
          k = 0.9 + 0.1 * n2;
        } else {
          base = env.terrain;
          k = 0.7 + 0.35 * n1 + 0.15 * (n2 - 0.5);
        }
        r = base[0]! * k; g = base[1]! * k; b = base[2]! * k;
      } else {
        const p = prims[h]!;
        if (p.object >= 0) { objectAt[i] = p.object; visible[p.object]++; }
        const f = face[i]!;
        if (f === 0) nz = -1;
        else if (f > 1) {
          const q = (f - 2) & ~1, sg = (f & 1) === 1 ? 1 : -1;
          nx = sg * p.s[q * 2]!; ny = sg * p.s[q * 2 + 1]!; nz = 0;
        }
        r = p.r; g = p.g; b = p.b;
        switch (p.surface) {
          case Surface.Building: {
            if (f === 1) { r *= 0.7; g *= 0.7; b *= 0.7; break; }
            if (f === 0) break;
            const along = -ny * px + nx * py;
            const fl = pz / 3.3 - Math.floor(pz / 3.3);
            const bay = along / 2.7 - Math.floor(along / 2.7);
            if (pz < 3.3) {
              if (fl > 0.1 && fl < 0.85 && bay > 0.1 && bay < 0.9) { r = 55; g = 62; b = 72; }
            } else if (fl > 0.3 && fl < 0.8 && bay > 0.22 && bay < 0.78) {
              const lit = hash2(Math.floor(along / 2.7), Math.floor(pz / 3.3), tex) < 0.15;
              r = lit ? 170 : 70; g = lit ? 160 : 85; b = lit ? 120 : 105;
            }
            break;
          }
          case Surface.Glass:
            if (f !== 1) { r = r * 0.2 + 25; g = g * 0.2 + 32; b = b * 0.2 + 42; }
            break;
          case Surface.Bus: {
            const rel = (pz - p.z0) / (p.z1 - p.z0);
            if (f > 1 && rel > 0.45 && rel < 0.85) { r = 40; g = 50; b = 62; }
            break;
          }
          case Surface.Cone:
            if (pz > 0.5 && pz < 0.72) { r = 240; g = 240; b = 240; }
            break;
          case Surface.StripedBarrier: {
            const q = -Math.sin(p.yaw) * px + Math.cos(p.yaw) * py;
            if ((Math.floor(q / 0.5) & 1) === 0) { r = 235; g = 235; b = 235; }
            break;
          }
          case Surface.Foliage: {
            const k = 0.75 + 0.4 * valueNoise(px * 2.3 + pz, py * 2.3 - pz, tex + 3);
            r *= k; g *= k; b *= k;
            break;
          }
          case Surface.Concrete: {
            const k = 0.9 + 0.15 * valueNoise(px * 4 + pz * 3, py * 4, tex + 5);
            r *= k; g *= k; b *= k;
            break;
          }
          default:
            break;
        }
      }
      const lambert = Math.max(0, nx * sx + ny * sy + nz * sz);
      const light = env.ambient + env.direct * lambert + 0.08 * nz;
      r *= light; g *= light; b *= light;
      const fh = 1 - Math.exp(-(t * dn) / hazeDist);
      r += (hr - r) * fh; g += (hg - g) * fh; b += (hb - b) * fh;
    }
    const u = i % W, v = (i / W) | 0;
    const noise = (hash2(u, v, seed) - 0.5) * 7;
    const o = i * 4;
    rgba[o] = clamp8(r + noise);
    rgba[o + 1] = clamp8(g + noise);
    rgba[o + 2] = clamp8(b + noise);
    rgba[o + 3] = 255;
  }
  return { rgba, objectAt, coverage, visible };
}

/**
 * Pixel bounds [u0, u1, v0, v1] of a prism: projections of its vertices in front of the near plane and of
 * the points where its edges cross the near plane; null when it is entirely behind or off-screen.
 */
function screenBounds(p: Prism, R: Mat3, ox: number, oy: number, oz: number, fx: number, fy: number, cx: number, cy: number, W: number, H: number): [number, number, number, number] | null {
  const v = p.vertices();
  const n = v.length / 3;
  const cam = camScratch.length >= n * 3 ? camScratch : (camScratch = new Float64Array(n * 3));
  let front = 0;
  for (let k = 0; k < n; k++) {
    const ax = v[k * 3]! - ox, ay = v[k * 3 + 1]! - oy, az = v[k * 3 + 2]! - oz;
    cam[k * 3] = R[0] * ax + R[3] * ay + R[6] * az;
    cam[k * 3 + 1] = R[1] * ax + R[4] * ay + R[7] * az;
    const z = (cam[k * 3 + 2] = R[2] * ax + R[5] * ay + R[8] * az);
    if (z > NEAR) front++;
  }
  if (front === 0) return null;
  let u0 = Infinity, u1 = -Infinity, v0 = Infinity, v1 = -Infinity;
  const add = (x: number, y: number, z: number) => {
    const pu = (fx * x) / z + cx, pv = (fy * y) / z + cy;
    if (pu < u0) u0 = pu;
    if (pu > u1) u1 = pu;
    if (pv < v0) v0 = pv;
    if (pv > v1) v1 = pv;
  };
  for (let k = 0; k < n; k++) if (cam[k * 3 + 2]! > NEAR) add(cam[k * 3]!, cam[k * 3 + 1]!, cam[k * 3 + 2]!);
  if (front < n) {
    // Vertices are (bottom, top) pairs around the footprint: edges = verticals, bottom ring, top ring.
    const m = n / 2;
    const edge = (a: number, b: number) => {
      const za = cam[a * 3 + 2]!, zb = cam[b * 3 + 2]!;
      if ((za > NEAR) === (zb > NEAR)) return;
      const t = (NEAR - za) / (zb - za);
      add(cam[a * 3]! + t * (cam[b * 3]! - cam[a * 3]!), cam[a * 3 + 1]! + t * (cam[b * 3 + 1]! - cam[a * 3 + 1]!), NEAR);
    };
    for (let q = 0; q < m; q++) {
      const r = (q + 1) % m;
      edge(2 * q, 2 * q + 1);
      edge(2 * q, 2 * r);
      edge(2 * q + 1, 2 * r + 1);
    }
  }
  const iu0 = Math.max(0, Math.floor(u0 - 0.5)), iu1 = Math.min(W - 1, Math.ceil(u1 + 0.5));
  const iv0 = Math.max(0, Math.floor(v0 - 0.5)), iv1 = Math.min(H - 1, Math.ceil(v1 + 0.5));
  if (iu0 > iu1 || iv0 > iv1) return null;
  return [iu0, iu1, iv0, iv1];
}
let camScratch = new Float64Array(48);

function clamp8(x: number): number {
  return x < 0 ? 0 : x > 255 ? 255 : Math.round(x);
}

/** Project a world point: pixel coordinates (continuous; pixel (i, j) spans [i, i+1) × [j, j+1)) and depth. */
export function projectPoint(view: CameraView, p: Vec3): { u: number; v: number; depth: number } {
  const R = quatToMatrix(view.rotation);
  const ax = p[0] - view.origin[0], ay = p[1] - view.origin[1], az = p[2] - view.origin[2];
  const x = R[0] * ax + R[3] * ay + R[6] * az;
  const y = R[1] * ax + R[4] * ay + R[7] * az;
  const z = R[2] * ax + R[5] * ay + R[8] * az;
  return { u: (view.fx * x) / z + view.cx, v: (view.fy * y) / z + view.cy, depth: z };
}
