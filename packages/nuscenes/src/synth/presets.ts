/**
 * Presets of the synthetic dataset: data, in one table. A preset fixes sizes and sensor resolutions; the seed
 * picks the worlds. Every field is recorded in `<version>/bevzoo_synth.json`.
 */
export interface SynthPreset {
  name: string;
  description: string;
  /** Number of scenes (one log and one world each). */
  scenes: number;
  /** Keyframes (2 Hz samples) per scene. */
  samplesPerScene: number;
  /** The last `valScenes` scenes form the `synth_val` split, the rest `synth_train`. */
  valScenes: number;
  /** Camera image size (16:9 like nuScenes' 1600×900). */
  imageWidth: number;
  imageHeight: number;
  jpegQuality: number;
  /** LiDAR azimuth steps per turn (32 beams, −30.67°..+10.67°). */
  lidarAzimuthSteps: number;
  /** LiDAR sweeps between consecutive keyframes: 9 gives nuScenes' 20 Hz. */
  sweepsPerInterval: number;
  /** Sweeps before the first keyframe (so that the first sample has a history). */
  preSweeps: number;
  /** Maximum LiDAR range (m). */
  lidarMaxRange: number;
  /** Scans (keyframe + previous sweeps) whose rays are accumulated into Occ3D `mask_lidar`. */
  occLidarScans: number;
  /** Angular step (rad) of the camera rays cast for Occ3D `mask_camera` (independent of the image size). */
  occCameraRayStep: number;
  /** Objects whose centre lies within this xy distance (m) of the ego are annotated. */
  annotationRange: number;
  /** detection_config.json class ranges = detection_cvpr_2019 ranges × this factor. */
  classRangeScale: number;
  /** Multiplier on the density of traffic, parked vehicles and pedestrians. */
  objectDensity: number;
}

export type SynthPresetName = 'tiny' | 'small' | 'mini';

export const SYNTH_PRESETS: Readonly<Record<SynthPresetName, Readonly<SynthPreset>>> = {
  tiny: {
    name: 'tiny',
    description: 'Tests: 2 scenes × 4 samples, 176×99 images, 2 sweeps between keyframes.',
    scenes: 2, samplesPerScene: 4, valScenes: 1,
    imageWidth: 176, imageHeight: 99, jpegQuality: 90,
    lidarAzimuthSteps: 1000, sweepsPerInterval: 2, preSweeps: 2, lidarMaxRange: 70,
    occLidarScans: 2, occCameraRayStep: 0.01,
    annotationRange: 60, classRangeScale: 1, objectDensity: 1,
  },
  small: {
    name: 'small',
    description: 'Main benchmark: 20 scenes × 12 samples, 352×198 images, 20 Hz LiDAR sweeps.',
    scenes: 20, samplesPerScene: 12, valScenes: 4,
    imageWidth: 352, imageHeight: 198, jpegQuality: 90,
    lidarAzimuthSteps: 1080, sweepsPerInterval: 9, preSweeps: 9, lidarMaxRange: 70,
    occLidarScans: 2, occCameraRayStep: 0.01,
    annotationRange: 60, classRangeScale: 1, objectDensity: 1,
  },
  mini: {
    name: 'mini',
    description: 'nuScenes-mini sized: 10 scenes × 40 samples, 704×396 images (BEVDet input scale), 20 Hz LiDAR.',
    scenes: 10, samplesPerScene: 40, valScenes: 2,
    imageWidth: 704, imageHeight: 396, jpegQuality: 90,
    lidarAzimuthSteps: 1800, sweepsPerInterval: 9, preSweeps: 9, lidarMaxRange: 70,
    occLidarScans: 5, occCameraRayStep: 0.006,
    annotationRange: 60, classRangeScale: 1, objectDensity: 1,
  },
};

/** Look up a preset by name, or check a custom preset object. */
export function resolvePreset(preset: SynthPresetName | SynthPreset): SynthPreset {
  if (typeof preset === 'string') {
    const p = SYNTH_PRESETS[preset];
    if (!p) throw new RangeError(`unknown synthetic preset '${preset}' (expected one of ${Object.keys(SYNTH_PRESETS).join(', ')})`);
    return { ...p };
  }
  const checks: [keyof SynthPreset, number][] = [
    ['scenes', 1], ['samplesPerScene', 1], ['imageWidth', 16], ['imageHeight', 9], ['lidarAzimuthSteps', 64], ['occLidarScans', 1],
  ];
  for (const [k, min] of checks) {
    const v = preset[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`preset.${k}: expected an integer ≥ ${min}, found ${String(v)}`);
  }
  if (preset.valScenes < 0 || preset.valScenes > preset.scenes) throw new RangeError(`preset.valScenes: expected 0..${preset.scenes}, found ${preset.valScenes}`);
  return { ...preset };
}
