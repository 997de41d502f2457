import { defineTeacher, type Rng } from '@bevzoo/core';
import { CenterPointPillar, centerPointFeatures } from '@bevzoo/nn';
import { MVP_POINT_LAYOUT, MVP_PRESETS, mvpConfigSchema, type MVPConfig } from './config.js';
import pkg from '../package.json' with { type: 'json' };

/**
 * The MVP detector: @bevzoo/nn's CenterPoint-pillar reading 17 values per point, naming itself `MVP` in errors (a batch
 * loaded without virtual points is rejected naming `batch.pointFeatures`).
 */
export function createMVP(config: MVPConfig, rng?: Rng): CenterPointPillar {
  return new CenterPointPillar(config, rng, {
    name: 'MVP',
    pointLayout: MVP_POINT_LAYOUT,
    loadHint: 'data.virtualPoints = true (virtual points from the 2-D instance masks; the runner prepares the masks and the virtual-point cache)',
  });
}

/** The MVP multi-modal detection teacher (registered as `teacher:mvp`). */
export const mvpTeacher = defineTeacher<MVPConfig, CenterPointPillar>({
  name: 'mvp',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'MVP: CenterPoint-pillar on LiDAR sweeps painted by 2-D instance masks plus virtual points sampled in the masks (17 values per point) → PillarFeatureNet → SECOND → SECONDFPN → CenterHead',
  configSchema: mvpConfigSchema,
  presets: MVP_PRESETS,
  defaultPreset: 'small',
  provides: centerPointFeatures,
  create: (config, ctx) => createMVP(config, ctx.rng),
});
