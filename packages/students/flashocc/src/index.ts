/**
 * @bevzoo/student-flashocc — importing this module registers the `flashocc` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { flashoccStudent } from './plugin.js';

export { flashoccStudent, FlashOcc, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { flashoccConfigSchema, flashoccPresets, flashoccLayout, flashoccFeatures, type FlashOccConfig, type FlashOccLayout } from './config.js';

register(flashoccStudent);
