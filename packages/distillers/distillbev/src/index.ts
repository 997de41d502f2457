/**
 * @bevzoo/distill-distillbev — the DistillBEV distiller. Importing the package registers the plugin
 * (distiller "distillbev") in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { distillBevPlugin } from './plugin.js';

export { distillBevPlugin } from './plugin.js';
export { DistillBev, distillBevRequires, resolveLayers, TEACHER_HEATMAP, type ResolvedLayer } from './distiller.js';
export { DISTILLBEV_ABLATION, DISTILLBEV_PRESETS, distillBevConfigSchema, layerSchema, type DistillBevConfig, type LayerConfig } from './config.js';
export { PreHeadAdapter, StageAdapter, ThreeLayer, type Adapter } from './adapters.js';
export { channelAttention, spatialAttention } from './attention.js';
export {
  boxAt,
  componentSizes,
  falsePositives,
  foreground,
  gtHeatmapMax,
  layerGrid,
  regionWeights,
  resampleMax,
  uniformWeights,
  type CellPoint,
  type Foreground,
  type FpScaling,
  type LayerGrid,
  type RegionWeights,
  type Scaling,
} from './regions.js';
export { inheritHead } from './inherit.js';
export { DistillBevError } from './errors.js';
export type { DetBatch, DetBoxes } from './batch.js';

register(distillBevPlugin);
