/**
 * BEVDet's configuration: the LSS detector schema of @bevzoo/nn, whose defaults are the published configuration
 * (bevdet-r50: ResNet-50 C4/C5 → FPN 512 → LSS (59 depth bins 1–60 m, 64 context channels) → BEV 128×128 at 0.8 m
 * → CustomResNet 128/256/512 + FPN_LSS 256 → CenterHead), and presets (data) that shrink widths, depths and
 * resolutions.
 */
import { lssDetectorFeatures, lssDetectorLayout, lssDetectorPresets, lssDetectorSchema, type LSSDetectorConfig, type LSSDetectorLayout } from '@bevzoo/nn';

export type BEVDetConfig = LSSDetectorConfig;
export type BEVDetLayout = LSSDetectorLayout;
/** The config schema (the checks of `bevdetLayout` included). */
export const bevdetConfigSchema = lssDetectorSchema;
/** Grid cells, strides, the LSS grid and derived channels of a config (throws a ConfigError naming the field). */
export const bevdetLayout = lssDetectorLayout;
/** The features BEVDet provides to distillers: `stage0..2`, `pre_head`, `heatmap` (see `lssDetectorFeatures`). */
export const bevdetFeatures = lssDetectorFeatures;

/** Presets: configuration only (the defaults are the `paper` configuration); @bevzoo/nn's LSS sizes. */
export const bevdetPresets = lssDetectorPresets;
