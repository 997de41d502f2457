export * from './config.js';
export * from './attention.js';
export * from './detector.js';
