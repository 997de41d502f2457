/**
 * @bevzoo/teacher-centerpoint — the CenterPoint-pillar LiDAR teacher. Importing this module registers
 * `teacher:centerpoint` in the @bevzoo/core registry.
 */
import { register } from '@bevzoo/core';
import { centerPointTeacher } from './plugin.js';

export * from './errors.js';
export * from './config.js';
export * from './model.js';
export * from './plugin.js';

register(centerPointTeacher);
