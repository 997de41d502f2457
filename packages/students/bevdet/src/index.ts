/**
 * @bevzoo/student-bevdet — importing this module registers the `bevdet` student in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { bevdetStudent } from './plugin.js';

export { bevdetStudent, IMAGE_BRANCH_PREFIXES } from './plugin.js';
export { bevdetConfigSchema, bevdetPresets, bevdetLayout, bevdetFeatures, type BEVDetConfig, type BEVDetLayout } from './config.js';
export { BEVDet, BEVDetInputError, bevdetHeadConfig, type BEVDetBatch } from './model.js';

register(bevdetStudent);
