/**
 * How large is each DistillBEV term at the start of training, against the student's CenterHead loss?
 * Features are what freshly initialised BN+ReLU layers give (ReLU of N(0, 1)), the adapters are at their initial
 * weights, ~25 nuScenes-like boxes per sample, a teacher heatmap that fires on the objects plus a few false
 * positives. Prints one row per (grid, teacher channels, preset).
 *
 *   npx tsx --conditions=@bevzoo/source packages/distillers/distillbev/scripts/loss-magnitudes.ts
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { bevGrid, createRng, resolveConfig, type FeatureMap } from '@bevzoo/core';
import { CenterHead, type GtBox } from '@bevzoo/nn';
import { distillBevPlugin, gtHeatmapMax, layerGrid, type DetBatch, type DistillBevConfig } from '../src/index.js';

const rng = createRng(7);
const SIZES: [number, number, number][] = [[1.9, 4.6, 1.7], [2.5, 6.5, 2.8], [2.9, 11, 3.5], [2.9, 12, 3.9], [2.8, 6.4, 3.2], [0.7, 0.7, 1.8], [0.8, 2.1, 1.5], [0.6, 1.7, 1.3], [0.4, 0.4, 1.1], [2.5, 0.5, 1.0]];
const MIX = [0.45, 0.08, 0.02, 0.02, 0.02, 0.2, 0.03, 0.03, 0.08, 0.07];

function sampleBoxes(n: number): { det: DetBatch['boxes'][number]; gt: GtBox[] } {
  const gt: GtBox[] = [];
  for (let i = 0; i < n; i++) {
    const label = rng.weighted(MIX);
    const [w, l, h] = SIZES[label]!;
    gt.push({ center: [rng.uniform(-48, 48), rng.uniform(-48, 48), 0], size: [w, l, h], yaw: rng.uniform(-Math.PI, Math.PI), label });
  }
  return {
    det: { count: n, center: Float32Array.from(gt.flatMap((b) => b.center)), size: Float32Array.from(gt.flatMap((b) => b.size)), yaw: Float32Array.from(gt.map((b) => b.yaw)), label: Int32Array.from(gt.map((b) => b.label)) },
    gt,
  };
}

const reluNormal = (shape: number[]) => tf.relu(tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal(0, 1)), shape));

const B = 2;
const range: [number, number, number, number] = [-51.2, -51.2, 51.2, 51.2];
const f = (x: number) => x.toFixed(2).padStart(8);

/** The distillation terms at initialisation for one shape and preset. */
function distillRow(cells: number, ct: number, cs: number, preset: string): number {
  const grid = bevGrid(range, cells);
  const teacher: FeatureMap = { pre_head: { kind: 'bev', channels: ct, grid }, heatmap: { kind: 'heatmap', channels: 10, grid } };
  const student: FeatureMap = { pre_head: { kind: 'bev', channels: cs, grid } };
  const samples = Array.from({ length: B }, () => sampleBoxes(25));
  const batch: DetBatch = { boxes: samples.map((s) => s.det) };
  // Teacher heatmap: the GT Gaussians (a good teacher) plus 6 false-positive cells per sample.
  const lg = layerGrid(grid);
  const hm = new Float32Array(B * cells * cells * 10).fill(-9);
  samples.forEach((s, b) => {
    const g = gtHeatmapMax(s.det, lg, { minRadius: 2, overlap: 0.1 });
    for (let i = 0; i < g.length; i++) hm[(b * g.length + i) * 10] = Math.log((g[i]! + 1e-4) / (1 - g[i]! + 1e-4));
    for (let k = 0; k < 6; k++) hm[(b * g.length + rng.int(g.length)) * 10 + 1] = 1;
  });
  const ft = reluNormal([B, cells, cells, ct]), fs = reluNormal([B, cells, cells, cs]), th = tf.tensor4d(hm, [B, cells, cells, 10]);
  const cfg = resolveConfig<DistillBevConfig>(distillBevPlugin, { preset }).config;
  const d = distillBevPlugin.create(cfg, { rng: createRng(2), teacher, student });
  const out = d.loss({ teacher: { features: { pre_head: ft, heatmap: th }, outputs: {} }, student: { features: { pre_head: fs }, outputs: {} }, batch });
  const v = (k: string) => out.parts[`distill.l0.${k}`]?.dataSync()[0] ?? 0;
  const total = out.total.dataSync()[0]!;
  console.log(`${String(cells).padStart(5)} ${String(ct).padStart(4)} ${String(cs).padStart(4)}  ${preset.padEnd(9)} ${f(v('fg'))} ${f(v('tn'))} ${f(v('fp'))} ${f(v('att'))} ${f(total)}`);
  tf.dispose([ft, fs, th, out.total, ...Object.values(out.parts)]);
  d.dispose();
  return total;
}

console.log('pre-head layer, B = 2, 25 boxes per sample, at initialisation');
console.log('cells  C_T  C_S  preset          fg       tn       fp      att  distill');
for (const [cells, ct, cs, preset] of [
  [64, 64, 64, 'small'],
  [64, 128, 64, 'small'],
  [64, 64, 64, 'reference'],
  [128, 384, 256, 'reference'],
] as const)
  distillRow(cells, ct, cs, preset);

// The student's CenterHead loss at initialisation on the same kind of feature (64² cells, 64 channels).
{
  const cells = 64, cs = 64;
  const samples = Array.from({ length: B }, () => sampleBoxes(25));
  const fs = reluNormal([B, cells, cells, cs]);
  const head = new CenterHead({ inChannels: cs, grid: { range, cellSize: [102.4 / cells, 102.4 / cells], stride: 1 } }, { rng: createRng(1) });
  const outs = head.forward(fs as tf.Tensor4D);
  const task = head.loss(outs, head.targets(samples.map((s) => s.gt)));
  const hmLoss = Object.entries(task.parts).filter(([k]) => k.endsWith('heatmap')).reduce((a, [, v]) => a + v.dataSync()[0]!, 0);
  console.log(`CenterHead loss at initialisation (64², 64 ch): total ${task.total.dataSync()[0]!.toFixed(1)}, of which heatmap ${hmLoss.toFixed(1)}`);
}
