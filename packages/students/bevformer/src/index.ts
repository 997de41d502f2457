/**
 * @bevzoo/student-bevformer — importing this module registers the `bevformer` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { bevformerStudent } from './plugin.js';

export { bevformerStudent, BEVFormer, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { bevformerPresets, type BEVFormerConfig } from './config.js';

register(bevformerStudent);
