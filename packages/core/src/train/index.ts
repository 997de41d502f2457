export * from './types.js';
export * from './safetensors.js';
export * from './adamw.js';
export * from './schedule.js';
export * from './clip.js';
export * from './ema.js';
export * from './checkpoint.js';
export * from './trainer.js';
