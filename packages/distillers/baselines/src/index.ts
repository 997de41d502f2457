/**
 * @bevzoo/distill-baselines — baseline distillers for detection. Importing the package registers the plugins
 * "feature-imitation" and "logit-imitation" in @bevzoo/core's registry.
 */
import { register } from '@bevzoo/core';
import { featureImitationPlugin } from './feature.js';
import { logitImitationPlugin } from './logit.js';

export {
  FEATURE_IMITATION_PRESETS,
  FeatureImitation,
  featureImitationConfigSchema,
  featureImitationPlugin,
  featureImitationRequires,
  type FeatureImitationConfig,
} from './feature.js';
export { LOGIT_IMITATION_PRESETS, LogitImitation, logitImitationConfigSchema, logitImitationPlugin, logitImitationRequires, type LogitImitationConfig } from './logit.js';
export { BaselineDistillError } from './errors.js';

register(featureImitationPlugin);
register(logitImitationPlugin);
