/**
 * Annotated objects of the synthetic world: nuScenes categories with nuScenes' size statistics, a shape made
 * of a few prism parts inside the annotation box (so that LiDAR returns and image pixels fall inside the
 * box), colours varying by class and instance, and motion along a path with a shared speed profile.
 */
import type { Rng, Vec3 } from '@bevzoo/core';
import type { DetectionClass } from '../tables.js';
import type { Path } from './path.js';
import { Prism, Surface } from './prism.js';

export type ObjectKind =
  | 'car' | 'truck' | 'bus' | 'trailer' | 'construction' | 'pedestrian' | 'child' | 'worker'
  | 'motorcycle' | 'bicycle' | 'cone' | 'barrier' | 'rack' | 'bin';

interface KindSpec {
  category: string;
  det: DetectionClass | null;
  /** Occ3D label. */
  occ: number;
  /** Mean and standard deviation of width, length, height (nuScenes statistics). */
  mean: Vec3;
  std: Vec3;
}

export const KIND_SPECS: Record<ObjectKind, KindSpec> = {
  car: { category: 'vehicle.car', det: 'car', occ: 4, mean: [1.95, 4.62, 1.73], std: [0.16, 0.42, 0.2] },
  truck: { category: 'vehicle.truck', det: 'truck', occ: 10, mean: [2.5, 6.9, 2.8], std: [0.22, 1.5, 0.45] },
  bus: { category: 'vehicle.bus.rigid', det: 'bus', occ: 3, mean: [2.95, 11.2, 3.5], std: [0.1, 1.3, 0.25] },
  trailer: { category: 'vehicle.trailer', det: 'trailer', occ: 9, mean: [2.9, 12.3, 3.9], std: [0.15, 2.2, 0.35] },
  construction: { category: 'vehicle.construction', det: 'construction_vehicle', occ: 5, mean: [2.8, 6.4, 3.2], std: [0.3, 1.2, 0.45] },
  pedestrian: { category: 'human.pedestrian.adult', det: 'pedestrian', occ: 7, mean: [0.67, 0.73, 1.77], std: [0.1, 0.12, 0.1] },
  child: { category: 'human.pedestrian.child', det: 'pedestrian', occ: 7, mean: [0.5, 0.5, 1.3], std: [0.06, 0.06, 0.12] },
  worker: { category: 'human.pedestrian.construction_worker', det: 'pedestrian', occ: 7, mean: [0.7, 0.75, 1.78], std: [0.1, 0.12, 0.08] },
  motorcycle: { category: 'vehicle.motorcycle', det: 'motorcycle', occ: 6, mean: [0.77, 2.1, 1.47], std: [0.1, 0.18, 0.12] },
  bicycle: { category: 'vehicle.bicycle', det: 'bicycle', occ: 2, mean: [0.6, 1.7, 1.3], std: [0.08, 0.12, 0.1] },
  cone: { category: 'movable_object.trafficcone', det: 'traffic_cone', occ: 8, mean: [0.41, 0.42, 1.07], std: [0.05, 0.05, 0.12] },
  barrier: { category: 'movable_object.barrier', det: 'barrier', occ: 1, mean: [2.5, 0.5, 0.98], std: [0.3, 0.08, 0.1] },
  rack: { category: 'static_object.bicycle_rack', det: null, occ: 0, mean: [0.5, 3.5, 0.9], std: [0.05, 0.8, 0.05] },
  bin: { category: 'movable_object.pushable_pullable', det: null, occ: 0, mean: [0.65, 0.7, 1.1], std: [0.05, 0.05, 0.08] },
};

/** A part in the object's local frame (x forward along the length, y left, z up from the ground). */
export interface Part {
  x: number; y: number; hx: number; hy: number; z0: number; z1: number; oct: boolean;
  r: number; g: number; b: number; surface: Surface; refl: number;
}

/** Speed v(t) = clamp(v0 + a·t, 0, vmax), t in seconds from the scene start. */
export interface Profile { v0: number; a: number; vmax: number }

export function profileSpeed(p: Profile, t: number): number {
  return Math.min(p.vmax, Math.max(0, p.v0 + p.a * t));
}

/** Distance travelled in [0, t]. */
export function profileDistance(p: Profile, t: number): number {
  const v0 = Math.min(p.vmax, Math.max(0, p.v0));
  if (p.a === 0) return v0 * t;
  const tc = p.a > 0 ? (p.vmax - v0) / p.a : v0 / -p.a;
  if (t <= tc) return v0 * t + 0.5 * p.a * t * t;
  return v0 * tc + 0.5 * p.a * tc * tc + profileSpeed(p, tc + 1) * (t - tc);
}

export type Motion =
  | { kind: 'static'; x: number; y: number; yaw: number }
  | { kind: 'path'; path: Path; s0: number; profile: Profile };

export interface WorldObject {
  kind: ObjectKind;
  category: string;
  det: DetectionClass | null;
  occ: number;
  /** Annotation size: width, length, height. */
  size: Vec3;
  parts: Part[];
  motion: Motion;
  /** Attribute while moving / while still (null: none). */
  movingAttribute: string | null;
  stillAttribute: string | null;
}

export interface Pose2 { x: number; y: number; yaw: number; speed: number }

export function objectPose(o: WorldObject, t: number): Pose2 {
  const m = o.motion;
  if (m.kind === 'static') return { x: m.x, y: m.y, yaw: m.yaw, speed: 0 };
  const p = m.path.at(m.s0 + profileDistance(m.profile, t));
  return { x: p.x, y: p.y, yaw: p.heading, speed: profileSpeed(m.profile, t) };
}

export function objectAttribute(o: WorldObject, t: number): string | null {
  return o.movingAttribute !== null && objectPose(o, t).speed > 0.2 ? o.movingAttribute : o.stillAttribute;
}

/** World prisms of an object's parts at a pose. */
export function objectPrims(o: WorldObject, index: number, pose: Pose2, out: Prism[]): void {
  const c = Math.cos(pose.yaw), s = Math.sin(pose.yaw);
  for (const p of o.parts) {
    out.push(new Prism(pose.x + c * p.x - s * p.y, pose.y + s * p.x + c * p.y, pose.yaw, p.hx, p.hy, p.z0, p.z1, p.oct, index, o.occ, p.r, p.g, p.b, p.surface, p.refl));
  }
}

function clampNormal(rng: Rng, mean: number, std: number): number {
  return Math.min(mean + 2.2 * std, Math.max(mean - 2.2 * std, rng.normal(mean, std)));
}

function jitter(rng: Rng, c: readonly number[], amount = 12): [number, number, number] {
  const f = rng.uniform(-amount, amount);
  return [0, 1, 2].map((i) => Math.max(0, Math.min(255, Math.round(c[i]! + f + rng.uniform(-4, 4))))) as [number, number, number];
}

const CAR_PAINT = [[225, 225, 222], [28, 28, 30], [150, 152, 156], [92, 94, 98], [165, 25, 25], [25, 45, 125], [35, 85, 45], [205, 195, 165], [115, 72, 40], [240, 240, 236], [60, 110, 170], [200, 140, 30]];
const TRUCK_PAINT = [[235, 235, 230], [200, 40, 30], [30, 70, 150], [240, 200, 40], [90, 100, 90], [250, 250, 250]];
const CLOTH = [[30, 30, 35], [50, 60, 110], [120, 30, 30], [200, 200, 195], [70, 80, 70], [160, 120, 80], [90, 40, 100], [40, 90, 120], [210, 170, 60], [100, 100, 105]];
const SKIN = [[235, 200, 170], [200, 150, 110], [140, 95, 65], [95, 65, 45]];
const TYRE: [number, number, number] = [22, 22, 24];

function part(x: number, y: number, hx: number, hy: number, z0: number, z1: number, col: readonly number[], surface: Surface, refl: number, oct = false): Part {
  return { x, y, hx, hy, z0, z1, oct, r: col[0]!, g: col[1]!, b: col[2]!, surface, refl };
}

export interface ObjectOptions {
  /** Cycles: a rider on it. */
  rider?: boolean;
  /** Pedestrians: sitting. */
  sitting?: boolean;
  /** Vehicles: parked (else stopped when still). */
  parked?: boolean;
  /** Whether it can move (gives the moving attribute). */
  moving?: boolean;
}

/** Draw an object of a kind: size from the class statistics, parts, colours, attributes. */
export function makeObject(kind: ObjectKind, rng: Rng, motion: Motion, opts: ObjectOptions = {}): WorldObject {
  const spec = KIND_SPECS[kind];
  let w = clampNormal(rng, spec.mean[0], spec.std[0]);
  let l = clampNormal(rng, spec.mean[1], spec.std[1]);
  let h = clampNormal(rng, spec.mean[2], spec.std[2]);
  const parts: Part[] = [];
  let movingAttribute: string | null = null, stillAttribute: string | null = null;
  const vehicleAttrs = () => {
    movingAttribute = opts.moving ? 'vehicle.moving' : null;
    stillAttribute = opts.parked ? 'vehicle.parked' : 'vehicle.stopped';
  };
  switch (kind) {
    case 'car': {
      const paint = jitter(rng, rng.pick(CAR_PAINT));
      const rw = 0.31 * (h / 1.73);
      for (const ax of [l / 2 - 0.19 * l, -l / 2 + 0.2 * l]) parts.push(part(ax, 0, rw, w / 2, 0, 1.8 * rw, TYRE, Surface.Tyre, 8));
      parts.push(part(0, 0, l / 2, w / 2, 0.17 * h, 0.58 * h, paint, Surface.Metal, rng.uniform(25, 60)));
      parts.push(part(-0.06 * l, 0, 0.29 * l, 0.44 * w, 0.58 * h, h, paint, Surface.Glass, 12));
      vehicleAttrs();
      break;
    }
    case 'truck': {
      const paint = jitter(rng, rng.pick(TRUCK_PAINT));
      const cargo = jitter(rng, rng.pick(TRUCK_PAINT));
      const cab = Math.min(2.4, 0.3 * l);
      parts.push(part(0.02 * l, 0, 0.44 * l, 0.45 * w, 0, 0.24 * h, TYRE, Surface.Tyre, 8));
      parts.push(part(l / 2 - cab / 2, 0, cab / 2, 0.48 * w, 0.2 * h, 0.8 * h, paint, Surface.Glass, 30));
      parts.push(part(-cab / 2 - 0.05, 0, (l - cab - 0.1) / 2, w / 2, 0.22 * h, h, cargo, Surface.Metal, rng.uniform(30, 70)));
      vehicleAttrs();
      break;
    }
    case 'bus': {
      const paint = jitter(rng, rng.pick([[200, 30, 30], [240, 240, 235], [240, 190, 30], [40, 110, 60], [30, 80, 160]]));
      parts.push(part(0, 0, 0.45 * l, 0.45 * w, 0, 0.12 * h, TYRE, Surface.Tyre, 8));
      parts.push(part(0, 0, l / 2, w / 2, 0.1 * h, h, paint, Surface.Bus, rng.uniform(30, 60)));
      vehicleAttrs();
      break;
    }
    case 'trailer': {
      const paint = jitter(rng, rng.pick([[235, 235, 232], [180, 180, 185], [120, 30, 30], [40, 60, 120]]));
      parts.push(part(-l / 2 + 0.17 * l, 0, 0.13 * l, 0.45 * w, 0, 0.3 * h, TYRE, Surface.Tyre, 8));
      parts.push(part(l / 2 - 1.6, 0, 0.15, 0.4 * w, 0, 0.3 * h, [80, 80, 85], Surface.Metal, 30));
      parts.push(part(0, 0, l / 2, w / 2, 0.3 * h, h, paint, Surface.Metal, rng.uniform(30, 70)));
      vehicleAttrs();
      break;
    }
    case 'construction': {
      const paint = jitter(rng, rng.pick([[235, 180, 20], [240, 140, 20], [220, 200, 40]]));
      parts.push(part(-0.1 * l, 0, 0.35 * l, w / 2, 0, 0.35 * h, [50, 50, 50], Surface.Metal, 20));
      parts.push(part(-0.08 * l, 0, 0.2 * l, 0.42 * w, 0.35 * h, h, paint, Surface.Glass, 30));
      parts.push(part(0.3 * l, 0, 0.2 * l, 0.12 * w, 0.3 * h, 0.8 * h, paint, Surface.Metal, 40));
      vehicleAttrs();
      break;
    }
    case 'pedestrian': case 'child': case 'worker': {
      if (opts.sitting) h = Math.min(h, rng.uniform(1.05, 1.3));
      const legs = kind === 'worker' ? [60, 60, 70] : rng.pick(CLOTH);
      const top = kind === 'worker' ? [250, 140, 20] : rng.pick(CLOTH);
      const skin = rng.pick(SKIN);
      const head = Math.min(0.1 * (h / 1.77), 0.4 * Math.min(w, l));
      parts.push(part(0, 0, 0.25 * l, 0.3 * w, 0, 0.47 * h, jitter(rng, legs), Surface.Cloth, 20));
      parts.push(part(0, 0, 0.3 * l, 0.42 * w, 0.47 * h, 0.83 * h, jitter(rng, top), Surface.Cloth, kind === 'worker' ? 90 : 25));
      parts.push(part(0, 0, head, head, 0.85 * h, h, skin, Surface.Skin, 20, true));
      movingAttribute = opts.moving ? 'pedestrian.moving' : null;
      stillAttribute = opts.sitting ? 'pedestrian.sitting_lying_down' : 'pedestrian.standing';
      break;
    }
    case 'motorcycle': case 'bicycle': {
      const moto = kind === 'motorcycle';
      h = opts.rider ? clampNormal(rng, moto ? 1.55 : 1.65, 0.08) : clampNormal(rng, moto ? 1.15 : 1.05, 0.08);
      const frame = jitter(rng, rng.pick(moto ? [[20, 20, 20], [160, 20, 20], [30, 50, 140], [200, 200, 200]] : [[30, 30, 30], [160, 30, 30], [30, 90, 160], [220, 220, 220], [40, 120, 60]]));
      const bodyW = moto ? 0.2 * w : 0.07;
      if (opts.rider) {
        parts.push(part(0, 0, 0.48 * l, bodyW, 0, 0.5 * h, frame, Surface.Metal, moto ? 35 : 25));
        parts.push(part(-0.05 * l, 0, 0.14, 0.38 * w, 0.47 * h, 0.86 * h, jitter(rng, rng.pick(CLOTH)), Surface.Cloth, 25));
        parts.push(part(-0.03 * l, 0, 0.11, 0.11, 0.86 * h, h, moto ? [40, 40, 45] : rng.pick(SKIN), Surface.Skin, 20, true));
      } else {
        parts.push(part(0, 0, 0.48 * l, bodyW, 0, 0.85 * h, frame, Surface.Metal, moto ? 35 : 25));
        parts.push(part(0.32 * l, 0, 0.04, w / 2, 0.8 * h, h, [40, 40, 40], Surface.Metal, 30));
      }
      movingAttribute = opts.rider ? 'cycle.with_rider' : 'cycle.without_rider';
      stillAttribute = movingAttribute;
      break;
    }
    case 'cone': {
      const m = Math.min(w, l);
      parts.push(part(0, 0, l / 2, w / 2, 0, 0.05 * h, [30, 30, 30], Surface.Plain, 10));
      parts.push(part(0, 0, 0.3 * m, 0.3 * m, 0.05 * h, 0.55 * h, [245, 110, 20], Surface.Cone, 120, true));
      parts.push(part(0, 0, 0.17 * m, 0.17 * m, 0.55 * h, h, [245, 110, 20], Surface.Cone, 120, true));
      break;
    }
    case 'barrier': {
      if (rng.next() < 0.5) {
        parts.push(part(0, 0, l / 2, w / 2, 0, h, jitter(rng, [170, 168, 160], 15), Surface.Concrete, 35));
      } else {
        parts.push(part(0, 0, l / 2, w / 2, 0.5 * h, h, [230, 40, 30], Surface.StripedBarrier, 90));
        for (const side of [-1, 1]) parts.push(part(0, side * 0.4 * w, l / 2, 0.08 * w, 0, 0.5 * h, [200, 200, 200], Surface.Metal, 40));
      }
      break;
    }
    case 'rack': {
      w = Math.max(w, 0.4);
      parts.push(part(0, 0, l / 2, 0.06, 0, h, [120, 125, 130], Surface.Metal, 60));
      break;
    }
    case 'bin': {
      parts.push(part(0, 0, l / 2, w / 2, 0, h, jitter(rng, rng.pick([[40, 90, 40], [60, 60, 65], [30, 60, 130]])), Surface.Plain, 25));
      break;
    }
  }
  return { kind, category: spec.category, det: spec.det, occ: spec.occ, size: [w, l, h], parts, motion, movingAttribute, stillAttribute };
}
