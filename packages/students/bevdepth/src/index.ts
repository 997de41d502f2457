/**
 * @bevzoo/student-bevdepth — importing this module registers the `bevdepth` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { bevdepthStudent } from './plugin.js';

export { bevdepthStudent, BEVDepth, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { bevdepthPresets, type BEVDepthConfig } from './config.js';

register(bevdepthStudent);
