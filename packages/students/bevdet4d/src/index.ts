/**
 * @bevzoo/student-bevdet4d — importing this module registers the `bevdet4d` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { bevdet4dStudent } from './plugin.js';

export { bevdet4dStudent, BEVDet4D, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { bevdet4dPresets, BEVDET4D_SWITCHES, type BEVDet4DConfig } from './config.js';

register(bevdet4dStudent);
