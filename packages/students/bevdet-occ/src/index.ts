/**
 * @bevzoo/student-bevdet-occ — importing this module registers the `bevdet-occ` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { bevdetOccStudent } from './plugin.js';

export { bevdetOccStudent, BEVDetOcc, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { bevdetOccConfigSchema, bevdetOccPresets, bevdetOccLayout, bevdetOccFeatures, type BEVDetOccConfig, type BEVDetOccLayout } from './config.js';

register(bevdetOccStudent);
