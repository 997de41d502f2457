export * from './frustum.js';
export * from './bevpool.js';
export * from './view-transform.js';
export * from './img-neck.js';
export * from './bev-encoder.js';
export * from './depth.js';
export * from './depth-net.js';
export * from './temporal.js';
