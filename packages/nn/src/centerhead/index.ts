export * from './config.js';
export * from './targets.js';
export * from './loss.js';
export * from './nms.js';
export * from './decode.js';
export * from './head.js';
export * from './fused.js';
export * from './task.js';
