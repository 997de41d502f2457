import { BevzooError } from '@bevzoo/core';

/** A baseline distiller problem: a missing feature, a feature of the wrong shape, teacher and student heatmaps that do not match. */
export class BaselineDistillError extends BevzooError {}
