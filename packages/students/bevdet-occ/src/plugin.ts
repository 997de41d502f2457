import { fileURLToPath } from 'node:url';
import { defineStudent, type Rng } from '@bevzoo/core';
import { LSSOcc3D, IMAGE_BRANCH_PREFIXES } from '@bevzoo/nn';
import { bevdetOccConfigSchema, bevdetOccFeatures, bevdetOccPresets, type BEVDetOccConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/** The image branch (the LSS family's camera branch): what the shipped starting weights hold. */
export { IMAGE_BRANCH_PREFIXES };

/**
 * BEVDet-Occ (the RadOcc paper's student; bevdet-occ-r50's structure): image backbone (ResNet, C4/C5) →
 * FPNForBEVDet → LSS with BEVPool into a voxel volume (z cells kept) → CustomResNet3D → LSSFPN3D → BEVOCCHead3D
 * (Conv3d + MLP per voxel) — @bevzoo/nn's LSSOcc3D. Parameter names follow the reference's: `img_backbone.*`,
 * `img_neck.*`, `img_view_transformer.*`, `img_bev_encoder_backbone.*`, `img_bev_encoder_neck.*`, `occ_head.*`.
 *
 * forward → features `voxel` ([B, X, Y, Z, C], Occ3D order), `pre_head` ([B, Y, X, Z·C]), `occ_logits`
 * ([B, X, Y, Z, 18]); outputs `occ` (the logits) and `depth` ([B·N, fH, fW, D]).
 */
export class BEVDetOcc extends LSSOcc3D {
  constructor(config: BEVDetOccConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'bevdet-occ' });
  }
}

/** The BEVDet-Occ student plugin (registered by this package's index). */
export const bevdetOccStudent = defineStudent<BEVDetOccConfig, BEVDetOcc>({
  name: 'bevdet-occ',
  version: pkg.version,
  task: 'occ',
  package: pkg.name,
  description: 'BEVDet-Occ: ResNet + FPN image encoder, LSS view transform with BEVPool into a voxel volume, CustomResNet3D + LSSFPN3D, Conv3d + MLP occupancy head',
  configSchema: bevdetOccConfigSchema,
  presets: bevdetOccPresets,
  defaultPreset: 'small',
  provides: bevdetOccFeatures,
  create: (config, ctx) => new BEVDetOcc(config, { rng: ctx.rng.fork('bevdet-occ') }),
  // The small preset's image branch starts from BEVDet small's, pretrained with LiDAR depth supervision on the
  // synthetic train split: backbone and FPN as they are, the LSS depth net's 49 depth outputs and the first 16 of its
  // 32 context outputs (small lifts 16 channels; scripts/image-branch.mjs). The 3-D encoder and the head start from
  // scratch. `--scratch` ignores it.
  initWeights: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/bevdet-occ-small-image-synth.safetensors', import.meta.url)),
      prefixes: IMAGE_BRANCH_PREFIXES,
      description: "image branch pretrained 4000 steps with LiDAR depth supervision on the synthetic train split (BEVDet small's, depth net cut to 16 context channels)",
    },
  ],
});
