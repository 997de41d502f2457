import { fileURLToPath } from 'node:url';
import { defineTeacher } from '@bevzoo/core';
import { CENTERPOINT_PRESETS, centerPointConfigSchema, centerPointFeatures, type CenterPointConfig } from './config.js';
import { CenterPointPillar } from './model.js';
import pkg from '../package.json' with { type: 'json' };

/** The CenterPoint-pillar LiDAR teacher (registered as `teacher:centerpoint`). */
export const centerPointTeacher = defineTeacher<CenterPointConfig, CenterPointPillar>({
  name: 'centerpoint',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'CenterPoint-pillar LiDAR detector: multi-sweep pillars → PillarFeatureNet → SECOND → SECONDFPN → CenterHead (6 nuScenes tasks)',
  configSchema: centerPointConfigSchema,
  presets: CENTERPOINT_PRESETS,
  defaultPreset: 'small',
  provides: centerPointFeatures,
  create: (config, ctx) => new CenterPointPillar(config, ctx.rng),
  // The small preset trained on the default synthetic dataset (its config and data are recorded in the file; the
  // runner uses it only where both match, so the matrix need not retrain the teacher every time). The metrics are
  // its evaluation on synth_val (createModel('centerpoint', { pretrained: true }) reproduces them; tests/).
  checkpoints: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/centerpoint-small-synth.safetensors', import.meta.url)),
      data: 'synthetic small seed 0 (generator 1.0.0), synth_train',
      metrics: { mean_ap: 0.5158011764851266, nd_score: 0.5025474522228182 },
      command: 'bevzoo train teacher centerpoint --preset small --seed 1 --out <dir>',
    },
  ],
});
