import { BevzooError } from '@bevzoo/core';

/** A DistillBEV problem: a feature of the wrong shape, a missing feature, a batch without boxes, a bad layer list. */
export class DistillBevError extends BevzooError {}
