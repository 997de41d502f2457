export * from './lss-config.js';
export * from './lss-detector.js';
export * from './rig-batch.js';
export * from './lss-presets.js';
export * from './camera-branch.js';
export * from './pillar-centerpoint-config.js';
export * from './pillar-centerpoint.js';
