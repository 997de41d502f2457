import type { Rng } from '@bevzoo/core';
import { LSSDetector, LSSInputError, lssHeadConfig, type CenterHeadConfig, type LSSDetectorBatch } from '@bevzoo/nn';
import type { BEVDetConfig } from './config.js';

/** A batch that does not fit the model: what was expected, what was found, and which field. */
export const BEVDetInputError = LSSInputError;

/** The batch fields BEVDet reads (@bevzoo/nuscenes' `Batch` satisfies it). */
export type BEVDetBatch = LSSDetectorBatch;

/** The CenterHead config BEVDet builds from its own config. */
export function bevdetHeadConfig(config: BEVDetConfig): CenterHeadConfig {
  return lssHeadConfig(config);
}

/**
 * BEVDet (Huang et al. 2021; the bevdet-r50 structure): image backbone (ResNet, two consecutive stages) →
 * FPNForBEVDet (one map at the LSS feature stride) → LSS view transform with BEVPool → CustomResNet (3 stages,
 * stride 2) → FPN_LSS → CenterHead — @bevzoo/nn's LSSDetector with neither temporal fusion nor the camera-aware
 * depth net. Parameter names follow BEVDet's: `img_backbone.*`, `img_neck.*`, `img_view_transformer.*`,
 * `img_bev_encoder_backbone.*`, `img_bev_encoder_neck.*`, `head.*`.
 *
 * forward → features `stage0`, `stage1`, `stage2`, `pre_head`, `heatmap` (NHWC [B, Y, X, C]) and outputs
 * `task{i}.{heatmap,reg,height,dim,rot,vel}` plus `depth` ([B·N, fH, fW, D] depth distribution).
 */
export class BEVDet extends LSSDetector {
  constructor(config: BEVDetConfig, opts: { rng?: Rng } = {}) {
    super(config, { rng: opts.rng, name: 'bevdet' });
  }
}
