import { defineStudent } from '@bevzoo/core';
import { bevdetConfigSchema, bevdetFeatures, bevdetPresets, type BEVDetConfig } from './config.js';
import { BEVDet } from './model.js';

export const PACKAGE_NAME = '@bevzoo/student-bevdet';
export const PACKAGE_VERSION = '0.1.0';

/** The BEVDet student plugin (registered by this package's index). */
export const bevdetStudent = defineStudent<BEVDetConfig, BEVDet>({
  name: 'bevdet',
  version: PACKAGE_VERSION,
  task: 'det',
  package: PACKAGE_NAME,
  description: 'BEVDet: ResNet + FPN image encoder, LSS view transform with BEVPool, CustomResNet + FPN_LSS BEV encoder, CenterHead',
  configSchema: bevdetConfigSchema,
  presets: bevdetPresets,
  defaultPreset: 'small',
  provides: bevdetFeatures,
  create: (config, ctx) => new BEVDet(config, { rng: ctx.rng.fork('bevdet') }),
});
