import { defineDistiller } from '@bevzoo/core';
import type { DetBatch } from './batch.js';
import { DISTILLBEV_ABLATION, DISTILLBEV_PRESETS, distillBevConfigSchema, type DistillBevConfig } from './config.js';
import { DistillBev, distillBevRequires } from './distiller.js';

import pkg from '../package.json' with { type: 'json' };

/** The DistillBEV distiller plugin (registered as distiller "distillbev" when the package is imported). */
export const distillBevPlugin = defineDistiller<DistillBevConfig, DistillBev>({
  name: 'distillbev',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description:
    'DistillBEV (ICCV 2023): region-decomposed (fg / false-positive / background), attention-weighted, adaptively scaled BEV feature imitation at the pre-head and backbone stages, plus attention imitation and head inheritance',
  configSchema: distillBevConfigSchema,
  presets: DISTILLBEV_PRESETS,
  defaultPreset: 'small',
  ablation: DISTILLBEV_ABLATION,
  requires: distillBevRequires,
  create: (config, ctx) => new DistillBev(config, ctx),
});

export type { DetBatch };
