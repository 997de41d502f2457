/**
 * The synthetic nuScenes-format dataset generator. See the "Synthetic dataset" section of the package README.
 */
export { generateSynthetic, SynthError } from './generate.js';
export type { GenerateSyntheticOptions, GenerateSyntheticResult, SynthManifest, SynthProgress } from './generate.js';
export { SYNTH_PRESETS, resolvePreset } from './presets.js';
export type { SynthPreset, SynthPresetName } from './presets.js';
export { SYNTH_GENERATOR_VERSION, SYNTH_VERSION, segmentPathFor, synthToken, detectionConfig } from './meta.js';
export { encodePng, decodePng, PngFormatError } from './png.js';
export type { PngImage } from './png.js';
export { countPointsInBoxes, sensorPointsToGlobal, annotationBox } from './count.js';
export { synthSceneName } from './scene.js';

import { decodePng } from './png.js';

/** Decode an instance-segment PNG: per-pixel ids (0 = background, k = k-th annotation of the sample). */
export function readSegmentIds(png: Uint8Array, where = 'segment png'): { width: number; height: number; ids: Uint16Array } {
  const img = decodePng(png, where);
  if (img.channels !== 1 || img.bitDepth !== 16) {
    throw new RangeError(`${where}: expected a 16-bit grayscale segment PNG, found ${img.channels} channel(s) at ${img.bitDepth} bit`);
  }
  return { width: img.width, height: img.height, ids: img.data as Uint16Array };
}
