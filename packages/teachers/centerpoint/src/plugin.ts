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
});
