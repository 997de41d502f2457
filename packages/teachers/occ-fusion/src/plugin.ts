import { fileURLToPath } from 'node:url';
import { defineTeacher, type Rng } from '@bevzoo/core';
import { LSSOccFusion, IMAGE_BRANCH_PREFIXES } from '@bevzoo/nn';
import { occFusionConfigSchema, occFusionFeatures, occFusionPresets, type OccFusionConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/** The image branch (the LSS family's camera branch): what the shipped starting weights hold. */
export { IMAGE_BRANCH_PREFIXES };

/**
 * The multi-modal occupancy teacher (RadOcc's, BEVFusion-style): FlashOcc's camera branch (ResNet → FPNForBEVDet →
 * LSS with BEVPool into BEV) and a LiDAR branch (pillars → PillarFeatureNet → scatter, beside a height histogram →
 * 3×3 convs), fused by concat → 3×3 conv → channel gate, then CustomResNet → FPN_LSS → the channel-to-height head.
 * @bevzoo/nn's `LSSOccFusion`.
 *
 * forward → features `stage0..2`, `pre_head` (NHWC [B, Y, X, C]), `occ_logits` ([B, X, Y, Z, 18]); outputs `occ`
 * (the logits) and `depth`.
 */
export class OccFusion extends LSSOccFusion {
  constructor(config: OccFusionConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'occ-fusion' });
  }
}

/** The multi-modal occupancy teacher plugin (registered by this package's index). */
export const occFusionTeacher = defineTeacher<OccFusionConfig, OccFusion>({
  name: 'occ-fusion',
  version: pkg.version,
  task: 'occ',
  package: pkg.name,
  description: 'multi-modal occupancy: FlashOcc camera branch + LiDAR pillars and height histogram, concat → conv → channel gate, CustomResNet + FPN_LSS, channel-to-height head',
  configSchema: occFusionConfigSchema,
  presets: occFusionPresets,
  defaultPreset: 'small',
  provides: occFusionFeatures,
  create: (config, ctx) => new OccFusion(config, { rng: ctx.rng.fork('occ-fusion') }),
  // The small preset trained on the default synthetic dataset (its config and data are recorded in the file; the
  // runner uses it where both match, so the matrix need not retrain the teacher). The metric is its Occ3D mIoU on
  // synth_val (tests/src/zoo.e2e.test.ts reproduces it through bevzoo predict and bevzoo eval occ).
  checkpoints: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/occ-fusion-small-synth.safetensors', import.meta.url)),
      data: 'synthetic small seed 0 (generator 1.0.0), synth_train',
      metrics: { miou: 0.3331129214550902 },
      command: 'bevzoo train teacher occ-fusion --preset small --seed 1 --out <dir>',
    },
  ],
  // The students' starting image branch (BEVDet small's, pretrained with LiDAR depth supervision on the synthetic
  // train split); the LiDAR branch, the fuser, the BEV encoder and the head start from scratch. `--scratch` ignores it.
  initWeights: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/occ-fusion-small-image-synth.safetensors', import.meta.url)),
      prefixes: IMAGE_BRANCH_PREFIXES,
      description: "image branch pretrained 4000 steps with LiDAR depth supervision on the synthetic train split (BEVDet small's)",
    },
  ],
});
