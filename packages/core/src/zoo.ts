/**
 * Model creation and the model zoo, as timm's `create_model` / `list_models`: a registered teacher or student by
 * name, a preset and overrides, and the weights its package ships.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { defaultPresetOf, resolveConfig } from './config.js';
import { RegistryError } from './errors.js';
import type { FeatureMap } from './features.js';
import { isTaskModel, type TaskModel } from './model.js';
import type { InitWeights, ModelPlugin, PackagedCheckpoint, Task } from './plugin.js';
import { get, has, list } from './registry.js';
import { createRng, type Rng } from './rng.js';
import { CheckpointError } from './train/types.js';
import { parseSafetensors, readSafetensors } from './train/safetensors.js';

export interface CreateModelOptions {
  /** 'teacher' or 'student' when both kinds register the name (also: a name of the form `teacher:centerpoint`). */
  kind?: 'teacher' | 'student';
  /** Default: the plugin's default preset. */
  preset?: string;
  /** Config values over the preset (dotted paths as nested objects). */
  overrides?: Record<string, unknown>;
  /**
   * true: load the weights the package ships for the preset (an error where it ships none, or they do not fit);
   * a path: load that safetensors file (a checkpoint written from `model.stateDict()`). Loading is strict.
   */
  pretrained?: boolean | string;
  /** Load the plugin's starting weights for the preset (`initWeights`, partial) when they fit; default false. */
  initWeights?: boolean;
  /** The model's generator (default createRng(seed ?? 0)). */
  rng?: Rng;
  seed?: number;
}

/** Weights loaded into a created model. */
export interface LoadedWeights {
  source: 'packaged' | 'file' | 'init';
  file: string;
  /** Tensors copied into the model. */
  tensors: number;
  description: string;
  /** The file's safetensors metadata (config, data, train_steps, ...). */
  metadata: Record<string, string>;
  /** The declaration, for packaged weights. */
  checkpoint?: PackagedCheckpoint;
}

/** A created model with what it was made from. */
export interface CreatedModel<M extends TaskModel = TaskModel> {
  model: M;
  plugin: ModelPlugin;
  kind: 'teacher' | 'student';
  name: string;
  task: Task;
  preset: string;
  overrides?: Record<string, unknown>;
  config: any;
  features: FeatureMap;
  /** Weights loaded: packaged or a file (`pretrained`), and/or the starting weights (`initWeights`). */
  weights: LoadedWeights[];
  /** What happened that a log should say (e.g. starting weights that did not fit this config). */
  notes: string[];
}

/** Resolve a teacher or student plugin by name. */
export function getModelPlugin(name: string, kind?: 'teacher' | 'student'): ModelPlugin {
  const m = /^(teacher|student):(.+)$/.exec(name);
  if (m) return get(m[1] as 'teacher' | 'student', m[2]!);
  if (kind) return get(kind, name);
  const kinds = (['teacher', 'student'] as const).filter((k) => has(k, name));
  if (kinds.length === 1) return get(kinds[0]!, name);
  if (kinds.length === 2) throw new RegistryError(`createModel: "${name}" is registered as a teacher and as a student; pass { kind } or "teacher:${name}" / "student:${name}"`, { name });
  const known = [...list('teacher'), ...list('student')].map((p) => `${p.kind}:${p.name}`);
  throw new RegistryError(`createModel: no teacher or student named "${name}" is registered; registered: ${known.join(', ') || '(none)'}`, { name, known });
}

/** The packaged checkpoint a plugin declares for a preset, or undefined. */
export function packagedCheckpointOf(plugin: ModelPlugin, preset: string): PackagedCheckpoint | undefined {
  return plugin.checkpoints?.find((c) => c.preset === preset);
}

/** Load a safetensors state dict into a model; returns the file's metadata and the number of tensors copied. */
export async function loadWeightsFile(model: TaskModel, file: string, opts: { strict?: boolean; prefixes?: readonly string[] } = {}): Promise<{ metadata: Record<string, string>; tensors: number }> {
  if (!existsSync(file)) throw new CheckpointError(`${file}: no such weights file`, { file });
  const { tensors, metadata } = await readSafetensors(file);
  const picked = opts.prefixes ? Object.fromEntries(Object.entries(tensors).filter(([k]) => opts.prefixes!.some((p) => k.startsWith(p)))) : tensors;
  try {
    model.loadStateDict(picked, { strict: opts.strict ?? true });
  } catch (e) {
    throw new CheckpointError(`${file}: the weights do not fit the model: ${(e as Error).message}`, { file });
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return { metadata, tensors: Object.keys(picked).length };
}

async function loadInit(model: TaskModel, init: InitWeights, notes: string[], name: string): Promise<LoadedWeights | null> {
  if (!existsSync(init.file)) {
    notes.push(`${name}: the starting weights ${init.file} are missing; training from scratch`);
    return null;
  }
  try {
    const r = await loadWeightsFile(model, init.file, { strict: false, prefixes: init.prefixes });
    notes.push(`${name}: ${init.prefixes.join(', ')} start from ${init.file} (${r.tensors} tensors: ${init.description})`);
    return { source: 'init', file: init.file, tensors: r.tensors, description: init.description, metadata: r.metadata };
  } catch (e) {
    notes.push(`${name}: the starting weights ${init.file} do not fit this config (${(e as Error).message.slice(0, 200)}); training from scratch`);
    return null;
  }
}

/**
 * Build a registered teacher or student: defaults ← preset ← overrides, validated by its schema; with `pretrained`,
 * the weights its package ships for the preset (or a given file); with `initWeights`, its starting weights.
 */
export async function createModel<M extends TaskModel = TaskModel>(name: string, opts: CreateModelOptions = {}): Promise<CreatedModel<M>> {
  const plugin = getModelPlugin(name, opts.kind);
  const { config, preset } = resolveConfig(plugin, { preset: opts.preset, overrides: opts.overrides });
  const model = plugin.create(config, { rng: opts.rng ?? createRng(opts.seed ?? 0) });
  if (!isTaskModel(model)) throw new RegistryError(`createModel: ${plugin.kind} "${plugin.name}" (${plugin.package}) create() returned no task model (forward, loss, predict)`, { name });
  const created: CreatedModel<M> = {
    model: model as M, plugin, kind: plugin.kind, name: plugin.name, task: plugin.task, preset, overrides: opts.overrides, config,
    features: plugin.provides(config), weights: [], notes: [],
  };
  try {
    if (opts.initWeights) {
      const init = plugin.initWeights?.find((w) => w.preset === preset);
      const w = init ? await loadInit(created.model, init, created.notes, plugin.name) : null;
      if (w) created.weights.push(w);
    }
    if (opts.pretrained) {
      const ck = opts.pretrained === true ? packagedCheckpointOf(plugin, preset) : undefined;
      if (opts.pretrained === true && !ck)
        throw new CheckpointError(`createModel: ${plugin.kind} "${plugin.name}" ships no weights for preset "${preset}"; packaged: ${plugin.checkpoints?.map((c) => c.preset).join(', ') || '(none)'}`, { name, preset });
      const file = ck ? ck.file : (opts.pretrained as string);
      const r = await loadWeightsFile(created.model, file, { strict: true });
      created.weights.push({ source: ck ? 'packaged' : 'file', file, tensors: r.tensors, description: ck ? `packaged ${preset} weights (${ck.command})` : 'weights file', metadata: r.metadata, checkpoint: ck });
    }
  } catch (e) {
    created.model.dispose();
    throw e;
  }
  return created;
}

/** Whether a plugin's packaged checkpoint can stand in for training a model of this config on this data, and why not. */
export function matchPackagedCheckpoint(plugin: ModelPlugin, preset: string, config: unknown, dataId: string): { checkpoint: PackagedCheckpoint; metadata: Record<string, string> } | { reason: string } {
  const ck = packagedCheckpointOf(plugin, preset);
  if (!ck) return { reason: `${plugin.kind} ${plugin.name} ships no weights for preset ${preset}` };
  const what = `${plugin.kind} ${plugin.name}: the packaged checkpoint ${ck.file}`;
  if (!existsSync(ck.file)) return { reason: `${what} is missing` };
  const { metadata } = parseSafetensors(readFileSync(ck.file), ck.file);
  if (metadata.config !== JSON.stringify(config)) return { reason: `${what} was trained with another config (overrides or a changed preset)` };
  if (metadata.data !== dataId) return { reason: `${what} was trained on "${metadata.data ?? 'unknown data'}", this run uses "${dataId}"` };
  return { checkpoint: ck, metadata };
}

/** One entry of the model zoo. */
export interface ModelInfo {
  name: string;
  kind: 'teacher' | 'student';
  task: Task;
  package: string;
  version: string;
  description: string;
  presets: string[];
  defaultPreset: string;
  /** Packaged trained weights: preset, file, data, metrics, command. */
  checkpoints: PackagedCheckpoint[];
  /** Packaged starting weights (partial). */
  initWeights: InitWeights[];
}

/** Every registered teacher and student, with presets and the weights its package ships (the model zoo). */
export function listModels(filter: { task?: Task; kind?: 'teacher' | 'student' } = {}): ModelInfo[] {
  const models = [...list('teacher'), ...list('student')] as ModelPlugin[];
  return models
    .filter((p) => (!filter.task || p.task === filter.task) && (!filter.kind || p.kind === filter.kind))
    .map((p) => ({
      name: p.name, kind: p.kind, task: p.task, package: p.package, version: p.version, description: p.description,
      presets: Object.keys(p.presets), defaultPreset: defaultPresetOf(p),
      checkpoints: [...(p.checkpoints ?? [])], initWeights: [...(p.initWeights ?? [])],
    }));
}
