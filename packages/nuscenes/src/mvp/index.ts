/** MVP (multimodal virtual points): 2-D instance masks, their synthesis for the synthetic dataset, LiDAR-return statistics. */
export * from './masks.js';
export * from './synth-masks.js';
export * from './stats.js';
export * from './virtual.js';
export * from './virtual-cache.js';
export { LIDAR_POINT_FEATURES, MVP_POINT_FEATURES, realPoints } from '@bevzoo/core';
