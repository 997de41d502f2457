import { fileURLToPath } from 'node:url';
import { defineStudent, type Rng } from '@bevzoo/core';
import { LSSOcc2D, IMAGE_BRANCH_PREFIXES } from '@bevzoo/nn';
import { flashoccConfigSchema, flashoccFeatures, flashoccPresets, type FlashOccConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/** The image branch (the LSS family's camera branch): what the shipped starting weights hold. */
export { IMAGE_BRANCH_PREFIXES };

/**
 * FlashOcc (Yu et al. 2023, flashocc-r50's structure): image backbone (ResNet, C4/C5) → FPNForBEVDet → LSS with
 * BEVPool into a BEV map (z collapsed) → CustomResNet → FPN_LSS → channel-to-height head (BEVOCCHead2D: 3×3 conv,
 * then an MLP per BEV cell to Z·18 logits reshaped into the vertical axis); no 3-D convolution — @bevzoo/nn's
 * LSSOcc2D. Parameter names follow FlashOcc's: `img_backbone.*`, `img_neck.*`, `img_view_transformer.*`,
 * `img_bev_encoder_backbone.*`, `img_bev_encoder_neck.*`, `occ_head.*`.
 *
 * forward → features `stage0..2`, `pre_head` (NHWC [B, Y, X, C]), `occ_logits` ([B, X, Y, Z, 18]); outputs `occ`
 * (the logits) and `depth` ([B·N, fH, fW, D]).
 */
export class FlashOcc extends LSSOcc2D {
  constructor(config: FlashOccConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'flashocc' });
  }
}

/** The FlashOcc student plugin (registered by this package's index). */
export const flashoccStudent = defineStudent<FlashOccConfig, FlashOcc>({
  name: 'flashocc',
  version: pkg.version,
  task: 'occ',
  package: pkg.name,
  description: 'FlashOcc: ResNet + FPN image encoder, LSS view transform with BEVPool into BEV, CustomResNet + FPN_LSS, channel-to-height occupancy head (no 3-D convolution)',
  configSchema: flashoccConfigSchema,
  presets: flashoccPresets,
  defaultPreset: 'small',
  provides: flashoccFeatures,
  create: (config, ctx) => new FlashOcc(config, { rng: ctx.rng.fork('flashocc') }),
  // The small preset's image branch is BEVDet small's (the same shapes): pretrained with LiDAR depth supervision on
  // the synthetic train split, copied from @bevzoo/student-bevdet's starting weights (scripts/image-branch.mjs). The
  // BEV encoder and the head start from scratch. `--scratch` ignores it.
  initWeights: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/flashocc-small-image-synth.safetensors', import.meta.url)),
      prefixes: IMAGE_BRANCH_PREFIXES,
      description: "image branch pretrained 4000 steps with LiDAR depth supervision on the synthetic train split (BEVDet small's)",
    },
  ],
});
