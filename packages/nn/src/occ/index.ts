export * from './occ3d.js';
export * from './labels.js';
export * from './loss.js';
export * from './heads.js';
export * from './occ-config.js';
export * from './occ-model.js';
export * from './fusion.js';
export * from './render.js';
