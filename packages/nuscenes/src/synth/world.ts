/**
 * One synthetic world (one scene): a main road (straight, curved or S-shaped) with cross streets, lanes,
 * parking lanes, bike lanes, sidewalks, a parking lot and a construction site near the ego route, buildings,
 * trees, hedges, street furniture, and annotated objects of all ten detection classes: traffic moving along
 * the lanes with shared speed profiles (no collisions), parked vehicles, pedestrians walking along the
 * sidewalks, cyclists, barriers and cones. Everything is drawn from one seeded generator.
 */
import type { Rng } from '@bevzoo/core';
import { GroundMap, MAT_ROAD, MAT_TERRAIN, curbOffset, outerOffset, type CrossSection } from './ground.js';
import {
  makeObject, objectPose, objectPrims, profileDistance, profileSpeed, type ObjectKind, type Pose2, type Profile, type WorldObject,
} from './objects.js';
import { Path, pieceBounds, projectOnPiece, type PathSpec } from './path.js';
import { Prism, Surface } from './prism.js';

export type Rgb = [number, number, number];
export type District = 'downtown' | 'residential' | 'industrial';

export interface Environment {
  lighting: 'sunny' | 'overcast' | 'dusk';
  district: District;
  /** Unit vector towards the sun. */
  sun: [number, number, number];
  ambient: number;
  direct: number;
  skyTop: Rgb;
  skyHorizon: Rgb;
  road: Rgb;
  sidewalk: Rgb;
  terrain: Rgb;
  flat: Rgb;
  /** Seed of the ground / facade texture noise. */
  texture: number;
}

export interface Road { path: Path; xs: CrossSection; main: boolean }

export interface World {
  env: Environment;
  ground: GroundMap;
  roads: Road[];
  staticPrims: Prism[];
  objects: WorldObject[];
  ego: { path: Path; s0: number; profile: Profile };
  description: string;
  location: string;
}

export function egoPose(world: World, t: number): Pose2 {
  return egoPoseOf(world.ego, t);
}

function egoPoseOf(ego: World['ego'], t: number): Pose2 {
  const p = ego.path.at(ego.s0 + profileDistance(ego.profile, t));
  return { x: p.x, y: p.y, yaw: p.heading, speed: profileSpeed(ego.profile, t) };
}

/** Prims of all objects at time t (object index = position in world.objects). */
export function objectPrimsAt(world: World, t: number): Prism[] {
  const out: Prism[] = [];
  world.objects.forEach((o, i) => objectPrims(o, i, objectPose(o, t), out));
  return out;
}

// ---------------------------------------------------------------------------------------------------------

class Intervals {
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
function footprintsOverlap(a: Prism, b: Prism, margin: number): boolean {
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
class FootprintIndex {
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

function exp(rng: Rng, mean: number): number {
  return -Math.log(1 - rng.next()) * mean;
}

const FACADES: Record<District, Rgb[]> = {
  downtown: [[180, 175, 165], [140, 150, 160], [120, 90, 75], [200, 195, 185], [90, 100, 115], [160, 140, 120]],
  residential: [[225, 215, 195], [190, 120, 95], [240, 240, 235], [170, 185, 160], [210, 190, 150], [150, 110, 90]],
  industrial: [[160, 165, 170], [130, 135, 140], [190, 185, 175], [110, 120, 110], [170, 150, 130]],
};

function makeEnvironment(rng: Rng, district: District): Environment {
  const lighting = rng.pick(['sunny', 'sunny', 'overcast', 'dusk'] as const);
  const elev = lighting === 'dusk' ? rng.uniform(0.12, 0.28) : lighting === 'overcast' ? 0.9 : rng.uniform(0.5, 1.15);
  const az = rng.uniform(0, 2 * Math.PI);
  const sun: [number, number, number] = [Math.cos(elev) * Math.cos(az), Math.cos(elev) * Math.sin(az), Math.sin(elev)];
  const t = rng.uniform(-8, 8);
  const tone = (c: Rgb): Rgb => c.map((v) => Math.max(0, Math.min(255, Math.round(v + t)))) as Rgb;
  return {
    lighting, district, sun,
    ambient: lighting === 'sunny' ? 0.5 : lighting === 'overcast' ? 0.72 : 0.42,
    direct: lighting === 'sunny' ? 0.62 : lighting === 'overcast' ? 0.25 : 0.45,
    skyTop: lighting === 'sunny' ? [70, 125, 200] : lighting === 'overcast' ? [150, 155, 165] : [60, 70, 125],
    skyHorizon: lighting === 'sunny' ? [195, 215, 235] : lighting === 'overcast' ? [205, 207, 210] : [235, 165, 115],
    road: tone([88, 88, 92]),
    sidewalk: tone([168, 164, 158]),
    terrain: tone(district === 'industrial' ? [125, 115, 90] : [85, 120, 60]),
    flat: tone([140, 135, 125]),
    texture: rng.int(0x7fffffff),
  };
}

function crossSection(rng: Rng, district: District, main: boolean): CrossSection {
  const lanes = main ? (district === 'downtown' ? (rng.next() < 0.7 ? 2 : 1) : rng.next() < 0.35 ? 2 : 1) : 1;
  const laneWidth = district === 'industrial' ? rng.uniform(3.4, 3.8) : rng.uniform(3.1, 3.6);
  const median = main && lanes === 2 && rng.next() < 0.3 ? rng.uniform(0.6, 1.6) : 0;
  const bikeBoth = main && rng.next() < 0.25;
  const park = (): number => (rng.next() < (main ? 0.7 : 0.4) ? rng.uniform(2.2, 2.6) : 0);
  const walk = (): number => (district === 'downtown' ? rng.uniform(3.2, 5) : district === 'residential' ? rng.uniform(2.5, 3.5) : rng.uniform(2.5, 3.2));
  return {
    median, lanes, laneWidth,
    bike: bikeBoth ? [1.6, 1.6] : [0, 0],
    parking: [park(), park()],
    sidewalk: [walk(), walk()],
    dashedCentre: lanes === 1 && rng.next() < 0.4,
  };
}

/** Centreline coordinates (s, d) of a world point relative to a road. */
function projectRoad(road: Road, x: number, y: number): { s: number; d: number } {
  const pr = { u: 0, d: 0 };
  let best = { s: NaN, d: Infinity };
  let s0 = 0;
  for (const p of road.path.pieces) {
    if (projectOnPiece(p, x, y, pr) && Math.abs(pr.d) < Math.abs(best.d)) best = { s: s0 + pr.u, d: pr.d };
    s0 += p.len;
  }
  return best;
}

/** World pose at centreline s, lateral offset d, heading along the road (+π when `reverse`). */
function roadPose(road: Road, s: number, d: number, reverse = false): { x: number; y: number; yaw: number } {
  const p = road.path.at(s);
  return { x: p.x - Math.sin(p.heading) * d, y: p.y + Math.cos(p.heading) * d, yaw: p.heading + (reverse ? Math.PI : 0) };
}

/** Path along a side of a road at |offset| o, in that side's direction of travel (right-hand traffic). */
function sidePath(road: Road, side: number, o: number): Path {
  return side === 0 ? road.path.offset(-o) : road.path.offset(o).reversed();
}

interface Zones { beyond: Intervals; furniture: Intervals; parking: Intervals }

export interface WorldOptions {
  /** Scene duration from the first sweep to the last keyframe (s). */
  duration: number;
  /** Keyframe times (s). */
  keyTimes: number[];
  annotationRange: number;
  density: number;
}

export function generateWorld(rng: Rng, opts: WorldOptions): World {
  const district = (['downtown', 'residential', 'industrial'] as const)[rng.weighted([0.45, 0.3, 0.25])]!;
  const env = makeEnvironment(rng.fork('env'), district);
  const T = opts.duration;
  const dens = opts.density;

  // Ego speed profile.
  const er = rng.next();
  const egoProfile: Profile = er < 0.12 ? { v0: 0, a: 0, vmax: 0 }
    : er < 0.25 ? { v0: 0, a: rng.uniform(1, 2), vmax: rng.uniform(8, 12) }
    : er < 0.35 ? { v0: rng.uniform(6, 10), a: -rng.uniform(0.8, 1.5), vmax: 14 }
    : { v0: rng.uniform(4, 12), a: rng.uniform(-0.3, 0.3), vmax: 14 };
  const D = profileDistance(egoProfile, T);

  // Main road.
  const xs = crossSection(rng, district, true);
  const pre = 110, post = 110;
  const need = pre + D + post;
  const routeType = rng.pick(['straight', 'curve', 'curve', 's-curve'] as const);
  const specs: PathSpec[] = [];
  const firstLine = routeType === 'straight' ? need : pre + rng.uniform(15, Math.max(20, D + 15));
  specs.push({ line: firstLine });
  let used = firstLine;
  if (routeType !== 'straight') {
    const R = district === 'downtown' ? rng.uniform(35, 90) : rng.uniform(50, 160);
    const ang = rng.uniform(0.45, 1.5) * (rng.next() < 0.5 ? 1 : -1);
    specs.push({ arc: R, angle: ang });
    used += R * Math.abs(ang);
    if (routeType === 's-curve') {
      const ang2 = -Math.sign(ang) * rng.uniform(0.4, 1.3);
      specs.push({ arc: R, angle: ang2 });
      used += R * Math.abs(ang2);
    }
    specs.push({ line: Math.max(70, need - used) });
  }
  const heading = rng.uniform(-Math.PI, Math.PI);
  const probe = Path.build(0, 0, heading, specs);
  let minX = Infinity, minY = Infinity;
  for (const p of probe.pieces) { const b = pieceBounds(p); minX = Math.min(minX, b[0]); minY = Math.min(minY, b[1]); }
  const margin = 100 + rng.uniform(0, 20);
  const mainPath = Path.build(margin - minX, margin - minY, heading, specs);
  const main: Road = { path: mainPath, xs, main: true };
  const roads: Road[] = [main];
  const egoLane = rng.int(xs.lanes);
  const egoOff = xs.median + (egoLane + 0.5) * xs.laneWidth;
  const egoPath = mainPath.offset(-egoOff);
  const ego = { path: egoPath, s0: pre, profile: egoProfile };

  const zones = new Map<Road, [Zones, Zones]>();
  const mkZones = (): Zones => ({ beyond: new Intervals(), furniture: new Intervals(), parking: new Intervals() });
  zones.set(main, [mkZones(), mkZones()]);

  // Anchors (parking lot, construction site) on straight parts of the main road near the ego route.
  const linePieces: [number, number][] = [];
  {
    let s0 = 0;
    for (const p of mainPath.pieces) {
      if (p.kind === 'line') linePieces.push([s0, s0 + p.len]);
      s0 += p.len;
    }
  }
  const routeLo = pre - 20, routeHi = pre + D + 20;
  interface Area { s0: number; s1: number; side: number; depth: number; kind: 'lot' | 'site' }
  const areas: Area[] = [];
  const placeArea = (kind: 'lot' | 'site', side: number, centre: number): boolean => {
    const len = kind === 'lot' ? rng.uniform(26, 36) : rng.uniform(20, 30);
    for (const [a, b] of linePieces) {
      const lo = Math.max(a + len / 2 + 2, centre - 25), hi = Math.min(b - len / 2 - 2, centre + 25);
      if (lo > hi) continue;
      const c = Math.min(hi, Math.max(lo, centre));
      const s0 = c - len / 2, s1 = c + len / 2;
      if (areas.some((ar) => ar.side === side && s0 < ar.s1 + 4 && s1 > ar.s0 - 4)) continue;
      areas.push({ s0, s1, side, depth: kind === 'lot' ? rng.uniform(14, 18) : rng.uniform(10, 14), kind });
      return true;
    }
    return false;
  };
  const lotSide = rng.int(2);
  const centreA = Math.min(routeHi, Math.max(routeLo, pre + rng.uniform(-12, Math.min(D, 30))));
  placeArea('lot', lotSide, centreA) || placeArea('lot', 1 - lotSide, centreA) || placeArea('lot', lotSide, pre - 30);
  placeArea('site', 1 - lotSide, pre + rng.uniform(-12, Math.min(D, 30) + 5)) || placeArea('site', lotSide, pre + 40) || placeArea('site', 1 - lotSide, pre - 40);
  for (let extra = pre + 80; extra < pre + D - 20; extra += 80) {
    placeArea(rng.next() < 0.5 ? 'lot' : 'site', rng.int(2), extra);
  }
  const mainOuter = Math.max(outerOffset(xs, 0), outerOffset(xs, 1));

  // Cross streets on straight parts, away from the anchors.
  const crosses: { road: Road; sMain: number; mid: number; sides: number[] }[] = [];
  const nCross = district === 'downtown' ? rng.int(3) : rng.int(2);
  for (let k = 0, tries = 0; k < nCross && tries < 20; tries++) {
    const sc = rng.uniform(pre - 40, pre + D + 70);
    const xsC = crossSection(rng, district, false);
    const half = Math.max(outerOffset(xsC, 0), outerOffset(xsC, 1)) + 3;
    if (!linePieces.some(([a, b]) => sc - half - 10 > a && sc + half + 10 < b)) continue;
    if (areas.some((ar) => sc + half > ar.s0 - 3 && sc - half < ar.s1 + 3)) continue;
    if (crosses.some((c) => Math.abs(c.sMain - sc) < 2 * half + 30)) continue;
    const p = mainPath.at(sc);
    const tee = rng.next() < 0.35;
    const tSide = rng.int(2); // which side of the main road a T street goes to
    const len = 75;
    const nx = -Math.sin(p.heading), ny = Math.cos(p.heading);
    let path: Path, mid: number;
    if (tee) {
      const dir = tSide === 1 ? 1 : -1;
      path = Path.build(p.x, p.y, Math.atan2(ny * dir, nx * dir), [{ line: len }]);
      mid = 0;
    } else {
      path = Path.build(p.x - nx * len, p.y - ny * len, Math.atan2(ny, nx), [{ line: 2 * len }]);
      mid = len;
    }
    const road: Road = { path, xs: xsC, main: false };
    roads.push(road);
    zones.set(road, [mkZones(), mkZones()]);
    const sides = tee ? [tSide] : [0, 1];
    crosses.push({ road, sMain: sc, mid, sides });
    for (const side of sides) {
      const z = zones.get(main)![side]!;
      z.beyond.add(sc - half, sc + half); z.furniture.add(sc - half, sc + half); z.parking.add(sc - half, sc + half);
    }
    for (const side of [0, 1]) {
      const z = zones.get(road)![side]!;
      z.beyond.add(mid - mainOuter - 3, mid + mainOuter + 3);
      z.furniture.add(mid - mainOuter - 3, mid + mainOuter + 3);
      z.parking.add(mid - mainOuter - 3, mid + mainOuter + 3);
    }
    k++;
  }

  // Ground raster.
  let bx0 = Infinity, by0 = Infinity, bx1 = -Infinity, by1 = -Infinity;
  for (const r of roads) for (const p of r.path.pieces) {
    const b = pieceBounds(p);
    bx0 = Math.min(bx0, b[0]); by0 = Math.min(by0, b[1]); bx1 = Math.max(bx1, b[2]); by1 = Math.max(by1, b[3]);
  }
  const pad = mainOuter + 30;
  const res = 0.2;
  const gx0 = Math.floor((bx0 - pad) / res) * res, gy0 = Math.floor((by0 - pad) / res) * res;
  const ground = new GroundMap(gx0, gy0, Math.ceil((bx1 + pad - gx0) / res), Math.ceil((by1 + pad - gy0) / res), res);
  roads.forEach((r, i) => ground.stampRoad(i, r.path, r.xs));

  const sidesign = (side: number) => (side === 0 ? -1 : 1);
  const staticPrims: Prism[] = [];
  const index = new FootprintIndex();
  const objects: WorldObject[] = [];
  const addStatic = (p: Prism) => { staticPrims.push(p); index.add(p); };
  const objFootprint = (o: WorldObject, pose: { x: number; y: number; yaw: number }) =>
    new Prism(pose.x, pose.y, pose.yaw, o.size[1] / 2, o.size[0] / 2, 0, o.size[2], false, -1, 0, 0, 0, 0, Surface.Plain, 0);
  const addStaticObject = (o: WorldObject, reserve = true): boolean => {
    if (o.motion.kind !== 'static') { objects.push(o); return true; }
    const fp = objFootprint(o, o.motion);
    if (index.overlaps(fp, 0.05)) return false;
    if (reserve) index.add(fp);
    objects.push(o);
    return true;
  };
  const still = (x: number, y: number, yaw: number) => ({ kind: 'static' as const, x, y, yaw });

  // Areas: ground and reservations, then contents.
  for (const ar of areas) {
    const z = zones.get(main)![ar.side]!;
    z.beyond.add(ar.s0 - 2, ar.s1 + 2);
    // Keep the kerb in front of the area clear (an entrance), so that it is seen from the road.
    z.parking.add(ar.s0 - 1, ar.s1 + 1);
    z.furniture.add(ar.s0 - 1, ar.s1 + 1);
    const dIn = outerOffset(xs, ar.side) + 0.6;
    const c = roadPose(main, (ar.s0 + ar.s1) / 2, sidesign(ar.side) * (dIn + ar.depth / 2));
    if (ar.kind === 'lot') ground.stampRect(c.x, c.y, c.yaw, (ar.s1 - ar.s0) / 2, ar.depth / 2, MAT_ROAD);
  }
  for (const ar of areas) {
    const dIn = outerOffset(xs, ar.side) + 0.6;
    const sg = sidesign(ar.side);
    const rev = rng.next() < 0.5;
    if (ar.kind === 'lot') {
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
          if (ground.rectOn(p.x, p.y, p.yaw, l / 2, o.size[0] / 2, [MAT_ROAD])) addStaticObject(o);
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
        addStaticObject(o);
        s += o.size[1] + rng.uniform(0.5, 1.5);
      }
    } else {
      // Construction site: barriers along the road-facing edge with an entrance, cones, vehicle(s), workers.
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
        addStaticObject(o);
        s += w + rng.uniform(0.05, 0.4);
      }
      for (const d of [edge + 1.2, edge + ar.depth - 1]) {
        for (const sc of [ar.s0 + 0.6, ar.s1 - 0.6]) {
          const o = makeObject('cone', rng, still(0, 0, 0));
          const p = roadPose(main, sc, sg * d);
          o.motion = still(p.x, p.y, rng.uniform(-Math.PI, Math.PI));
          addStaticObject(o);
        }
      }
      for (const sc of [gate - 0.6, gate + 4.6]) {
        const o = makeObject('cone', rng, still(0, 0, 0));
        const p = roadPose(main, sc, sg * (edge + rng.uniform(-0.1, 0.1)));
        o.motion = still(p.x, p.y, rng.uniform(-Math.PI, Math.PI));
        addStaticObject(o);
      }
      const nVeh = 1 + (rng.next() < 0.4 ? 1 : 0);
      for (let k = 0; k < nVeh; k++) {
        for (let tries = 0; tries < 6; tries++) {
          const o = makeObject(k === 0 || rng.next() < 0.6 ? 'construction' : 'truck', rng, still(0, 0, 0), { parked: true });
          const sc = rng.uniform(ar.s0 + o.size[1] / 2 + 1, Math.max(ar.s0 + o.size[1] / 2 + 1.1, ar.s1 - o.size[1] / 2 - 1));
          const d = edge + 1.5 + o.size[0] / 2 + rng.uniform(0, Math.max(0, ar.depth - 3.5 - o.size[0]));
          const p = roadPose(main, sc, sg * d, rng.next() < 0.5);
          o.motion = still(p.x, p.y, p.yaw + rng.normal(0, 0.15));
          if (addStaticObject(o)) break;
        }
      }
      const nWorkers = 1 + rng.int(3);
      for (let k = 0; k < nWorkers; k++) {
        for (let tries = 0; tries < 8; tries++) {
          const o = makeObject('worker', rng, still(0, 0, 0));
          const p = roadPose(main, rng.uniform(ar.s0 + 1, ar.s1 - 1), sg * (edge + rng.uniform(1, ar.depth - 1)));
          o.motion = still(p.x, p.y, rng.uniform(-Math.PI, Math.PI));
          if (addStaticObject(o)) break;
        }
      }
    }
  }

  // Buildings along every road side.
  const bStyle = {
    downtown: { front: [14, 38], gap: [0, 3], depth: [14, 26], height: [10, 42], setback: [0, 1.5] },
    residential: { front: [8, 14], gap: [5, 14], depth: [8, 12], height: [4, 8], setback: [4, 10] },
    industrial: { front: [22, 48], gap: [6, 18], depth: [18, 34], height: [6, 13], setback: [3, 9] },
  }[district];
  const facades = FACADES[district];
  for (const road of roads) {
    for (const side of [0, 1]) {
      const z = zones.get(road)![side]!;
      const outer = outerOffset(road.xs, side);
      for (const row of [0, 1]) {
        let s = rng.uniform(0, 8);
        while (s < road.path.length) {
          const front = rng.uniform(bStyle.front[0]!, bStyle.front[1]!);
          const gap = rng.uniform(bStyle.gap[0]!, bStyle.gap[1]!);
          const depth = rng.uniform(bStyle.depth[0]!, bStyle.depth[1]!);
          if (row === 0 && !z.beyond.free(s - 1, s + front + 1)) { s += 4; continue; }
          const height = rng.uniform(bStyle.height[0]!, bStyle.height[1]!) * (row === 1 ? 1.3 : 1);
          const setback = outer + rng.uniform(bStyle.setback[0]!, bStyle.setback[1]!) + (row === 1 ? bStyle.depth[1]! + rng.uniform(6, 20) : 0.3);
          const c = roadPose(road, s + front / 2, sidesign(side) * (setback + depth / 2));
          const col = facades[rng.int(facades.length)]!;
          const f = rng.uniform(-12, 12);
          const p = new Prism(c.x, c.y, c.yaw, front / 2, depth / 2, 0, height, false, -1, 15,
            col[0] + f, col[1] + f, col[2] + f, Surface.Building, rng.uniform(20, 45));
          if (ground.rectOn(c.x, c.y, c.yaw, front / 2, depth / 2, [MAT_TERRAIN], 1) && !index.overlaps(p, 0.5)) addStatic(p);
          s += front + gap;
        }
      }
    }
  }

  // Street furniture, trees and hedges.
  const treeProb = district === 'residential' ? 0.75 : district === 'downtown' ? 0.4 : 0.2;
  const addTree = (x: number, y: number, crownBase: number, crownR: number): boolean => {
    const trunkR = rng.uniform(0.12, 0.22);
    const crownTop = crownBase + rng.uniform(2.5, 5.5);
    const crown = new Prism(x, y, rng.uniform(0, Math.PI), crownR, crownR, crownBase, crownTop, true, -1, 16, 60 + rng.int(30), 95 + rng.int(40), 45 + rng.int(20), Surface.Foliage, rng.uniform(15, 35));
    const trunk = new Prism(x, y, 0, trunkR, trunkR, 0, crownBase + 0.5, true, -1, 16, 90, 70, 50, Surface.Bark, 25);
    if (index.overlaps(trunk, 0.3)) return false;
    for (const q of staticPrims) if (q.surface === Surface.Building && footprintsOverlap(crown, q, 0.2)) return false;
    staticPrims.push(crown);
    addStatic(trunk);
    return true;
  };
  for (const road of roads) {
    for (const side of [0, 1]) {
      const z = zones.get(road)![side]!;
      const xsR = road.xs;
      const curb = curbOffset(xsR, side), outer = outerOffset(xsR, side);
      const sg = sidesign(side);
      let s = rng.uniform(0, 10);
      let nextLight = rng.uniform(5, 30);
      while (s < road.path.length) {
        const step = rng.uniform(6, 14);
        const fz = curb + 0.55;
        if (s >= nextLight && z.furniture.free(s - 0.5, s + 0.5)) {
          const p = roadPose(road, s, sg * (curb + 0.35));
          const hgt = rng.uniform(7, 9);
          addStatic(new Prism(p.x, p.y, 0, 0.1, 0.1, 0, hgt, true, -1, 15, 95, 98, 100, Surface.Metal, 50));
          const arm = roadPose(road, s, sg * (curb + 0.35 - 0.8));
          staticPrims.push(new Prism(arm.x, arm.y, p.yaw + Math.PI / 2, 0.8, 0.08, hgt - 0.25, hgt, false, -1, 15, 95, 98, 100, Surface.Metal, 50));
          z.furniture.add(s - 0.6, s + 0.6);
          nextLight = s + rng.uniform(24, 40);
        } else if (rng.next() < treeProb && z.furniture.free(s - 1.2, s + 1.2)) {
          const inVerge = rng.next() < 0.5 && z.beyond.free(s - 3, s + 3);
          const d = inVerge ? outer + rng.uniform(1.2, 2.5) : fz;
          const p = roadPose(road, s, sg * d);
          const crownR = inVerge ? rng.uniform(1.5, 3) : rng.uniform(1.2, 2.3);
          if (addTree(p.x, p.y, inVerge ? rng.uniform(2, 3.5) : rng.uniform(4.5, 5.5), crownR)) {
            (inVerge ? z.beyond : z.furniture).add(s - 1.2, s + 1.2);
          }
        } else if (rng.next() < 0.12 && z.furniture.free(s - 0.4, s + 0.4)) {
          const p = roadPose(road, s, sg * (curb + 0.3));
          const hgt = rng.uniform(2.2, 2.8);
          addStatic(new Prism(p.x, p.y, 0, 0.05, 0.05, 0, hgt, true, -1, 15, 120, 120, 125, Surface.Metal, 50));
          const col = rng.pick([[200, 30, 30], [30, 80, 170], [240, 240, 240], [240, 200, 30]]);
          staticPrims.push(new Prism(p.x, p.y, p.yaw + Math.PI / 2, 0.35, 0.03, hgt - 0.75, hgt, false, -1, 15, col[0]!, col[1]!, col[2]!, Surface.Sign, 220));
          z.furniture.add(s - 0.5, s + 0.5);
        }
        // Hedges in front yards.
        if (district === 'residential' && rng.next() < 0.25 && z.beyond.free(s - 6, s + 6)) {
          const len = rng.uniform(4, 12);
          const p = roadPose(road, s + len / 2, sg * (outer + rng.uniform(1.5, 3)));
          const hedge = new Prism(p.x, p.y, p.yaw, len / 2, rng.uniform(0.35, 0.6), 0, rng.uniform(0.8, 1.6), false, -1, 16, 50 + rng.int(20), 90 + rng.int(30), 40, Surface.Foliage, 25);
          if (ground.rectOn(p.x, p.y, p.yaw, len / 2, 0.6, [MAT_TERRAIN]) && !index.overlaps(hedge, 0.3)) addStatic(hedge);
        }
        s += step;
      }
    }
  }
  // Scattered vegetation on open terrain.
  {
    const area = (bx1 - bx0 + 2 * pad) * (by1 - by0 + 2 * pad);
    const n = Math.round((area / 900) * (district === 'residential' ? 1.6 : district === 'downtown' ? 0.4 : 0.8));
    for (let k = 0; k < n; k++) {
      const x = gx0 + rng.next() * ground.w * res, y = gy0 + rng.next() * ground.h * res;
      const pr = projectRoad(main, x, y);
      if (Math.abs(pr.d) < mainOuter + 3) continue;
      if (rng.next() < 0.5) {
        if (ground.rectOn(x, y, 0, 3, 3, [MAT_TERRAIN], 1)) addTree(x, y, rng.uniform(1.5, 3), rng.uniform(1.5, 3.2));
      } else {
        const bush = new Prism(x, y, rng.uniform(0, Math.PI), rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5), 0, rng.uniform(0.5, 1.4), rng.next() < 0.5, -1, 16, 60 + rng.int(25), 100 + rng.int(30), 45, Surface.Foliage, 25);
        if (ground.rectOn(x, y, 0, 1.6, 1.6, [MAT_TERRAIN]) && !index.overlaps(bush, 0.3)) addStatic(bush);
      }
    }
  }

  // Traffic on every lane of every road.
  const laneProfile = (): Profile => {
    const r = rng.next();
    if (r < 0.15) return { v0: 0, a: 0, vmax: 0 };
    if (r < 0.25) return { v0: 0, a: rng.uniform(0.8, 2), vmax: rng.uniform(7, 12) };
    if (r < 0.35) return { v0: rng.uniform(5, 10), a: -rng.uniform(0.6, 1.5), vmax: 14 };
    return { v0: rng.uniform(4, 13), a: rng.uniform(-0.3, 0.3), vmax: 15 };
  };
  const trafficKind = (outerLane: boolean): ObjectKind | 'semi' => {
    const i = rng.weighted([0.7, 0.08, 0.05, 0.09, 0.03, 0.02, outerLane ? 0.03 : 0]);
    return (['car', 'truck', 'bus', 'motorcycle', 'semi', 'construction', 'bicycle'] as const)[i]!;
  };
  /** Fill a lane path with a queue of vehicles sharing one profile; `keep(s0, s1)` vets a vehicle's span at t = 0. */
  const fillLane = (path: Path, profile: Profile, sFrom: number, sTo: number, outerLane: boolean, keep: (a: number, b: number) => boolean, cycleLane = false) => {
    const moving = profile.vmax > 0;
    const vTyp = Math.max(profile.v0, profile.vmax * 0.5);
    let s = sFrom + rng.uniform(0, 10);
    while (s < sTo) {
      const k = cycleLane ? (rng.next() < 0.75 ? 'bicycle' : 'motorcycle') : trafficKind(outerLane);
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
      const a = spans[0]![0], b = spans[spans.length - 1]![1];
      if (!keep(a, b)) ok = false;
      if (ok) for (const o of group) objects.push(o);
      const gapMean = 14 / dens;
      const gap = (vTyp < 0.5 ? rng.uniform(1.5, 4) : 4 + vTyp * rng.uniform(0.6, 1.6)) + exp(rng, gapMean);
      s = b + gap;
    }
  };
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
          const profile = isEgo ? egoProfile : laneProfile();
          const keep = isEgo ? (a: number, b: number) => b < pre - 7.5 || a > pre + 10 : () => true;
          fillLane(path, profile, -travelled(profile) - 30, L + 30, lane === xsR.lanes - 1, keep);
        } else {
          // Along the cross street: queue stopped before the main road, traffic leaving it.
          const midAlong = side === 0 ? cross.mid : L - cross.mid;
          const clear = mainOuter + 3;
          const exists = (a: number, b: number) => (cross.mid === 0 ? (side === 0 ? a > 0 : b < L) : true) && a > -40 && b < L + 40;
          const stopped: Profile = { v0: 0, a: 0, vmax: 0 };
          fillLane(path, stopped, midAlong - clear - 40, midAlong - clear - 1, false, (a, b) => exists(a, b) && b < midAlong - clear);
          const leave = laneProfile();
          const lp: Profile = leave.vmax === 0 ? { v0: 6, a: 0, vmax: 10 } : leave;
          fillLane(path, lp, midAlong + clear, L + 20, false, (a, b) => exists(a, b) && a > midAlong + clear && a + Math.min(0, profileDistance(lp, T)) > midAlong + clear);
        }
      }
      // Bike lane.
      if (road.xs.bike[side]! > 0) {
        const off = road.xs.median + road.xs.lanes * road.xs.laneWidth + road.xs.bike[side]! / 2;
        const path = sidePath(road, side, off);
        const profile: Profile = { v0: rng.uniform(3, 6), a: 0, vmax: 7 };
        fillLane(path, profile, -travelled(profile) - 20, path.length + 20, false, () => rng.next() < 0.35, true);
      }
    }
  }

  // Parking lanes: parked vehicles, short lane closures with cones and barriers.
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
      if (rng.next() < 0.5) {
        // Lane closure: a row of barriers along the lane edge and cones ahead of it.
        const sc = rng.uniform(Math.max(0, pre - 30), Math.min(L - 20, pre + D + 30));
        const cs = toCentre(sc);
        if (z.parking.free(cs - 2, cs + 14)) {
          z.parking.add(cs - 2, cs + 14);
          const nb = 1 + rng.int(3);
          let s = sc + 3;
          for (let k = 0; k < nb; k++) {
            const o = makeObject('barrier', rng, still(0, 0, 0));
            const p = path.at(s + o.size[0] / 2);
            const lat = xsR.parking[side]! / 2 - 0.4;
            const x = p.x - Math.sin(p.heading) * lat, y = p.y + Math.cos(p.heading) * lat;
            o.motion = still(x, y, p.heading + Math.PI / 2);
            addStaticObject(o);
            s += o.size[0] + 0.2;
          }
          for (let k = 0; k < 2 + rng.int(3); k++) {
            const o = makeObject('cone', rng, still(0, 0, 0));
            const p = path.at(sc + k * 1.2);
            const lat = (k / 4) * (xsR.parking[side]! / 2 - 0.3);
            o.motion = still(p.x - Math.sin(p.heading) * lat, p.y + Math.cos(p.heading) * lat, rng.uniform(-Math.PI, Math.PI));
            addStaticObject(o);
          }
        }
      }
      let s = rng.uniform(0, 6);
      while (s < L) {
        if (rng.next() < 0.15 / dens) { s += rng.uniform(5, 25); continue; }
        const kind = rng.pick(['car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'car', 'truck', 'motorcycle', 'bicycle', 'trailer', 'bus'] as ObjectKind[]);
        const isBus = kind === 'bus';
        const o = makeObject(kind, rng, still(0, 0, 0), { parked: !isBus, rider: false });
        const l = o.size[1];
        const cs0 = toCentre(s), cs1 = toCentre(s + l);
        if (!Number.isFinite(cs0) || !Number.isFinite(cs1) || !z.parking.free(Math.min(cs0, cs1) - 0.3, Math.max(cs0, cs1) + 0.3)) { s += 2; continue; }
        const p = path.at(s + l / 2);
        // Left of the direction of travel is towards the road centre; wide vehicles move towards the curb.
        const lat = rng.uniform(-0.15, 0.15) - Math.max(0, (o.size[0] - xsR.parking[side]!) / 2 + 0.1);
        o.motion = still(p.x - Math.sin(p.heading) * lat, p.y + Math.cos(p.heading) * lat, p.heading + rng.normal(0, 0.025));
        if (addStaticObject(o)) s += l + rng.uniform(0.7, 3);
        else s += 1;
      }
    }
  }

  // Sidewalks: pedestrians walking in slots, standing and sitting people, racks with bicycles, bins.
  for (const road of roads) {
    const cross = crosses.find((c) => c.road === road);
    for (const side of [0, 1]) {
      const xsR = road.xs;
      const curb = curbOffset(xsR, side), outer = outerOffset(xsR, side);
      const z = zones.get(road)![side]!;
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
            const clear = mainOuter + 1;
            for (let q = 0; q <= 8 && ok; q++) {
              const p = path.at(s + profileDistance(profile, (T * q) / 8));
              const cs = projectRoad(road, p.x, p.y).s;
              if (!Number.isFinite(cs) || Math.abs(cs - cross.mid) < clear) ok = false;
            }
          }
          if (ok) objects.push(o);
          s += o.size[1] + 1 + exp(rng, 30 / dens);
        }
      }
      // Furniture zone: standing pedestrians, racks with bicycles, bins; back of the sidewalk: sitting people.
      let s = rng.uniform(0, 8);
      while (s < road.path.length) {
        const r = rng.next();
        const fz = curb + 0.55;
        if (r < 0.2 * dens) {
          if (z.furniture.free(s - 0.5, s + 0.5)) {
            const p = roadPose(road, s, sidesign(side) * (fz + rng.uniform(-0.15, 0.15)));
            const o = makeObject(rng.next() < 0.1 ? 'child' : 'pedestrian', rng, still(p.x, p.y, rng.uniform(-Math.PI, Math.PI)));
            if (addStaticObject(o)) z.furniture.add(s - 0.5, s + 0.5);
          }
        } else if (r < 0.42) {
          const len = rng.uniform(3, 6);
          if (z.furniture.free(s - 0.3, s + len + 0.3)) {
            // A rack (box 1 m wide: rail on the kerb side, bicycles parked along it on the sidewalk side).
            const p = roadPose(road, s + len / 2, sidesign(side) * fz);
            const toKerb = side === 0 ? 1 : -1;
            const rack = makeObject('rack', rng, still(p.x, p.y, p.yaw));
            rack.size[0] = 1.0;
            rack.size[1] = len;
            rack.parts[0]!.hx = len / 2;
            rack.parts[0]!.y = 0.3 * toKerb;
            if (addStaticObject(rack)) {
              z.furniture.add(s - 0.3, s + len + 0.3);
              const c = Math.cos(p.yaw), sn = Math.sin(p.yaw);
              for (let along = -len / 2 + 1.0; along <= len / 2 - 1.0; along += 2.05) {
                if (rng.next() < 0.25) continue;
                const lat = -0.15 * toKerb;
                const bike = makeObject('bicycle', rng, still(p.x + c * along - sn * lat, p.y + sn * along + c * lat, p.yaw + (rng.next() < 0.5 ? 0 : Math.PI)), { rider: false });
                objects.push(bike);
              }
            }
          }
        } else if (r < 0.48) {
          if (z.furniture.free(s - 0.5, s + 0.5)) {
            const p = roadPose(road, s, sidesign(side) * fz);
            if (addStaticObject(makeObject('bin', rng, still(p.x, p.y, p.yaw)))) z.furniture.add(s - 0.5, s + 0.5);
          }
        } else if (r < 0.52 && xsR.sidewalk[side]! >= 3.5 && z.furniture.free(s - 0.5, s + 0.5) && z.beyond.free(s - 0.5, s + 0.5)) {
          const p = roadPose(road, s, sidesign(side) * (outer - 0.3));
          addStaticObject(makeObject('pedestrian', rng, still(p.x, p.y, p.yaw + (side === 0 ? Math.PI / 2 : -Math.PI / 2)), { sitting: true }));
        }
        s += rng.uniform(3, 9) / Math.max(0.3, dens);
      }
    }
  }

  // Median barriers.
  if (xs.median >= 0.6 && rng.next() < 0.5) {
    let s = pre + rng.uniform(-30, 10);
    const end = s + rng.uniform(20, 60);
    while (s < end) {
      const o = makeObject('barrier', rng, still(0, 0, 0));
      const p = roadPose(main, s + o.size[0] / 2, 0);
      o.motion = still(p.x, p.y, p.yaw + Math.PI / 2);
      addStaticObject(o);
      s += o.size[0] + 0.1;
    }
  }

  // Keep objects that come near the ego route at some keyframe.
  const egoAt = opts.keyTimes.map((t) => egoPoseOf(ego, t));
  const reach = opts.annotationRange + 45;
  const kept = objects.filter((o) => opts.keyTimes.some((t, i) => {
    const p = objectPose(o, t);
    return Math.hypot(p.x - egoAt[i]!.x, p.y - egoAt[i]!.y) < reach;
  }));
  // Drop moving objects that would overlap the ego car itself.
  const egoBox = (t: number) => {
    const e = egoPoseOf(ego, t);
    const c = Math.cos(e.yaw), s = Math.sin(e.yaw);
    return new Prism(e.x + c * 1.4, e.y + s * 1.4, e.yaw, 2.6, 1.1, 0, 1.6, false, -1, 0, 0, 0, 0, Surface.Plain, 0);
  };
  const final = kept.filter((o) => opts.keyTimes.every((t) => {
    const p = objectPose(o, t);
    return !footprintsOverlap(objFootprint(o, p), egoBox(t), 0.3);
  }));

  const routeName = routeType === 'straight' ? 'straight road' : routeType === 'curve' ? 'curved road' : 'S-curve';
  const egoState = egoProfile.vmax === 0 ? 'ego waiting' : egoProfile.v0 === 0 ? 'ego starting' : egoProfile.a < -0.5 ? 'ego braking' : 'ego driving';
  const description = `Synthetic ${district}, ${routeName}, ${xs.lanes} lane(s) each way, ${crosses.length} cross street(s), ${env.lighting}, ${egoState}, parking lot, construction site`;
  return { env, ground, roads, staticPrims, objects: final, ego, description, location: `synth-${district}` };
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
