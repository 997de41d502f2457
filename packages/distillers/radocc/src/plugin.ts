import { defineDistiller } from '@bevzoo/core';
import type { OccDistillBatch } from './batch.js';
import { RADOCC_ABLATION, RADOCC_PRESETS, radOccConfigSchema, type RadOccConfig } from './config.js';
import { RadOcc, radOccData, radOccRequires } from './distiller.js';

import pkg from '../package.json' with { type: 'json' };

/** The RadOcc distiller plugin (registered as distiller "radocc" when the package is imported). */
export const radOccPlugin = defineDistiller<RadOccConfig, RadOcc>({
  name: 'radocc',
  version: pkg.version,
  task: 'occ',
  package: pkg.name,
  description:
    'RadOcc (AAAI 2024): rendering-assisted occupancy distillation — teacher and student voxel logits volume-rendered along the same LiDAR-picked camera rays; rendered depth consistency (KL of the ray termination weights), rendered semantic consistency (segment affinity or per-ray KL), voxel-logit KL; feature imitation for the ablation',
  configSchema: radOccConfigSchema,
  presets: RADOCC_PRESETS,
  defaultPreset: 'small',
  ablation: RADOCC_ABLATION,
  requires: radOccRequires,
  data: radOccData,
  create: (config, ctx) => new RadOcc(config, ctx),
});

export type { OccDistillBatch };
