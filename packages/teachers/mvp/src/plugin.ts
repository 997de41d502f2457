import { fileURLToPath } from 'node:url';
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
  // The small preset trained on the default synthetic dataset, as CenterPoint's (same network sizes and schedule; its
  // config and data are recorded in the file, and the runner uses it only where both match). The metrics are its
  // evaluation on synth_val (tests/src/zoo.e2e.test.ts reproduces them through bevzoo predict and bevzoo eval det).
  checkpoints: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/mvp-small-synth.safetensors', import.meta.url)),
      data: 'synthetic small seed 0 (generator 1.0.0), synth_train',
      metrics: { mean_ap: 0.6368155062365907, nd_score: 0.5223070054791952 },
      command: 'bevzoo train teacher mvp --preset small --seed 1 --out <dir>',
    },
  ],
});
