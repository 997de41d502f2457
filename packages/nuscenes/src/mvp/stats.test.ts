import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from '../errors.js';
import { openNuScenes, type NuScenes } from '../reader.js';
import { DETECTION_CVPR_2019 } from '../tables.js';
import { buildFixture, type Fixture } from '../test-fixture.js';
import { formatLidarReturnStats, lidarReturnStats } from './stats.js';

let fx: Fixture, nusc: NuScenes;

beforeAll(async () => {
  fx = await buildFixture();
  nusc = await openNuScenes({ dataroot: fx.dataroot, version: fx.version });
});
afterAll(() => rmSync(fx.dataroot, { recursive: true, force: true }));

/** xy distance of an annotation from its sample's keyframe LiDAR ego pose, from the tables. */
function egoDist(annToken: string): number {
  const a = nusc.get('sample_annotation', annToken);
  const sd = nusc.table('sample_data').find((r) => r.sample_token === a.sample_token && r.is_key_frame && r.filename.includes('LIDAR_TOP'))!;
  const e = nusc.get('ego_pose', sd.ego_pose_token).translation;
  return Math.hypot(a.translation[0] - e[0], a.translation[1] - e[1]);
}

describe('lidarReturnStats', () => {
  it('counts detection-class boxes within range, those under minPoints and those without points', () => {
    // Fixture: a car in every sample (points per keyframe known), a pedestrian without LiDAR points, an animal (no detection class).
    const carPts = fx.carPointsPerKeyframe;
    expect(fx.car.every((t) => egoDist(t) < 50) && egoDist(fx.pedestrian) < 40).toBe(true);
    for (const minPoints of [5, Math.max(...carPts) + 1, Math.min(...carPts)]) {
      const st = lidarReturnStats(nusc, fx.samples, { minPoints });
      const sparseCars = carPts.filter((n) => n < minPoints).length;
      expect(st.total).toEqual({ boxes: 4, sparse: sparseCars + 1, empty: 1 });
      expect(st.perClass.car).toEqual({ boxes: 3, sparse: sparseCars, empty: 0 });
      expect(st.perClass.pedestrian).toEqual({ boxes: 1, sparse: 1, empty: 1 });
      expect(st.perClass.bus.boxes).toBe(0);
      expect(st.perBand.reduce((s, b) => s + b.counts.boxes, 0)).toBe(4);
      const band = (d: number) => st.perBand.find((b) => d >= b.lo && d < b.hi)!;
      expect(band(egoDist(fx.pedestrian)).counts.empty).toBe(1);
    }
    const st = lidarReturnStats(nusc, fx.samples);
    expect(st.classRangeSource).toMatch(/detection_cvpr_2019/);
    expect(st.classRange).toEqual(DETECTION_CVPR_2019.class_range);
    expect(st.perBand.map((b) => [b.lo, b.hi])).toEqual([[0, 20], [20, 30], [30, 40], [40, Infinity]]);
    const table = formatLidarReturnStats(st);
    expect(table).toContain('| all | 4 |');
    expect(table).toContain('| pedestrian (< 40 m) | 1 | 100.0 % | 100.0 % |');
    expect(table).toContain('| bus (< 50 m) | 0 | – | – |');
  });

  it("takes the class ranges from the dataset's detection_config.json, and names a bad field", () => {
    const file = join(nusc.tableRoot, 'detection_config.json');
    const ranges = { ...DETECTION_CVPR_2019.class_range, car: Math.min(...fx.car.map(egoDist)) - 0.01 };
    writeFileSync(file, JSON.stringify({ ...DETECTION_CVPR_2019, class_range: ranges }));
    try {
      const st = lidarReturnStats(nusc, fx.samples);
      expect(st.classRangeSource).toBe(file);
      expect(st.perClass.car.boxes).toBe(0);
      expect(st.total.boxes).toBe(1);
      // Given ranges win over the file.
      expect(lidarReturnStats(nusc, fx.samples, { classRange: { ...DETECTION_CVPR_2019.class_range } }).total.boxes).toBe(4);
      writeFileSync(file, JSON.stringify({ class_range: { ...ranges, barrier: 'far' } }));
      const err = (() => { try { lidarReturnStats(nusc, fx.samples); } catch (e) { return e; } })() as NuScenesError;
      expect(err).toBeInstanceOf(NuScenesError);
      expect(err.field).toBe('class_range.barrier');
      expect(err.message).toContain(file);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
