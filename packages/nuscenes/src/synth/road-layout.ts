/**
 * The road network of a synthetic world: the ego's speed profile and route along a main road (straight, curved or
 * S-shaped), the parking lot / construction site areas beside it, cross streets and T-junctions, the free-space
 * zones along every road side, and the ground raster the roads are stamped into.
 */
import type { Rng } from '@bevzoo/core';
import type { District } from './environment.js';
import { Intervals } from './footprints.js';
import { GroundMap, outerOffset, type CrossSection } from './ground.js';
import { profileDistance, type Profile } from './objects.js';
import { Path, pieceBounds, projectOnPiece, type PathSpec } from './path.js';

export interface Road { path: Path; xs: CrossSection; main: boolean }

/** What is still free along one side of a road: beyond the sidewalk, the furniture zone, the parking lane. */
export interface Zones { beyond: Intervals; furniture: Intervals; parking: Intervals }

/** A parking lot or construction site beside the main road, over centreline s0..s1 on `side`. */
export interface Area { s0: number; s1: number; side: number; depth: number; kind: 'lot' | 'site' }

/** A cross street (or T street) meeting the main road at sMain; `mid` is where it crosses, along itself. */
export interface CrossStreet { road: Road; sMain: number; mid: number; sides: number[] }

export type RouteType = 'straight' | 'curve' | 's-curve';

export interface Ego { path: Path; s0: number; profile: Profile }

export interface RoadLayout {
  district: District;
  routeType: RouteType;
  /** Distance the ego drives in the scene, and where along its path it starts. */
  egoDistance: number;
  pre: number;
  ego: Ego;
  egoLane: number;
  main: Road;
  /** The main road first, then the cross streets. */
  roads: Road[];
  zones: Map<Road, [Zones, Zones]>;
  areas: Area[];
  crosses: CrossStreet[];
  /** Largest offset of the main road's outer edge (either side). */
  mainOuter: number;
}

export function crossSection(rng: Rng, district: District, main: boolean): CrossSection {
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
export function projectRoad(road: Road, x: number, y: number): { s: number; d: number } {
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
export function roadPose(road: Road, s: number, d: number, reverse = false): { x: number; y: number; yaw: number } {
  const p = road.path.at(s);
  return { x: p.x - Math.sin(p.heading) * d, y: p.y + Math.cos(p.heading) * d, yaw: p.heading + (reverse ? Math.PI : 0) };
}

/** Path along a side of a road at |offset| o, in that side's direction of travel (right-hand traffic). */
export function sidePath(road: Road, side: number, o: number): Path {
  return side === 0 ? road.path.offset(-o) : road.path.offset(o).reversed();
}

/** −1 for side 0 (right of the centreline), +1 for side 1. */
export const sideSign = (side: number) => (side === 0 ? -1 : 1);

const newZones = (): Zones => ({ beyond: new Intervals(), furniture: new Intervals(), parking: new Intervals() });

/** The whole road network of a scene of `duration` seconds. */
export function layoutRoads(rng: Rng, district: District, duration: number): RoadLayout {
  const route = planRoute(rng, district, duration);
  const { main, pre } = route;
  const zones = new Map<Road, [Zones, Zones]>();
  zones.set(main, [newZones(), newZones()]);
  // Anchors (parking lot, construction site) on straight parts of the main road near the ego route.
  const linePieces: [number, number][] = [];
  {
    let s0 = 0;
    for (const p of main.path.pieces) {
      if (p.kind === 'line') linePieces.push([s0, s0 + p.len]);
      s0 += p.len;
    }
  }
  const areas = placeAreas(rng, linePieces, pre, route.egoDistance);
  const mainOuter = Math.max(outerOffset(main.xs, 0), outerOffset(main.xs, 1));
  const roads: Road[] = [main];
  const crosses = placeCrossStreets(rng, { district, main, pre, egoDistance: route.egoDistance, linePieces, areas, mainOuter, roads, zones });
  return { ...route, district, roads, zones, areas, crosses, mainOuter };
}

/** The ego's speed profile, the main road and the ego's lane on it. */
function planRoute(rng: Rng, district: District, T: number): Pick<RoadLayout, 'routeType' | 'egoDistance' | 'pre' | 'ego' | 'egoLane' | 'main'> {
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
  const egoLane = rng.int(xs.lanes);
  const egoOff = xs.median + (egoLane + 0.5) * xs.laneWidth;
  const egoPath = mainPath.offset(-egoOff);
  return { routeType, egoDistance: D, pre, ego: { path: egoPath, s0: pre, profile: egoProfile }, egoLane, main };
}

/** A parking lot and a construction site near the start of the ego route (more further along a long route). */
function placeAreas(rng: Rng, linePieces: readonly [number, number][], pre: number, D: number): Area[] {
  const routeLo = pre - 20, routeHi = pre + D + 20;
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
  return areas;
}

interface CrossStreetSite {
  district: District;
  main: Road;
  pre: number;
  egoDistance: number;
  linePieces: readonly [number, number][];
  areas: readonly Area[];
  mainOuter: number;
  /** Cross streets are appended to roads, and get zones; the main road's zones are reserved where they meet it. */
  roads: Road[];
  zones: Map<Road, [Zones, Zones]>;
}

/** Cross streets on straight parts of the main road, away from the areas and from each other. */
function placeCrossStreets(rng: Rng, site: CrossStreetSite): CrossStreet[] {
  const { district, main, pre, egoDistance: D, linePieces, areas, mainOuter, roads, zones } = site;
  const mainPath = main.path;
  const crosses: CrossStreet[] = [];
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
    zones.set(road, [newZones(), newZones()]);
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
  return crosses;
}

/** The ground raster: 0.2 m cells over all roads plus a margin, every road stamped in. */
export function rasterGround(layout: RoadLayout): { ground: GroundMap; bounds: [number, number, number, number]; pad: number } {
  let bx0 = Infinity, by0 = Infinity, bx1 = -Infinity, by1 = -Infinity;
  for (const r of layout.roads) for (const p of r.path.pieces) {
    const b = pieceBounds(p);
    bx0 = Math.min(bx0, b[0]); by0 = Math.min(by0, b[1]); bx1 = Math.max(bx1, b[2]); by1 = Math.max(by1, b[3]);
  }
  const pad = layout.mainOuter + 30;
  const res = 0.2;
  const gx0 = Math.floor((bx0 - pad) / res) * res, gy0 = Math.floor((by0 - pad) / res) * res;
  const ground = new GroundMap(gx0, gy0, Math.ceil((bx1 + pad - gx0) / res), Math.ceil((by1 + pad - gy0) / res), res);
  layout.roads.forEach((r, i) => ground.stampRoad(i, r.path, r.xs));
  return { ground, bounds: [bx0, by0, bx1, by1], pad };
}
