/**
 * @bevzoo/teacher-mvp — the MVP (Multimodal Virtual Point) teacher: CenterPoint-pillar (from @bevzoo/nn) on LiDAR
 * points painted by 2-D instance masks plus virtual points. Importing this module registers `teacher:mvp` in the
 * @bevzoo/core registry.
 */
import { register } from '@bevzoo/core';
import { mvpTeacher } from './plugin.js';

export * from './config.js';
export * from './plugin.js';

register(mvpTeacher);
