/**
 * Training checkpoints as one safetensors file:
 * - the model state dict under its own names (so the file loads as a plain state dict),
 * - the optimizer moments under `optimizer.exp_avg.<param>` / `optimizer.exp_avg_sq.<param>`,
 * - the EMA averages (if any) under `ema.<param>`,
 * - `__metadata__`: format, trainer (step, epoch, seed, rng state, time), optimizer (step count, per-parameter steps,
 *   hyper-parameters), ema (decay, updates) and config, each a JSON string.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AdamW, AdamWStateInfo } from './adamw.js';
import type { Ema } from './ema.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { CheckpointError, type TrainableModel } from './types.js';

export const CHECKPOINT_FORMAT = 'bevzoo.checkpoint.v1';
const OPT_PREFIX = 'optimizer.';
const EMA_PREFIX = 'ema.';

/** Where the trainer stands; stored in `__metadata__.trainer`. */
export interface TrainerMeta {
  /** Optimizer updates completed. */
  step: number;
  /** Epoch of the next batch and batches already taken from it. */
  epoch: number;
  stepInEpoch: number;
  seed: number;
  /** The per-step generators are createRng(seed).fork(step): (seed, step) is the whole generator state. */
  rng: { seed: number; step: number };
  /** Seconds trained so far (over resumes). */
  elapsed: number;
  /** Loss of the run's first and latest step (absent in checkpoints written before they were kept, or before any step). */
  firstLoss?: number;
  lastLoss?: number;
}

export interface CheckpointMeta {
  format: string;
  trainer: TrainerMeta | null;
  optimizer: AdamWStateInfo | null;
  ema: { decay: number; updates: number } | null;
  config: unknown;
  /** Every metadata entry as stored. */
  raw: Record<string, string>;
}

export interface SaveCheckpointOptions {
  model: TrainableModel;
  optimizer?: AdamW;
  ema?: Ema;
  trainer?: TrainerMeta;
  config?: unknown;
  /** Extra string metadata. */
  metadata?: Record<string, string>;
}

/** Write a checkpoint atomically (temporary file + rename). */
export async function saveCheckpoint(file: string, opts: SaveCheckpointOptions): Promise<void> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(opts.model.stateDict())) {
    if (k.startsWith(OPT_PREFIX) || k.startsWith(EMA_PREFIX))
      throw new CheckpointError(`saveCheckpoint(${file}): model key '${k}' collides with the reserved prefixes '${OPT_PREFIX}' / '${EMA_PREFIX}'`, { file, key: k });
    tensors[k] = t;
  }
  if (opts.optimizer) for (const [k, t] of Object.entries(opts.optimizer.stateTensors())) tensors[OPT_PREFIX + k] = t;
  if (opts.ema) for (const [k, t] of Object.entries(opts.ema.stateTensors())) tensors[EMA_PREFIX + k] = t;
  const metadata: Record<string, string> = { ...opts.metadata, format: CHECKPOINT_FORMAT };
  if (opts.trainer) metadata.trainer = JSON.stringify(opts.trainer);
  if (opts.optimizer) metadata.optimizer = JSON.stringify(opts.optimizer.stateInfo());
  if (opts.ema) metadata.ema = JSON.stringify({ decay: opts.ema.decay, updates: opts.ema.updates });
  if (opts.config !== undefined) metadata.config = JSON.stringify(opts.config);
  await writeSafetensors(file, tensors, metadata);
}

export interface LoadCheckpointOptions {
  /** Load the state dict into this model. */
  model?: TrainableModel;
  /** Restore the optimizer moments and step counts (the checkpoint must have them). */
  optimizer?: AdamW;
  /** Restore the EMA averages (the checkpoint must have them). */
  ema?: Ema;
  /** Passed to model.loadStateDict (default true). */
  strict?: boolean;
}

function parseJson(raw: Record<string, string>, key: string, file: string): any {
  if (raw[key] === undefined) return null;
  try {
    return JSON.parse(raw[key]!);
  } catch (e) {
    throw new CheckpointError(`${file}: __metadata__.${key} is not valid JSON (${(e as Error).message})`, { file, field: key });
  }
}

/** Read a checkpoint, load what is asked for, and return its metadata. All tensors read are disposed. */
export async function loadCheckpoint(file: string, opts: LoadCheckpointOptions = {}): Promise<CheckpointMeta> {
  const { tensors, metadata } = await readSafetensors(file);
  try {
    const meta: CheckpointMeta = {
      format: metadata.format ?? '',
      trainer: parseJson(metadata, 'trainer', file),
      optimizer: parseJson(metadata, 'optimizer', file),
      ema: parseJson(metadata, 'ema', file),
      config: parseJson(metadata, 'config', file),
      raw: metadata,
    };
    const model: Record<string, tf.Tensor> = {}, optim: Record<string, tf.Tensor> = {}, ema: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) {
      if (k.startsWith(OPT_PREFIX)) optim[k.slice(OPT_PREFIX.length)] = t;
      else if (k.startsWith(EMA_PREFIX)) ema[k.slice(EMA_PREFIX.length)] = t;
      else model[k] = t;
    }
    if (opts.model) {
      try {
        opts.model.loadStateDict(model, { strict: opts.strict ?? true });
      } catch (e) {
        throw new CheckpointError(`${file}: model state does not load: ${(e as Error).message}`, { file, cause: e });
      }
    }
    if (opts.optimizer) {
      if (!meta.optimizer) throw new CheckpointError(`${file}: expected optimizer state (__metadata__.optimizer), found none`, { file, field: 'optimizer' });
      opts.optimizer.loadState(optim, meta.optimizer, file);
    }
    if (opts.ema) {
      if (!meta.ema) throw new CheckpointError(`${file}: expected EMA state (__metadata__.ema), found none`, { file, field: 'ema' });
      opts.ema.loadState(ema, meta.ema.updates, file);
    }
    return meta;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}
