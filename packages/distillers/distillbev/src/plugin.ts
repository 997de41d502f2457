import { defineDistiller } from '@bevzoo/core';
import type { DetBatch } from './batch.js';
import { DISTILLBEV_ABLATION, DISTILLBEV_PRESETS, distillBevConfigSchema, type DistillBevConfig } from './config.js';
import { DistillBev, distillBevRequires } from './distiller.js';

export const PACKAGE_NAME = '@bevzoo/distill-distillbev';
export const PACKAGE_VERSION = '0.1.0';

/** The DistillBEV distiller plugin (registered as distiller "distillbev" when the package is imported). */
export const distillBevPlugin = defineDistiller<DistillBevConfig, DistillBev>({
  name: 'distillbev',
  version: PACKAGE_VERSION,
  task: 'det',
  package: PACKAGE_NAME,
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
