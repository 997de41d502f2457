export * from './errors.js';
export * from './rng.js';
export * from './geometry.js';
export * from './features.js';
export * from './plugin.js';
export * from './registry.js';
export * from './config.js';
export * from './assemble.js';
export * from './progress.js';
export * from './model.js';
export * from './tasks.js';
export * from './zoo.js';
export * from './distillation.js';
export * from './train/index.js';
export * from './settings.js';
export * from './trace.js';
/** The zod that core's schemas are built with: plugins build their config schemas with it (no zod of their own). */
export { z } from 'zod';
