import { fileURLToPath } from 'node:url';
import { defineStudent, type Rng } from '@bevzoo/core';
import { LSSDetector, lssDetectorFeatures, lssDetectorSchema } from '@bevzoo/nn';
import { bevdepthPresets, type BEVDepthConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/** What the shipped starting weights hold: the image backbone, its FPN and the camera-aware depth net (README). */
export const IMAGE_BRANCH_PREFIXES = ['img_backbone.', 'img_neck.', 'img_view_transformer.'] as const;

/**
 * BEVDepth (Li et al. 2023): BEVDet whose depth net is camera-aware (intrinsics, image and BEV augmentation and
 * camera → ego through MLPs into SE gates on the context and depth branches), with the depth distribution supervised
 * by the keyframe LiDAR points (BCE over the depth bins) — @bevzoo/nn's LSSDetector with `viewTransform.depthNet`
 * camera-aware and `depthSupervision`; BEVDepth4D with `temporal.frames` 2.
 */
export class BEVDepth extends LSSDetector {
  constructor(config: BEVDepthConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'bevdepth' });
  }
}

/** The BEVDepth student plugin (registered by this package's index). */
export const bevdepthStudent = defineStudent<BEVDepthConfig, BEVDepth>({
  name: 'bevdepth',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'BEVDepth: BEVDet with a camera-aware DepthNet and LiDAR depth supervision; -4d presets add BEVDet4D\'s temporal fusion',
  configSchema: lssDetectorSchema,
  presets: bevdepthPresets,
  defaultPreset: 'small',
  provides: lssDetectorFeatures,
  create: (config, ctx) => new BEVDepth(config, { rng: ctx.rng.fork('bevdepth') }),
  // The image branch of BEVDepth small (backbone, FPN, camera-aware depth net) after 4000 steps with its LiDAR depth
  // supervision on the synthetic train split, started from BEVDet small's backbone and FPN (README). The BEV encoder
  // and the head start from scratch.
  initWeights: (['small', 'small-4d'] as const).map((preset) => ({
    preset,
    file: fileURLToPath(new URL('../checkpoints/bevdepth-small-image-synth.safetensors', import.meta.url)),
    prefixes: IMAGE_BRANCH_PREFIXES,
    description: 'image backbone, FPN and camera-aware depth net pretrained 4000 steps with LiDAR depth supervision on the synthetic train split (BEVDepth small)',
  })),
});
