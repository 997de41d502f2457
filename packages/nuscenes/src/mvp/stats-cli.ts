/**
 * Prints the LiDAR-return statistics of a dataset (lidarReturnStats) and, with `--masks`, what the simulated 2-D
 * segmenter of synthesizeMasks does to its instances (recall, confusion and mean scores by size, distance, visible
 * fraction and class; in memory, nothing is written). Figures of the README's "2-D instance masks" section.
 *
 *   npx tsx packages/nuscenes/src/mvp/stats-cli.ts <dataroot> [--version v1.0-synth] [--split <name>] [--min-points 5] [--masks] [--seed 0]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openNuScenes } from '../reader.js';
import { readSegmentIds, segmentPathFor } from '../synth/index.js';
import { formatLidarReturnStats, lidarReturnStats } from './stats.js';
import { resolveSynthMaskOptions, synthesizeImageMasks, synthImageInstances, type InstanceDecision } from './synth-masks.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const dataroot = argv[0];
if (!dataroot || dataroot.startsWith('--')) {
  console.error('usage: stats-cli.ts <dataroot> [--version v1.0-synth] [--split <name>] [--min-points 5] [--masks] [--seed 0]');
  process.exit(2);
}
const nusc = await openNuScenes({ dataroot, version: opt('version') ?? 'v1.0-synth' });
const split = opt('split');
const samples = split ? nusc.sampleTokensForSplit(split) : nusc.table('sample').map((s) => s.token);
console.log(formatLidarReturnStats(lidarReturnStats(nusc, samples, { minPoints: Number(opt('min-points') ?? 5) })));

if (argv.includes('--masks')) {
  const o = resolveSynthMaskOptions({ seed: Number(opt('seed') ?? 0) });
  const wanted = new Set(samples);
  const decisions: InstanceDecision[] = [];
  let width = 0;
  for (const sd of nusc.table('sample_data')) {
    if (!sd.is_key_frame || sd.sensor_modality !== 'camera' || !wanted.has(sd.sample_token)) continue;
    const seg = readSegmentIds(readFileSync(join(nusc.dataroot, segmentPathFor(sd.filename))), segmentPathFor(sd.filename));
    width = seg.width;
    synthesizeImageMasks(seg, synthImageInstances(nusc, sd.token), sd.token, o, undefined, (d) => decisions.push(d));
  }
  const scale = (o.referenceWidth / width) ** 2;
  const groups = new Map<string, InstanceDecision[]>([['all', decisions]]);
  const add = (key: string, d: InstanceDecision) => groups.set(key, [...(groups.get(key) ?? []), d]);
  for (const d of decisions) {
    const size = d.area * scale >= 1024 ? 'large (≥ 32² px)' : 'small (< 32² px)';
    add(`${size}, ${d.distance < 20 ? '< 20 m' : d.distance < 40 ? '20–40 m' : '≥ 40 m'}`, d);
    add(`visible ${d.visibleFraction >= 0.7 ? '≥ 0.7' : d.visibleFraction >= 0.4 ? '0.4–0.7' : '< 0.4'}`, d);
    add(`class ${d.cls}`, d);
  }
  const mean = (a: number[]) => (a.length ? (a.reduce((x, y) => x + y, 0) / a.length).toFixed(2) : '–');
  console.log(`\nSimulated segmenter (seed ${o.seed}; areas at ${o.referenceWidth} px image width)\n`);
  console.log('| instances | count | recall | confused | mean score (right class) | mean score (confused) |\n| --- | --- | --- | --- | --- | --- |');
  const rank = (k: string) => (k === 'all' ? 0 : k.startsWith('large') ? 1 : k.startsWith('small') ? 2 : k.startsWith('visible') ? 3 : 4);
  for (const [k, v] of [...groups].sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]))) {
    const kept = v.filter((d) => !d.missed), conf = kept.filter((d) => d.label !== d.cls);
    const pct = (n: number, t: number) => (t ? `${((100 * n) / t).toFixed(1)} %` : '–');
    console.log(`| ${k} | ${v.length} | ${pct(kept.length, v.length)} | ${pct(conf.length, kept.length)} | ${mean(kept.filter((d) => d.label === d.cls).map((d) => d.score!))} | ${mean(conf.map((d) => d.score!))} |`);
  }
}
