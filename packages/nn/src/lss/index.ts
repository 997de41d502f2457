export * from './frustum.js';
export * from './bevpool.js';
export * from './view_transform.js';
export * from './img_neck.js';
export * from './bev_encoder.js';
export * from './depth.js';
