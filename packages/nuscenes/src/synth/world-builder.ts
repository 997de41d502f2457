/**
 * What the placement steps of the world generator share: the seeded generator, the road layout and ground, the
 * static prims and annotated objects placed so far, and the footprint index that keeps static things apart.
 */
import type { Rng } from '@bevzoo/core';
import { FootprintIndex } from './footprints.js';
import type { GroundMap } from './ground.js';
import type { Motion, WorldObject } from './objects.js';
import { Prism, Surface } from './prism.js';
import type { RoadLayout } from './road-layout.js';

export class WorldBuilder {
  /** Scenery prims (buildings, trees, furniture), in placement order. */
  readonly staticPrims: Prism[] = [];
  /** Annotated objects, in placement order. */
  readonly objects: WorldObject[] = [];
  private readonly index = new FootprintIndex();

  constructor(
    readonly rng: Rng,
    readonly layout: RoadLayout,
    readonly ground: GroundMap,
    /** Scene duration (s). */
    readonly duration: number,
    readonly density: number,
  ) {}

  /** A scenery prim that others must not overlap. */
  addStatic(p: Prism): void {
    this.staticPrims.push(p);
    this.index.add(p);
  }

  /** Whether `p` overlaps a static footprint (scenery or a static object) by more than `margin`. */
  overlapsStatic(p: Prism, margin: number): boolean {
    return this.index.overlaps(p, margin);
  }

  /**
   * Add an object; a static one only where its footprint is free (then reserved unless `reserve` is false).
   * Returns whether it was added.
   */
  addStaticObject(o: WorldObject, reserve = true): boolean {
    if (o.motion.kind !== 'static') { this.objects.push(o); return true; }
    const fp = objectFootprint(o, o.motion);
    if (this.index.overlaps(fp, 0.05)) return false;
    if (reserve) this.index.add(fp);
    this.objects.push(o);
    return true;
  }
}

/** The prism of an object's box at a pose (for overlap tests). */
export function objectFootprint(o: WorldObject, pose: { x: number; y: number; yaw: number }): Prism {
  return new Prism(pose.x, pose.y, pose.yaw, o.size[1] / 2, o.size[0] / 2, 0, o.size[2], false, -1, 0, 0, 0, 0, Surface.Plain, 0);
}

/** An exponentially distributed draw with the given mean. */
export function exponential(rng: Rng, mean: number): number {
  return -Math.log(1 - rng.next()) * mean;
}

/** A static motion at (x, y, yaw). */
export const still = (x: number, y: number, yaw: number): Extract<Motion, { kind: 'static' }> => ({ kind: 'static', x, y, yaw });
