import { fileURLToPath } from 'node:url';
import { defineStudent } from '@bevzoo/core';
import { bevdetConfigSchema, bevdetFeatures, bevdetPresets, type BEVDetConfig } from './config.js';
import { BEVDet } from './model.js';
import { IMAGE_BRANCH_PREFIXES } from '@bevzoo/nn';
import pkg from '../package.json' with { type: 'json' };

/** The image branch (the LSS family's camera branch): what the shipped starting weights hold. */
export { IMAGE_BRANCH_PREFIXES };

/** The BEVDet student plugin (registered by this package's index). */
export const bevdetStudent = defineStudent<BEVDetConfig, BEVDet>({
  name: 'bevdet',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'BEVDet: ResNet + FPN image encoder, LSS view transform with BEVPool, CustomResNet + FPN_LSS BEV encoder, CenterHead',
  configSchema: bevdetConfigSchema,
  presets: bevdetPresets,
  defaultPreset: 'small',
  provides: bevdetFeatures,
  create: (config, ctx) => new BEVDet(config, { rng: ctx.rng.fork('bevdet') }),
  // The image branch of the small preset starts pretrained, as the paper's ImageNet ResNet does: BEVDet small with
  // depth supervision (BEVDepth's) trained on the synthetic train split, its image branch cut out
  // (apps/runner/scripts/export-weights.ts). The BEV encoder and the head start from scratch. `--scratch` ignores it.
  initWeights: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/bevdet-small-image-synth.safetensors', import.meta.url)),
      prefixes: IMAGE_BRANCH_PREFIXES,
      description: 'image branch pretrained 4000 steps with LiDAR depth supervision on the synthetic train split',
    },
  ],
});
