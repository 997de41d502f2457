/** The areas beside the main road: a parking lot (rows of vehicles, cycles) and a construction site (barriers, cones, vehicles, workers). */
import { MAT_ROAD, outerOffset } from './ground.js';
import { makeObject, type ObjectKind } from './objects.js';
import { roadPose, sideSign, type Area } from './road-layout.js';
import { still, type WorldBuilder } from './world-builder.js';

/** Stamp the lots into the ground and keep the road sides in front of every area clear. */
export function reserveAreas(b: WorldBuilder): void {
  const { main, zones, areas } = b.layout;
  for (const ar of areas) {
    const z = zones.get(main)![ar.side]!;
    z.beyond.add(ar.s0 - 2, ar.s1 + 2);
    // Keep the kerb in front of the area clear (an entrance), so that it is seen from the road.
    z.parking.add(ar.s0 - 1, ar.s1 + 1);
    z.furniture.add(ar.s0 - 1, ar.s1 + 1);
    const dIn = outerOffset(main.xs, ar.side) + 0.6;
    const c = roadPose(main, (ar.s0 + ar.s1) / 2, sideSign(ar.side) * (dIn + ar.depth / 2));
    if (ar.kind === 'lot') b.ground.stampRect(c.x, c.y, c.yaw, (ar.s1 - ar.s0) / 2, ar.depth / 2, MAT_ROAD);
  }
}

/** Fill every area with its objects. */
export function furnishAreas(b: WorldBuilder): void {
  for (const ar of b.layout.areas) {
    const dIn = outerOffset(b.layout.main.xs, ar.side) + 0.6;
    const rev = b.rng.next() < 0.5;
    if (ar.kind === 'lot') fillLot(b, ar, dIn, rev);
    else fillSite(b, ar, dIn);
  }
}

/** Two rows of parked vehicles (one of each large class first), cycles along the road-side edge. */
function fillLot(b: WorldBuilder, ar: Area, dIn: number, rev: boolean): void {
  const { rng, ground } = b;
  const main = b.layout.main;
  const sg = sideSign(ar.side);
  const rows = [dIn + ar.depth * 0.27, dIn + ar.depth * 0.73];
  const queue: ObjectKind[] = rng.shuffle(['trailer', 'truck', 'bus', 'car', 'construction'] as ObjectKind[]);
  const small: ObjectKind[] = ['motorcycle', 'bicycle', 'bicycle', 'motorcycle'];
  for (const d of rows) {
    let s = ar.s0 + 1;
    while (s < ar.s1 - 1) {
      const kind: ObjectKind = queue.length ? queue.shift()! : rng.next() < 0.8 ? 'car' : rng.pick(['truck', 'car', 'motorcycle'] as ObjectKind[]);
      const o = makeObject(kind, rng, still(0, 0, 0), { parked: true, rider: false });
      const l = o.size[1];
      if (s + l > ar.s1 - 0.5) {
        if (queue.length < 5 && kind !== 'car') queue.unshift(kind);
        break;
      }
      const p = roadPose(main, s + l / 2, sg * (d + rng.uniform(-0.3, 0.3)), rev);
      o.motion = still(p.x, p.y, p.yaw + rng.normal(0, 0.03));
      if (ground.rectOn(p.x, p.y, p.yaw, l / 2, o.size[0] / 2, [MAT_ROAD])) b.addStaticObject(o);
      else if (kind !== 'car') queue.push(kind);
      s += l + rng.uniform(0.8, 2.5);
    }
  }
  // Cycles parked along the road-side edge of the lot, parallel to the road.
  let s = ar.s0 + 1;
  for (const kind of small) {
    const o = makeObject(kind, rng, still(0, 0, 0), { parked: true, rider: false });
    const p = roadPose(main, s + o.size[1] / 2, sg * (dIn + 0.6), rng.next() < 0.5);
    o.motion = still(p.x, p.y, p.yaw);
    b.addStaticObject(o);
    s += o.size[1] + rng.uniform(0.5, 1.5);
  }
}

/** Construction site: barriers along the road-facing edge with an entrance, cones, vehicle(s), workers. */
function fillSite(b: WorldBuilder, ar: Area, dIn: number): void {
  const { rng } = b;
  const main = b.layout.main;
  const sg = sideSign(ar.side);
  const edge = dIn + 0.35;
  const gate = rng.uniform(ar.s0 + 6, ar.s1 - 8);
  let s = ar.s0 + 0.3;
  while (s < ar.s1 - 1.5) {
    if (s > gate - 1 && s < gate + 5) { s = gate + 5; continue; }
    const o = makeObject('barrier', rng, still(0, 0, 0));
    const w = o.size[0];
    if (s + w > ar.s1) break;
    const p = roadPose(main, s + w / 2, sg * edge);
    o.motion = still(p.x, p.y, p.yaw + Math.PI / 2);
    b.addStaticObject(o);
    s += w + rng.uniform(0.05, 0.4);
  }
  for (const d of [edge + 1.2, edge + ar.depth - 1]) {
    for (const sc of [ar.s0 + 0.6, ar.s1 - 0.6]) {
      const o = makeObject('cone', rng, still(0, 0, 0));
      const p = roadPose(main, sc, sg * d);
      o.motion = still(p.x, p.y, rng.uniform(-Math.PI, Math.PI));
      b.addStaticObject(o);
    }
  }
  for (const sc of [gate - 0.6, gate + 4.6]) {
    const o = makeObject('cone', rng, still(0, 0, 0));
    const p = roadPose(main, sc, sg * (edge + rng.uniform(-0.1, 0.1)));
    o.motion = still(p.x, p.y, rng.uniform(-Math.PI, Math.PI));
    b.addStaticObject(o);
  }
  const nVeh = 1 + (rng.next() < 0.4 ? 1 : 0);
  for (let k = 0; k < nVeh; k++) {
    for (let tries = 0; tries < 6; tries++) {
      const o = makeObject(k === 0 || rng.next() < 0.6 ? 'construction' : 'truck', rng, still(0, 0, 0), { parked: true });
      const sc = rng.uniform(ar.s0 + o.size[1] / 2 + 1, Math.max(ar.s0 + o.size[1] / 2 + 1.1, ar.s1 - o.size[1] / 2 - 1));
      const d = edge + 1.5 + o.size[0] / 2 + rng.uniform(0, Math.max(0, ar.depth - 3.5 - o.size[0]));
      const p = roadPose(main, sc, sg * d, rng.next() < 0.5);
      o.motion = still(p.x, p.y, p.yaw + rng.normal(0, 0.15));
      if (b.addStaticObject(o)) break;
    }
  }
  const nWorkers = 1 + rng.int(3);
  for (let k = 0; k < nWorkers; k++) {
    for (let tries = 0; tries < 8; tries++) {
      const o = makeObject('worker', rng, still(0, 0, 0));
      const p = roadPose(main, rng.uniform(ar.s0 + 1, ar.s1 - 1), sg * (edge + rng.uniform(1, ar.depth - 1)));
      o.motion = still(p.x, p.y, rng.uniform(-Math.PI, Math.PI));
      if (b.addStaticObject(o)) break;
    }
  }
}
