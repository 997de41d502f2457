import { defineStudent } from '@bevzoo/core';
import { oftConfigSchema, oftFeatures, oftPresets, type OftConfig } from './config.js';
import { OftLite } from './model.js';

export const PACKAGE_NAME = 'bevzoo-student-oft';
export const PACKAGE_VERSION = '0.1.0';

/** The OFT-lite student plugin (registered as student "oft" when the package is imported). */
export const oftStudent = defineStudent<OftConfig, OftLite>({
  name: 'oft',
  version: PACKAGE_VERSION,
  task: 'det',
  package: PACKAGE_NAME,
  description: 'OFT-lite (example plugin): ResNet image features, orthographic feature transform (cell centres at fixed heights projected into every camera, bilinear, camera-averaged), BEV ResNet blocks, CenterHead',
  configSchema: oftConfigSchema,
  presets: oftPresets,
  defaultPreset: 'small',
  provides: oftFeatures,
  create: (config, ctx) => new OftLite(config, { rng: ctx.rng.fork('oft') }),
});
