import { BevzooError } from '@bevzoo/core';

/** A RadOcc problem: a missing or mis-shaped feature, a batch without what a term reads (points, segments, labels). */
export class RadOccError extends BevzooError {}
