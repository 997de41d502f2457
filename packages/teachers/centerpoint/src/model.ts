/**
 * CenterPoint-pillar (mmdet3d `CenterPoint` with the 02pillar config): multi-sweep points (x, y, z, intensity, Δt)
 * → pillars (plain JS, outside the tape) → PillarFeatureNet → PointPillarsScatter → SECOND → SECONDFPN → CenterHead.
 * The detector lives in @bevzoo/nn (`CenterPointPillar`, `shufflePoints`; MVP's teacher uses it too) and is
 * re-exported here.
 */
import type { Batch } from '@bevzoo/nuscenes';

export { CenterPointPillar, shufflePoints } from '@bevzoo/nn';

/** Features per LiDAR point: x, y, z, intensity, Δt (the loader's layout). */
export const POINT_FEATURES = 5;

/** What the model reads from a batch: per-sample points and (for the loss) GT boxes. */
export type CenterPointBatch = Pick<Batch, 'points' | 'boxes'> & Partial<Batch>;
