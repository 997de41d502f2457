/**
 * @bevzoo/teacher-occ-fusion — importing this module registers the `occ-fusion` teacher in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { occFusionTeacher } from './plugin.js';

export { occFusionTeacher, OccFusion, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { occFusionConfigSchema, occFusionPresets, occFusionLayout, occFusionFeatures, type OccFusionConfig, type OccFusionLayout } from './config.js';

register(occFusionTeacher);
