/** A scene's look: district, lighting and sun, sky and ground colours, facade palettes. */
import type { Rng } from '@bevzoo/core';

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

/** Facade colours per district. */
export const FACADES: Record<District, Rgb[]> = {
  downtown: [[180, 175, 165], [140, 150, 160], [120, 90, 75], [200, 195, 185], [90, 100, 115], [160, 140, 120]],
  residential: [[225, 215, 195], [190, 120, 95], [240, 240, 235], [170, 185, 160], [210, 190, 150], [150, 110, 90]],
  industrial: [[160, 165, 170], [130, 135, 140], [190, 185, 175], [110, 120, 110], [170, 150, 130]],
};

export function makeEnvironment(rng: Rng, district: District): Environment {
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
