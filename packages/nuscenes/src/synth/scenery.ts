/** Unannotated scenery: buildings along the roads, street lights, signs, street trees, hedges, scattered trees and bushes. */
import { FACADES } from './environment.js';
import { footprintsOverlap } from './footprints.js';
import { MAT_TERRAIN, curbOffset, outerOffset } from './ground.js';
import { Prism, Surface } from './prism.js';
import { projectRoad, roadPose, sideSign } from './road-layout.js';
import type { WorldBuilder } from './world-builder.js';

const BUILDING_STYLES = {
  downtown: { front: [14, 38], gap: [0, 3], depth: [14, 26], height: [10, 42], setback: [0, 1.5] },
  residential: { front: [8, 14], gap: [5, 14], depth: [8, 12], height: [4, 8], setback: [4, 10] },
  industrial: { front: [22, 48], gap: [6, 18], depth: [18, 34], height: [6, 13], setback: [3, 9] },
};

/** Two rows of buildings along every road side, where the zone beyond the sidewalk is free. */
export function placeBuildings(b: WorldBuilder): void {
  const { rng, ground } = b;
  const { district, roads, zones } = b.layout;
  const bStyle = BUILDING_STYLES[district];
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
          const c = roadPose(road, s + front / 2, sideSign(side) * (setback + depth / 2));
          const col = facades[rng.int(facades.length)]!;
          const f = rng.uniform(-12, 12);
          const p = new Prism(c.x, c.y, c.yaw, front / 2, depth / 2, 0, height, false, -1, 15,
            col[0] + f, col[1] + f, col[2] + f, Surface.Building, rng.uniform(20, 45));
          if (ground.rectOn(c.x, c.y, c.yaw, front / 2, depth / 2, [MAT_TERRAIN], 1) && !b.overlapsStatic(p, 0.5)) b.addStatic(p);
          s += front + gap;
        }
      }
    }
  }
}

/** A tree (crown over a trunk) at (x, y), unless the trunk hits something or the crown a building. */
function addTree(b: WorldBuilder, x: number, y: number, crownBase: number, crownR: number): boolean {
  const { rng } = b;
  const trunkR = rng.uniform(0.12, 0.22);
  const crownTop = crownBase + rng.uniform(2.5, 5.5);
  const crown = new Prism(x, y, rng.uniform(0, Math.PI), crownR, crownR, crownBase, crownTop, true, -1, 16, 60 + rng.int(30), 95 + rng.int(40), 45 + rng.int(20), Surface.Foliage, rng.uniform(15, 35));
  const trunk = new Prism(x, y, 0, trunkR, trunkR, 0, crownBase + 0.5, true, -1, 16, 90, 70, 50, Surface.Bark, 25);
  if (b.overlapsStatic(trunk, 0.3)) return false;
  for (const q of b.staticPrims) if (q.surface === Surface.Building && footprintsOverlap(crown, q, 0.2)) return false;
  b.staticPrims.push(crown);
  b.addStatic(trunk);
  return true;
}

/** Along every road side: street lights, street trees (kerb or verge), signs, and hedges in residential front yards. */
export function placeStreetFurniture(b: WorldBuilder): void {
  const { rng, ground } = b;
  const { district, roads, zones } = b.layout;
  const treeProb = district === 'residential' ? 0.75 : district === 'downtown' ? 0.4 : 0.2;
  for (const road of roads) {
    for (const side of [0, 1]) {
      const z = zones.get(road)![side]!;
      const xsR = road.xs;
      const curb = curbOffset(xsR, side), outer = outerOffset(xsR, side);
      const sg = sideSign(side);
      let s = rng.uniform(0, 10);
      let nextLight = rng.uniform(5, 30);
      while (s < road.path.length) {
        const step = rng.uniform(6, 14);
        const fz = curb + 0.55;
        if (s >= nextLight && z.furniture.free(s - 0.5, s + 0.5)) {
          const p = roadPose(road, s, sg * (curb + 0.35));
          const hgt = rng.uniform(7, 9);
          b.addStatic(new Prism(p.x, p.y, 0, 0.1, 0.1, 0, hgt, true, -1, 15, 95, 98, 100, Surface.Metal, 50));
          const arm = roadPose(road, s, sg * (curb + 0.35 - 0.8));
          b.staticPrims.push(new Prism(arm.x, arm.y, p.yaw + Math.PI / 2, 0.8, 0.08, hgt - 0.25, hgt, false, -1, 15, 95, 98, 100, Surface.Metal, 50));
          z.furniture.add(s - 0.6, s + 0.6);
          nextLight = s + rng.uniform(24, 40);
        } else if (rng.next() < treeProb && z.furniture.free(s - 1.2, s + 1.2)) {
          const inVerge = rng.next() < 0.5 && z.beyond.free(s - 3, s + 3);
          const d = inVerge ? outer + rng.uniform(1.2, 2.5) : fz;
          const p = roadPose(road, s, sg * d);
          const crownR = inVerge ? rng.uniform(1.5, 3) : rng.uniform(1.2, 2.3);
          if (addTree(b, p.x, p.y, inVerge ? rng.uniform(2, 3.5) : rng.uniform(4.5, 5.5), crownR)) {
            (inVerge ? z.beyond : z.furniture).add(s - 1.2, s + 1.2);
          }
        } else if (rng.next() < 0.12 && z.furniture.free(s - 0.4, s + 0.4)) {
          const p = roadPose(road, s, sg * (curb + 0.3));
          const hgt = rng.uniform(2.2, 2.8);
          b.addStatic(new Prism(p.x, p.y, 0, 0.05, 0.05, 0, hgt, true, -1, 15, 120, 120, 125, Surface.Metal, 50));
          const col = rng.pick([[200, 30, 30], [30, 80, 170], [240, 240, 240], [240, 200, 30]]);
          b.staticPrims.push(new Prism(p.x, p.y, p.yaw + Math.PI / 2, 0.35, 0.03, hgt - 0.75, hgt, false, -1, 15, col[0]!, col[1]!, col[2]!, Surface.Sign, 220));
          z.furniture.add(s - 0.5, s + 0.5);
        }
        // Hedges in front yards.
        if (district === 'residential' && rng.next() < 0.25 && z.beyond.free(s - 6, s + 6)) {
          const len = rng.uniform(4, 12);
          const p = roadPose(road, s + len / 2, sg * (outer + rng.uniform(1.5, 3)));
          const hedge = new Prism(p.x, p.y, p.yaw, len / 2, rng.uniform(0.35, 0.6), 0, rng.uniform(0.8, 1.6), false, -1, 16, 50 + rng.int(20), 90 + rng.int(30), 40, Surface.Foliage, 25);
          if (ground.rectOn(p.x, p.y, p.yaw, len / 2, 0.6, [MAT_TERRAIN]) && !b.overlapsStatic(hedge, 0.3)) b.addStatic(hedge);
        }
        s += step;
      }
    }
  }
}

/** Trees and bushes scattered over open terrain away from the main road; `bounds` and `pad` as rasterGround's. */
export function scatterVegetation(b: WorldBuilder, bounds: readonly [number, number, number, number], pad: number): void {
  const { rng, ground } = b;
  const { district, main, mainOuter } = b.layout;
  const [bx0, by0, bx1, by1] = bounds;
  const res = ground.res, gx0 = ground.x0, gy0 = ground.y0;
  const area = (bx1 - bx0 + 2 * pad) * (by1 - by0 + 2 * pad);
  const n = Math.round((area / 900) * (district === 'residential' ? 1.6 : district === 'downtown' ? 0.4 : 0.8));
  for (let k = 0; k < n; k++) {
    const x = gx0 + rng.next() * ground.w * res, y = gy0 + rng.next() * ground.h * res;
    const pr = projectRoad(main, x, y);
    if (Math.abs(pr.d) < mainOuter + 3) continue;
    if (rng.next() < 0.5) {
      if (ground.rectOn(x, y, 0, 3, 3, [MAT_TERRAIN], 1)) addTree(b, x, y, rng.uniform(1.5, 3), rng.uniform(1.5, 3.2));
    } else {
      const bush = new Prism(x, y, rng.uniform(0, Math.PI), rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5), 0, rng.uniform(0.5, 1.4), rng.next() < 0.5, -1, 16, 60 + rng.int(25), 100 + rng.int(30), 45, Surface.Foliage, 25);
      if (ground.rectOn(x, y, 0, 1.6, 1.6, [MAT_TERRAIN]) && !b.overlapsStatic(bush, 0.3)) b.addStatic(bush);
    }
  }
}
