/**
 * @bevzoo/distill-radocc — the RadOcc distiller (rendering-assisted occupancy distillation). Importing the package
 * registers the plugin (distiller "radocc", task occ) in @bevzoo/core's registry. The renderer itself (rays from
 * projected LiDAR, trilinear sampling plans, `renderOcc`) is generic and lives in @bevzoo/nn.
 */
import { register } from '@bevzoo/core';
import { radOccPlugin } from './plugin.js';

export { radOccPlugin } from './plugin.js';
export { RadOcc, radOccData, radOccRequires, type RadOccTiming, type RayCache } from './distiller.js';
export { RADOCC_ABLATION, RADOCC_PRESETS, radOccConfigSchema, type RadOccConfig } from './config.js';
export { BevAdapter, VoxelAdapter, featureAdapter, type FeatureAdapter } from './adapters.js';
export { affinity, affinityLoss, depthValueLoss, klLoss, segmentPool, softKl, type SegmentPool } from './losses.js';
export { RadOccError } from './errors.js';
export type { OccDistillBatch } from './batch.js';

register(radOccPlugin);
