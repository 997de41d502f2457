/**
 * `bevzoo predict <model> [--preset p] [--checkpoint f] [--split val|train] --out <dir>`: a model's predictions on a
 * split, as the task's submission files — detection `results.json` in the nuScenes submission format, occupancy
 * one Occ3D `<token>.npz` per sample — without evaluating them (a split without labels works: nuScenes test with
 * `--dataroot ... --val-split test`). The weights: `--checkpoint` (a run's model.safetensors; its model, preset and
 * config are read from the file), else the weights the model's package ships for the preset.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createModel, createProgress, defaultPresetOf, getModelPlugin, parseSafetensors, runSettings, type CreatedModel, type TaskModel } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { createLoader, type Batch } from '@bevzoo/nuscenes';
import { type ParsedArgs, optStr, str, UsageError } from '../args.js';
import { describeDataset, prepareDataset, prepareVirtualPointsFor } from '../pipeline/dataset.js';
import { datasetChoice } from '../pipeline/options.js';
import { sensorsOf, TASK_EVALUATORS } from '../pipeline/tasks.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

export async function predictCommand(args: ParsedArgs): Promise<void> {
  const name = args.positionals[1];
  if (!name) throw new UsageError('usage: bevzoo predict <model> [--preset p] [--checkpoint f] [--split val|train] --out <dir>');
  const plugin = getModelPlugin(name);
  const out = resolve(str(args, 'out'));
  const engine = await initEngine({ log: () => {} });
  const ckpt = optStr(args, 'checkpoint');
  const created = await createTrainedModel(args, name);
  try {
    const data = await prepareDataset(datasetChoice(args, created.preset), log);
    const split = str(args, 'split', 'val');
    const tokens = split === 'train' ? data.train : data.val;
    const settings = runSettings(created.config);
    const d = settings.data;
    if (d.virtualPoints) await prepareVirtualPointsFor(data, tokens, d.sweeps, log);
    const loader = createLoader({
      nusc: data.nusc, sampleTokens: tokens, batchSize: settings.train.batchSize, imageSize: d.imageSize, sweeps: d.sweeps, points: d.points, withPrev: d.withPrev,
      virtualPoints: d.virtualPoints, augment: false, shuffle: false,
    });
    log(`bevzoo predict: ${plugin.kind} ${plugin.name} (${created.preset}, ${ckpt ?? 'packaged weights'}) on ${describeDataset(data)}, ${split} (${tokens.length} samples), backend ${engine.backend}${engine.kernels ? ` (${engine.kernels} kernels)` : ''}`);
    const bar = createProgress({ total: tokens.length, label: `predict ${plugin.name}`, unit: 'samples' });
    const line = await TASK_EVALUATORS[created.task].predict({
      model: created.model, batches: loader.epoch(0), data, tokens, outDir: out,
      meta: sensorsOf(plugin.kind, d), onBatch: (n) => bar.tick(n),
    }).finally(() => bar.done());
    process.stdout.write(`${line}\n`);
  } finally {
    created.model.dispose?.();
  }
}

/**
 * The trained model a command (`predict`, `export`) works on: `--checkpoint f` (a run's model.safetensors, whose
 * metadata gives the preset and the config) or the weights the model's package ships for the preset.
 */
export async function createTrainedModel(args: ParsedArgs, name: string): Promise<CreatedModel<TaskModel<Batch, unknown>>> {
  const plugin = getModelPlugin(name);
  const ckpt = optStr(args, 'checkpoint');
  let preset = optStr(args, 'preset');
  let overrides: Record<string, unknown> | undefined;
  if (ckpt) {
    const md = parseSafetensors(readFileSync(ckpt), ckpt).metadata;
    if (md.model && md.model !== plugin.name) throw new Error(`${ckpt}: its metadata "model" is ${md.model}, not ${plugin.name}`);
    preset ??= md.preset;
    if (md.preset && preset !== md.preset) throw new Error(`${ckpt}: its metadata "preset" is ${md.preset}, not ${preset} (drop --preset to use the file's)`);
    if (md.config) overrides = JSON.parse(md.config) as Record<string, unknown>;
  } else if (!plugin.checkpoints?.some((c) => c.preset === (preset ?? defaultPresetOf(plugin))))
    throw new Error(`${plugin.kind} ${plugin.name} ships no trained weights for preset ${preset ?? defaultPresetOf(plugin)}${plugin.checkpoints?.length ? ` (it does for ${plugin.checkpoints.map((c) => c.preset).join(', ')})` : ''}: pass --checkpoint <file> (a run's model.safetensors)`);
  return createModel<TaskModel<Batch, unknown>>(plugin.name, { kind: plugin.kind, preset, overrides, pretrained: ckpt ?? true });
}
