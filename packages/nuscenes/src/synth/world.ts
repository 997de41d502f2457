/**
 * One synthetic world (one scene): a main road (straight, curved or S-shaped) with cross streets, lanes,
 * parking lanes, bike lanes, sidewalks, a parking lot and a construction site near the ego route, buildings,
 * trees, hedges, street furniture, and annotated objects of all ten detection classes: traffic moving along
 * the lanes with shared speed profiles (no collisions), parked vehicles, pedestrians walking along the
 * sidewalks, cyclists, barriers and cones. Everything is drawn from one seeded generator, step by step in a fixed
 * order (the files named below), so a seed always gives the same world.
 */
import type { Rng } from '@bevzoo/core';
import { furnishAreas, reserveAreas } from './areas.js';
import { makeEnvironment, type District, type Environment } from './environment.js';
import { footprintsOverlap } from './footprints.js';
import type { GroundMap } from './ground.js';
import { objectPose, objectPrims, profileDistance, profileSpeed, type Pose2, type WorldObject } from './objects.js';
import { Prism, Surface } from './prism.js';
import { placeMedianBarriers, placeParkingLanes } from './road-edges.js';
import { layoutRoads, rasterGround, type Ego, type Road, type RoadLayout } from './road-layout.js';
import { placeBuildings, placeStreetFurniture, scatterVegetation } from './scenery.js';
import { placeSidewalks } from './sidewalks.js';
import { placeTraffic } from './traffic.js';
import { objectFootprint, WorldBuilder } from './world-builder.js';

export type { District, Environment, Rgb } from './environment.js';
export type { Road } from './road-layout.js';

export interface World {
  env: Environment;
  ground: GroundMap;
  roads: Road[];
  staticPrims: Prism[];
  objects: WorldObject[];
  ego: Ego;
  description: string;
  location: string;
}

export function egoPose(world: World, t: number): Pose2 {
  return egoPoseOf(world.ego, t);
}

function egoPoseOf(ego: Ego, t: number): Pose2 {
  const p = ego.path.at(ego.s0 + profileDistance(ego.profile, t));
  return { x: p.x, y: p.y, yaw: p.heading, speed: profileSpeed(ego.profile, t) };
}

/** Prims of all objects at time t (object index = position in world.objects). */
export function objectPrimsAt(world: World, t: number): Prism[] {
  const out: Prism[] = [];
  world.objects.forEach((o, i) => objectPrims(o, i, objectPose(o, t), out));
  return out;
}

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
  const layout = layoutRoads(rng, district, opts.duration);
  const { ground, bounds, pad } = rasterGround(layout);
  const b = new WorldBuilder(rng, layout, ground, opts.duration, opts.density);
  reserveAreas(b);
  furnishAreas(b);
  placeBuildings(b);
  placeStreetFurniture(b);
  scatterVegetation(b, bounds, pad);
  placeTraffic(b);
  placeParkingLanes(b);
  placeSidewalks(b);
  placeMedianBarriers(b);
  return {
    env, ground, roads: layout.roads, staticPrims: b.staticPrims, objects: nearEgo(b.objects, layout.ego, opts), ego: layout.ego,
    description: describeWorld(layout, env), location: `synth-${district}`,
  };
}

/** The objects that come near the ego route at some keyframe and never overlap the ego car itself. */
function nearEgo(objects: readonly WorldObject[], ego: Ego, opts: WorldOptions): WorldObject[] {
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
  return kept.filter((o) => opts.keyTimes.every((t) => {
    const p = objectPose(o, t);
    return !footprintsOverlap(objectFootprint(o, p), egoBox(t), 0.3);
  }));
}

function describeWorld(layout: RoadLayout, env: Environment): string {
  const { routeType, main, crosses, ego } = layout;
  const egoProfile = ego.profile;
  const routeName = routeType === 'straight' ? 'straight road' : routeType === 'curve' ? 'curved road' : 'S-curve';
  const egoState = egoProfile.vmax === 0 ? 'ego waiting' : egoProfile.v0 === 0 ? 'ego starting' : egoProfile.a < -0.5 ? 'ego braking' : 'ego driving';
  return `Synthetic ${layout.district}, ${routeName}, ${main.xs.lanes} lane(s) each way, ${crosses.length} cross street(s), ${env.lighting}, ${egoState}, parking lot, construction site`;
}
