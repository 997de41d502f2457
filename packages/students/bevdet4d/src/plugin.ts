import { fileURLToPath } from 'node:url';
import { defineStudent, type Rng } from '@bevzoo/core';
import { LSSDetector, lssDetectorFeatures, lssDetectorSchema, IMAGE_BRANCH_PREFIXES } from '@bevzoo/nn';
import { bevdet4dPresets, type BEVDet4DConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/** The image branch (the LSS family's camera branch): what the shipped starting weights hold. */
export { IMAGE_BRANCH_PREFIXES };

/**
 * BEVDet4D (Huang & Huang 2022): BEVDet whose BEV encoder reads the current keyframe's BEV feature concatenated with
 * the previous keyframe's (computed without gradient), each through `pre_process_net`, the previous one aligned into
 * the current ego frame by the ego motion (bilinear sampling) — @bevzoo/nn's LSSDetector with `temporal.frames` 2.
 */
export class BEVDet4D extends LSSDetector {
  constructor(config: BEVDet4DConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'bevdet4d' });
  }
}

/** The BEVDet4D student plugin (registered by this package's index). */
export const bevdet4dStudent = defineStudent<BEVDet4DConfig, BEVDet4D>({
  name: 'bevdet4d',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'BEVDet4D: BEVDet with the previous keyframe\'s BEV feature aligned by ego motion and concatenated before the BEV encoder',
  configSchema: lssDetectorSchema,
  presets: bevdet4dPresets,
  defaultPreset: 'small',
  provides: lssDetectorFeatures,
  create: (config, ctx) => new BEVDet4D(config, { rng: ctx.rng.fork('bevdet4d') }),
  // The image branch is BEVDet's (the same modules and shapes; BEVDet4D starts from BEVDet's image encoder): the
  // small BEVDet trained with LiDAR depth supervision on the synthetic train split, its image branch cut out. The
  // pre-processing net, the BEV encoder (twice BEVDet's input channels) and the head start from scratch.
  initWeights: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/bevdet4d-small-image-synth.safetensors', import.meta.url)),
      prefixes: IMAGE_BRANCH_PREFIXES,
      description: 'image branch pretrained 4000 steps with LiDAR depth supervision on the synthetic train split (BEVDet small\'s)',
    },
  ],
});
