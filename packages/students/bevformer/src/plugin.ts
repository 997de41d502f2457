import { fileURLToPath } from 'node:url';
import { defineStudent, type Rng } from '@bevzoo/core';
import { BEVFormerDetector, bevformerFeatures, bevformerSchema } from '@bevzoo/nn';
import { bevformerPresets, type BEVFormerConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/** What the shipped starting weights hold: the image backbone. */
export const IMAGE_BRANCH_PREFIXES = ['img_backbone.'] as const;

/**
 * BEVFormer (Li et al., ECCV 2022) with a CenterHead on its BEV embedding — @bevzoo/nn's BEVFormerDetector: learned
 * BEV queries, temporal self-attention over the previous BEV aligned by ego motion, spatial cross-attention into the
 * cameras' multi-scale features, both on the multi-scale deformable attention op.
 */
export class BEVFormer extends BEVFormerDetector {
  constructor(config: BEVFormerConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'bevformer' });
  }
}

/** The BEVFormer student plugin (registered by this package's index). */
export const bevformerStudent = defineStudent<BEVFormerConfig, BEVFormer>({
  name: 'bevformer',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'BEVFormer: BEV queries with temporal self-attention and spatial cross-attention (multi-scale deformable attention), CenterHead on the BEV embedding',
  configSchema: bevformerSchema,
  presets: bevformerPresets,
  defaultPreset: 'small',
  provides: bevformerFeatures,
  create: (config, ctx) => new BEVFormer(config, { rng: ctx.rng.fork('bevformer') }),
  // The image backbone is BEVDet small's (the same ResNet): trained with LiDAR depth supervision on the synthetic
  // train split, cut out of @bevzoo/student-bevdet's starting weights (scripts/image-branch.mjs). The FPN, the
  // encoder and the head start from scratch.
  initWeights: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/bevformer-small-image-synth.safetensors', import.meta.url)),
      prefixes: IMAGE_BRANCH_PREFIXES,
      description: 'image backbone pretrained 4000 steps with LiDAR depth supervision on the synthetic train split (BEVDet small\'s)',
    },
  ],
});
