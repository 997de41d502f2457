/**
 * The packaged weights stay usable: every checkpoint a teacher or student package ships matches its preset's config
 * as the runner resolves it today (the runner compares the config recorded in the file with the resolved one and
 * trains instead where they differ, so a changed default would silently make the main job retrain its teachers).
 */
import { describe, expect, it } from 'vitest';
import { getModelPlugin, listModels, matchPackagedCheckpoint, resolveConfig } from '@bevzoo/core';
import '@bevzoo/teacher-centerpoint';
import '@bevzoo/teacher-mvp';
import '@bevzoo/teacher-occ-fusion';

describe('packaged checkpoints', () => {
  it("match their preset's resolved config and the data they name", () => {
    const shipped = listModels().flatMap((m) => m.checkpoints.map((c) => ({ m, c })));
    expect(shipped.map(({ m, c }) => `${m.name}/${c.preset}`).sort()).toEqual(['centerpoint/small', 'mvp/small', 'occ-fusion/small']);
    for (const { m, c } of shipped) {
      const plugin = getModelPlugin(m.name, m.kind);
      const { config } = resolveConfig(plugin, { preset: c.preset });
      const r = matchPackagedCheckpoint(plugin, c.preset, config, c.data);
      expect('checkpoint' in r ? 'matches' : r.reason, `${m.name}/${c.preset}`).toBe('matches');
    }
  });
});
