/**
 * Versions are independent (changesets with no fixed or linked groups): a change to one package releases that
 * package, and a package that only depends on it keeps its version while the range still holds.
 */
import assembleReleasePlan from '@changesets/assemble-release-plan';
import { read as readConfig } from '@changesets/config';
import readChangesets from '@changesets/read';
import { getPackages } from '@manypkg/get-packages';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const packages = await getPackages(root);
const config = await readConfig(root, packages);
const released = (name: string, type: 'patch' | 'minor') =>
  assembleReleasePlan([{ id: 'test', summary: 'test', releases: [{ name, type }] }], packages, config, undefined)
    .releases.filter((r) => r.type !== 'none')
    .map((r) => `${r.name}@${r.newVersion}`);

describe('changesets', () => {
  it('has no fixed or linked groups, and publishes public', () => {
    expect(config.fixed).toEqual([]);
    expect(config.linked).toEqual([]);
    expect(config.access).toBe('public');
  });

  it('releases a patch of one plugin alone', () => {
    expect(released('@bevzoo/student-bevdet', 'patch')).toEqual(['@bevzoo/student-bevdet@0.1.1']);
  });

  it('releases a patch of core alone: its dependents and peers keep their versions', () => {
    expect(released('@bevzoo/core', 'patch')).toEqual(['@bevzoo/core@0.1.1']);
  });

  it('has pending changesets that name workspace packages only', async () => {
    const names = new Set(packages.packages.map((p) => p.packageJson.name));
    for (const cs of await readChangesets(root)) for (const r of cs.releases) expect(names.has(r.name), `${cs.id}: ${r.name}`).toBe(true);
  });
});
