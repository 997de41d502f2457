/**
 * bevzoo-student-oft — importing this module registers the `oft` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { oftStudent } from './plugin.js';

export { oftStudent } from './plugin.js';
export { oftConfigSchema, oftPresets, oftLayout, oftFeatures, type OftConfig, type OftLayout } from './config.js';
export { OftLite, OftInputError, type OftBatch } from './model.js';
export { buildOftPlan, cameraProjection, OftPlanCache, orthographicTransform, project, type OftGeometry, type OftPlan, type OftPlanSpec } from './oft.js';

register(oftStudent);
