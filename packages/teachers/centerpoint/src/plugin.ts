import { fileURLToPath } from 'node:url';
import { defineTeacher } from '@bevzoo/core';
import { CENTERPOINT_PRESETS, centerPointConfigSchema, centerPointFeatures, type CenterPointConfig } from './config.js';
import { CenterPointPillar } from './model.js';

export const CENTERPOINT_PACKAGE = '@bevzoo/teacher-centerpoint';
export const CENTERPOINT_VERSION = '0.1.0';

/** The CenterPoint-pillar LiDAR teacher (registered as `teacher:centerpoint`). */
export const centerPointTeacher = defineTeacher<CenterPointConfig, CenterPointPillar>({
  name: 'centerpoint',
  version: CENTERPOINT_VERSION,
  task: 'det',
  package: CENTERPOINT_PACKAGE,
  description: 'CenterPoint-pillar LiDAR detector: multi-sweep pillars → PillarFeatureNet → SECOND → SECONDFPN → CenterHead (6 nuScenes tasks)',
  configSchema: centerPointConfigSchema,
  presets: CENTERPOINT_PRESETS,
  defaultPreset: 'small',
  provides: centerPointFeatures,
  create: (config, ctx) => new CenterPointPillar(config, ctx.rng),
  // The small preset trained on the default synthetic dataset (its config and data are recorded in the file; the
  // runner uses it only where both match, so the matrix need not retrain the teacher every time).
  checkpoints: [
    {
      preset: 'small',
      file: fileURLToPath(new URL('../checkpoints/centerpoint-small-synth.safetensors', import.meta.url)),
      command: 'bevzoo train teacher centerpoint --preset small --seed 1 --out <dir>',
    },
  ],
});
