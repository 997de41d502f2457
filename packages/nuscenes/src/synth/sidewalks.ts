/** Sidewalk life: pedestrians walking in slots, standing and sitting people, bicycle racks with bicycles, bins. */
import { curbOffset, outerOffset } from './ground.js';
import { makeObject, profileDistance, type ObjectKind, type Profile } from './objects.js';
import { projectRoad, roadPose, sidePath, sideSign, type CrossStreet, type Road } from './road-layout.js';
import { exponential, still, type WorldBuilder } from './world-builder.js';

/** Both sidewalks of every road. */
export function placeSidewalks(b: WorldBuilder): void {
  for (const road of b.layout.roads) {
    const cross = b.layout.crosses.find((c) => c.road === road);
    for (const side of [0, 1]) {
      placeWalkers(b, road, side, cross);
      placeSidewalkFurniture(b, road, side);
    }
  }
}

/** Pedestrians walking along one or two slots of a sidewalk; on cross streets they keep off the main road. */
function placeWalkers(b: WorldBuilder, road: Road, side: number, cross: CrossStreet | undefined): void {
  const { rng, duration: T } = b;
  const xsR = road.xs;
  const curb = curbOffset(xsR, side), outer = outerOffset(xsR, side);
  const walkLo = curb + 1.1, walkHi = outer - (xsR.sidewalk[side]! >= 3.5 ? 1.0 : 0.45);
  const nSlots = walkHi - walkLo >= 1.8 ? 2 : 1;
  for (let k = 0; k < nSlots; k++) {
    const off = walkLo + ((k + 0.5) * (walkHi - walkLo)) / nSlots;
    const forward = rng.next() < 0.5;
    const base = sidePath(road, side, off);
    const path = forward ? base : base.reversed();
    const profile: Profile = { v0: rng.uniform(0.9, 1.6), a: 0, vmax: 2 };
    const L = path.length;
    let s = -profile.v0 * T - 10 + rng.uniform(0, 5);
    while (s < L + 10) {
      const kind: ObjectKind = rng.next() < 0.08 ? 'child' : 'pedestrian';
      const o = makeObject(kind, rng, { kind: 'path', path, s0: s, profile }, { moving: true });
      let ok = true;
      if (cross) {
        // Keep walkers on cross streets off the main road (and on the street itself).
        const clear = b.layout.mainOuter + 1;
        for (let q = 0; q <= 8 && ok; q++) {
          const p = path.at(s + profileDistance(profile, (T * q) / 8));
          const cs = projectRoad(road, p.x, p.y).s;
          if (!Number.isFinite(cs) || Math.abs(cs - cross.mid) < clear) ok = false;
        }
      }
      if (ok) b.objects.push(o);
      s += o.size[1] + 1 + exponential(rng, 30 / b.density);
    }
  }
}

/** Furniture zone: standing pedestrians, racks with bicycles, bins; back of the sidewalk: sitting people. */
function placeSidewalkFurniture(b: WorldBuilder, road: Road, side: number): void {
  const { rng, density: dens } = b;
  const xsR = road.xs;
  const curb = curbOffset(xsR, side), outer = outerOffset(xsR, side);
  const z = b.layout.zones.get(road)![side]!;
  let s = rng.uniform(0, 8);
  while (s < road.path.length) {
    const r = rng.next();
    const fz = curb + 0.55;
    if (r < 0.2 * dens) {
      if (z.furniture.free(s - 0.5, s + 0.5)) {
        const p = roadPose(road, s, sideSign(side) * (fz + rng.uniform(-0.15, 0.15)));
        const o = makeObject(rng.next() < 0.1 ? 'child' : 'pedestrian', rng, still(p.x, p.y, rng.uniform(-Math.PI, Math.PI)));
        if (b.addStaticObject(o)) z.furniture.add(s - 0.5, s + 0.5);
      }
    } else if (r < 0.42) {
      const len = rng.uniform(3, 6);
      if (z.furniture.free(s - 0.3, s + len + 0.3)) {
        // A rack (box 1 m wide: rail on the kerb side, bicycles parked along it on the sidewalk side).
        const p = roadPose(road, s + len / 2, sideSign(side) * fz);
        const toKerb = side === 0 ? 1 : -1;
        const rack = makeObject('rack', rng, still(p.x, p.y, p.yaw));
        rack.size[0] = 1.0;
        rack.size[1] = len;
        rack.parts[0]!.hx = len / 2;
        rack.parts[0]!.y = 0.3 * toKerb;
        if (b.addStaticObject(rack)) {
          z.furniture.add(s - 0.3, s + len + 0.3);
          const c = Math.cos(p.yaw), sn = Math.sin(p.yaw);
          for (let along = -len / 2 + 1.0; along <= len / 2 - 1.0; along += 2.05) {
            if (rng.next() < 0.25) continue;
            const lat = -0.15 * toKerb;
            const bike = makeObject('bicycle', rng, still(p.x + c * along - sn * lat, p.y + sn * along + c * lat, p.yaw + (rng.next() < 0.5 ? 0 : Math.PI)), { rider: false });
            b.objects.push(bike);
          }
        }
      }
    } else if (r < 0.48) {
      if (z.furniture.free(s - 0.5, s + 0.5)) {
        const p = roadPose(road, s, sideSign(side) * fz);
        if (b.addStaticObject(makeObject('bin', rng, still(p.x, p.y, p.yaw)))) z.furniture.add(s - 0.5, s + 0.5);
      }
    } else if (r < 0.52 && xsR.sidewalk[side]! >= 3.5 && z.furniture.free(s - 0.5, s + 0.5) && z.beyond.free(s - 0.5, s + 0.5)) {
      const p = roadPose(road, s, sideSign(side) * (outer - 0.3));
      b.addStaticObject(makeObject('pedestrian', rng, still(p.x, p.y, p.yaw + (side === 0 ? Math.PI / 2 : -Math.PI / 2)), { sitting: true }));
    }
    s += rng.uniform(3, 9) / Math.max(0.3, dens);
  }
}
