import { defineStudent } from '@bevzoo/core';
import { oftConfigSchema, oftFeatures, oftPresets, type OftConfig } from './config.js';
import { OftLite } from './model.js';
import pkg from '../package.json' with { type: 'json' };

/** The OFT-lite student plugin (registered as student "oft" when the package is imported). */
export const oftStudent = defineStudent<OftConfig, OftLite>({
  name: 'oft',
  version: pkg.version,
  task: 'det',
  package: pkg.name,
  description: 'OFT-lite (example plugin): ResNet image features, orthographic feature transform (cell centres at fixed heights projected into every camera, bilinear, camera-averaged), BEV ResNet blocks, CenterHead',
  configSchema: oftConfigSchema,
  presets: oftPresets,
  defaultPreset: 'small',
  provides: oftFeatures,
  create: (config, ctx) => new OftLite(config, { rng: ctx.rng.fork('oft') }),
});
