/** Still objects on the roads: parked vehicles and short lane closures in the parking lanes, barriers on the median. */
import { curbOffset } from './ground.js';
import { makeObject, type ObjectKind } from './objects.js';
import type { Path } from './path.js';
import { projectRoad, roadPose, sidePath, type Road, type Zones } from './road-layout.js';
import { still, type WorldBuilder } from './world-builder.js';

const PARKED_KINDS: ObjectKind[] = ['car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'truck', 'motorcycle', 'bicycle', 'trailer', 'bus'];

/** Every parking lane: sometimes a lane closure near the ego route, then parked vehicles wherever there is room. */
export function placeParkingLanes(b: WorldBuilder): void {
  const { rng } = b;
  const { roads, zones } = b.layout;
  for (const road of roads) {
    for (const side of [0, 1]) {
      const xsR = road.xs;
      if (!(xsR.parking[side]! > 0)) continue;
      const z = zones.get(road)![side]!;
      const dLane = curbOffset(xsR, side) - xsR.parking[side]! / 2;
      const path = sidePath(road, side, dLane);
      const L = path.length;
      const toCentre = (s: number) => {
        const p = path.at(s);
        return projectRoad(road, p.x, p.y).s;
      };
      if (rng.next() < 0.5) placeLaneClosure(b, road, side, path, z, toCentre);
      let s = rng.uniform(0, 6);
      while (s < L) {
        if (rng.next() < 0.15 / b.density) { s += rng.uniform(5, 25); continue; }
        const kind = rng.pick(PARKED_KINDS);
        const isBus = kind === 'bus';
        const o = makeObject(kind, rng, still(0, 0, 0), { parked: !isBus, rider: false });
        const l = o.size[1];
        const cs0 = toCentre(s), cs1 = toCentre(s + l);
        if (!Number.isFinite(cs0) || !Number.isFinite(cs1) || !z.parking.free(Math.min(cs0, cs1) - 0.3, Math.max(cs0, cs1) + 0.3)) { s += 2; continue; }
        const p = path.at(s + l / 2);
        // Left of the direction of travel is towards the road centre; wide vehicles move towards the curb.
        const lat = rng.uniform(-0.15, 0.15) - Math.max(0, (o.size[0] - xsR.parking[side]!) / 2 + 0.1);
        o.motion = still(p.x - Math.sin(p.heading) * lat, p.y + Math.cos(p.heading) * lat, p.heading + rng.normal(0, 0.025));
        if (b.addStaticObject(o)) s += l + rng.uniform(0.7, 3);
        else s += 1;
      }
    }
  }
}

/** Lane closure: a row of barriers along the lane edge and cones ahead of it, if that stretch of the lane is free. */
function placeLaneClosure(b: WorldBuilder, road: Road, side: number, path: Path, z: Zones, toCentre: (s: number) => number): void {
  const { rng } = b;
  const { pre, egoDistance: D } = b.layout;
  const xsR = road.xs;
  const L = path.length;
  const sc = rng.uniform(Math.max(0, pre - 30), Math.min(L - 20, pre + D + 30));
  const cs = toCentre(sc);
  if (!z.parking.free(cs - 2, cs + 14)) return;
  z.parking.add(cs - 2, cs + 14);
  const nb = 1 + rng.int(3);
  let s = sc + 3;
  for (let k = 0; k < nb; k++) {
    const o = makeObject('barrier', rng, still(0, 0, 0));
    const p = path.at(s + o.size[0] / 2);
    const lat = xsR.parking[side]! / 2 - 0.4;
    const x = p.x - Math.sin(p.heading) * lat, y = p.y + Math.cos(p.heading) * lat;
    o.motion = still(x, y, p.heading + Math.PI / 2);
    b.addStaticObject(o);
    s += o.size[0] + 0.2;
  }
  for (let k = 0; k < 2 + rng.int(3); k++) {
    const o = makeObject('cone', rng, still(0, 0, 0));
    const p = path.at(sc + k * 1.2);
    const lat = (k / 4) * (xsR.parking[side]! / 2 - 0.3);
    o.motion = still(p.x - Math.sin(p.heading) * lat, p.y + Math.cos(p.heading) * lat, rng.uniform(-Math.PI, Math.PI));
    b.addStaticObject(o);
  }
}

/** Half the main roads with a wide enough median get a row of barriers on it near the ego route. */
export function placeMedianBarriers(b: WorldBuilder): void {
  const { rng } = b;
  const { main, pre } = b.layout;
  if (!(main.xs.median >= 0.6 && rng.next() < 0.5)) return;
  let s = pre + rng.uniform(-30, 10);
  const end = s + rng.uniform(20, 60);
  while (s < end) {
    const o = makeObject('barrier', rng, still(0, 0, 0));
    const p = roadPose(main, s + o.size[0] / 2, 0);
    o.motion = still(p.x, p.y, p.yaw + Math.PI / 2);
    b.addStaticObject(o);
    s += o.size[0] + 0.1;
  }
}
