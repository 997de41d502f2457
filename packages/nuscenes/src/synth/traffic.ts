/**
 * Moving traffic: every lane of every road filled with a queue of vehicles that share one speed profile (so they
 * never collide), queues stopped before the main road on cross streets, cyclists in bike lanes.
 */
import type { Rng } from '@bevzoo/core';
import { makeObject, profileDistance, type ObjectKind, type Profile, type WorldObject } from './objects.js';
import type { Path } from './path.js';
import { sidePath, type CrossStreet } from './road-layout.js';
import { exponential, type WorldBuilder } from './world-builder.js';

function laneProfile(rng: Rng): Profile {
  const r = rng.next();
  if (r < 0.15) return { v0: 0, a: 0, vmax: 0 };
  if (r < 0.25) return { v0: 0, a: rng.uniform(0.8, 2), vmax: rng.uniform(7, 12) };
  if (r < 0.35) return { v0: rng.uniform(5, 10), a: -rng.uniform(0.6, 1.5), vmax: 14 };
  return { v0: rng.uniform(4, 13), a: rng.uniform(-0.3, 0.3), vmax: 15 };
}

function trafficKind(rng: Rng, outerLane: boolean): ObjectKind | 'semi' {
  const i = rng.weighted([0.7, 0.08, 0.05, 0.09, 0.03, 0.02, outerLane ? 0.03 : 0]);
  return (['car', 'truck', 'bus', 'motorcycle', 'semi', 'construction', 'bicycle'] as const)[i]!;
}

/** Tractor unit of a semi-trailer: cab over a chassis (keeps the truck's colours). */
function tractorParts(truck: WorldObject): WorldObject['parts'] {
  const [w, l, h] = truck.size;
  const chassis = truck.parts[0]!, cab = truck.parts[1]!;
  return [
    { ...chassis, x: 0, hx: l / 2 - 0.1, hy: 0.45 * w, z0: 0, z1: 0.3 * h },
    { ...cab, x: l / 2 - 1.2, hx: 1.2, hy: 0.48 * w, z0: 0.25 * h, z1: h },
  ];
}

/** Fill a lane path with a queue of vehicles sharing one profile; `keep(s0, s1)` vets a vehicle's span at t = 0. */
function fillLane(
  b: WorldBuilder, path: Path, profile: Profile, sFrom: number, sTo: number, outerLane: boolean, keep: (a: number, b: number) => boolean, cycleLane = false,
): void {
  const { rng } = b;
  const moving = profile.vmax > 0;
  const vTyp = Math.max(profile.v0, profile.vmax * 0.5);
  let s = sFrom + rng.uniform(0, 10);
  while (s < sTo) {
    const k = cycleLane ? (rng.next() < 0.75 ? 'bicycle' : 'motorcycle') : trafficKind(rng, outerLane);
    const group: WorldObject[] = [];
    const motion = (s0: number) => ({ kind: 'path' as const, path, s0, profile });
    if (k === 'semi') {
      const truck = makeObject('truck', rng, motion(0), { moving, parked: false });
      truck.size[1] = Math.min(truck.size[1], rng.uniform(5.2, 6.5));
      truck.parts = tractorParts(truck);
      const trailer = makeObject('trailer', rng, motion(0), { moving, parked: false });
      group.push(trailer, truck);
    } else group.push(makeObject(k, rng, motion(0), { moving, parked: false, rider: true }));
    let cursor = s;
    let ok = true;
    const spans: [number, number][] = [];
    for (const o of group) {
      const l = o.size[1];
      spans.push([cursor, cursor + l]);
      (o.motion as { s0: number }).s0 = cursor + l / 2;
      cursor += l + 0.4;
    }
    const a = spans[0]![0], end = spans[spans.length - 1]![1];
    if (!keep(a, end)) ok = false;
    if (ok) for (const o of group) b.objects.push(o);
    const gapMean = 14 / b.density;
    const gap = (vTyp < 0.5 ? rng.uniform(1.5, 4) : 4 + vTyp * rng.uniform(0.6, 1.6)) + exponential(rng, gapMean);
    s = end + gap;
  }
}

/** Traffic in every lane of every road, and cyclists in the bike lanes. */
export function placeTraffic(b: WorldBuilder): void {
  const { rng, duration: T } = b;
  const { roads, crosses, main, egoLane, pre, ego } = b.layout;
  const travelled = (p: Profile) => profileDistance(p, T);
  for (const road of roads) {
    const cross = crosses.find((c) => c.road === road);
    for (const side of [0, 1]) {
      const xsR = road.xs;
      for (let lane = 0; lane < xsR.lanes; lane++) {
        const off = xsR.median + (lane + 0.5) * xsR.laneWidth;
        const path = sidePath(road, side, off);
        const isEgo = road === main && side === 0 && lane === egoLane;
        const L = path.length;
        if (!cross) {
          const profile = isEgo ? ego.profile : laneProfile(rng);
          const keep = isEgo ? (a: number, e: number) => e < pre - 7.5 || a > pre + 10 : () => true;
          fillLane(b, path, profile, -travelled(profile) - 30, L + 30, lane === xsR.lanes - 1, keep);
        } else fillCrossStreetLane(b, cross, side, path);
      }
      // Bike lane.
      if (road.xs.bike[side]! > 0) {
        const off = road.xs.median + road.xs.lanes * road.xs.laneWidth + road.xs.bike[side]! / 2;
        const path = sidePath(road, side, off);
        const profile: Profile = { v0: rng.uniform(3, 6), a: 0, vmax: 7 };
        fillLane(b, path, profile, -travelled(profile) - 20, path.length + 20, false, () => rng.next() < 0.35, true);
      }
    }
  }
}

/** Along a cross street's lane: a queue stopped before the main road, traffic leaving it. */
function fillCrossStreetLane(b: WorldBuilder, cross: CrossStreet, side: number, path: Path): void {
  const T = b.duration;
  const L = path.length;
  const midAlong = side === 0 ? cross.mid : L - cross.mid;
  const clear = b.layout.mainOuter + 3;
  const exists = (a: number, e: number) => (cross.mid === 0 ? (side === 0 ? a > 0 : e < L) : true) && a > -40 && e < L + 40;
  const stopped: Profile = { v0: 0, a: 0, vmax: 0 };
  fillLane(b, path, stopped, midAlong - clear - 40, midAlong - clear - 1, false, (a, e) => exists(a, e) && e < midAlong - clear);
  const leave = laneProfile(b.rng);
  const lp: Profile = leave.vmax === 0 ? { v0: 6, a: 0, vmax: 10 } : leave;
  fillLane(b, path, lp, midAlong + clear, L + 20, false, (a, e) => exists(a, e) && a > midAlong + clear && a + Math.min(0, profileDistance(lp, T)) > midAlong + clear);
}
