/**
 * Time MVP's virtual-point preparation on a dataset: the synthetic masks (synthetic datasets only; idempotent), then
 * `prepareVirtualPoints` over every sample with `--sweeps` sweeps from an empty cache folder (`--keep` reuses what is
 * there), then the same call again (everything cached), then `loadFrame` of the first `--frames` samples with and
 * without virtual points. Prints counts and seconds.
 *
 *   npx tsx --conditions=@bevzoo/source packages/nuscenes/src/mvp/bench-virtual.ts --dataroot /tmp/data17/synth-small-seed0 [--version v1.0-synth] [--sweeps 9] [--frames 24] [--keep]
 */
import { rm } from 'node:fs/promises';
import { loadFrame } from '../frame.js';
import { openNuScenes } from '../reader.js';
import { synthesizeMasks } from './synth-masks.js';
import { prepareVirtualPoints, virtualPointsDir } from './virtual-cache.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
};
const dataroot = arg('dataroot', '');
if (!dataroot) throw new Error('usage: bench-virtual.ts --dataroot <folder> [--version v1.0-synth] [--sweeps 9] [--frames 24] [--keep]');
const version = arg('version', 'v1.0-synth'), sweeps = Number(arg('sweeps', '9')), frames = Number(arg('frames', '24'));
const nusc = await openNuScenes({ dataroot, version });
const samples = nusc.table('sample').map((s) => s.token);
const secs = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

if (version === 'v1.0-synth') {
  const t0 = performance.now();
  const m = await synthesizeMasks(nusc);
  console.log(`synthesizeMasks: ${m.written} images written, ${m.skipped} kept in ${secs(t0)} s`);
}
if (!process.argv.includes('--keep')) await rm(await virtualPointsDir(nusc), { recursive: true, force: true });
for (const pass of ['prepare', 'again (cached)']) {
  const cpu0 = process.cpuUsage();
  const r = await prepareVirtualPoints(nusc, { sampleTokens: samples, sweeps });
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `prepareVirtualPoints ${pass}: ${samples.length} samples, ${sweeps} sweeps → ${r.files} LiDAR files (${r.written} computed, ${r.skipped} cached; `
      + `${r.cameras} camera images, ${r.painted} painted and ${r.virtual} virtual points) in ${r.seconds.toFixed(1)} s `
      + `(CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`,
  );
}
for (const virtualPoints of frames > 0 ? [false, true] : []) {
  const t0 = performance.now();
  let points = 0;
  for (const s of samples.slice(0, frames)) points += (await loadFrame(nusc, s, { sweeps, cameras: false, virtualPoints })).lidar!.numPoints;
  console.log(`loadFrame ×${Math.min(frames, samples.length)} (${sweeps} sweeps, no cache) ${virtualPoints ? 'with' : 'without'} virtual points: ${secs(t0)} s, ${(points / Math.min(frames, samples.length)).toFixed(0)} points per sample`);
}
