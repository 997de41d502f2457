import type { z } from 'zod';
import type { FeatureKind, FeatureMap, FeatureSpec } from './features.js';
import type { Rng } from './rng.js';
import type { DataSettings } from './settings.js';

export type PluginKind = 'teacher' | 'student' | 'distiller';
export const PLUGIN_KINDS: readonly PluginKind[] = ['teacher', 'student', 'distiller'];
export type Task = 'det' | 'occ';

/** A partial of a config, recursively (what a preset or an override supplies). */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** What every factory receives. */
export interface CreateContext {
  /** The run's seeded generator (fork it per component). */
  rng: Rng;
}

interface PluginCommon<C> {
  name: string;
  version: string;
  task: Task;
  /** The npm package that registered the plugin (shown in errors and `bevzoo list`). */
  package: string;
  description: string;
  /** A zod schema whose defaults give a complete config. */
  configSchema: z.ZodType<C>;
  /** Named presets: data, never code. A preset is a partial config merged over the defaults. */
  presets: Record<string, DeepPartial<C>>;
  /** The preset taken when none is asked for (default: 'small' if present, else the first). */
  defaultPreset?: string;
  /** Weights a preset's model starts from before training (a pretrained backbone, say); see InitWeights. */
  initWeights?: readonly InitWeights[];
}

/** What a teacher or student plugin has beyond the common fields: features, a factory, its model zoo. */
interface ModelPluginCommon<C, M> extends PluginCommon<C> {
  /** Named features the model exposes for distillation, for a given config. */
  provides(config: C): FeatureMap;
  create(config: C, ctx: CreateContext): M;
  /** Trained weights shipped with the package, per preset (its model zoo; see PackagedCheckpoint). */
  checkpoints?: readonly PackagedCheckpoint[];
}

/**
 * Starting weights shipped with a package, for one preset: the runner loads the tensors whose names start with one
 * of `prefixes` into a new model of that preset before training (unless `--scratch`); a shape that does not match
 * (another config) leaves the model as initialised, with a log line saying so.
 */
export interface InitWeights {
  preset: string;
  /** Absolute path of the safetensors file. */
  file: string;
  prefixes: readonly string[];
  /** What the weights are and how they were made (shown in logs and reports). */
  description: string;
}

/**
 * Trained weights shipped with a teacher or student package (its model zoo): `createModel(name, { preset,
 * pretrained: true })` loads them. The runner uses them instead of training when the resolved config and the
 * dataset equal the ones recorded in the file's metadata (`config`, `data`); otherwise it trains, and says why.
 */
export interface PackagedCheckpoint {
  preset: string;
  /** Absolute path of the safetensors file. */
  file: string;
  /** The training data (the dataset id recorded in the file's `data` metadata). */
  data: string;
  /** What the weights reached on the validation split of that data (the task's metrics, e.g. mean_ap and nd_score). */
  metrics: Readonly<Record<string, number>>;
  /** How to reproduce it (shown in logs and reports). */
  command: string;
}

export interface TeacherPlugin<C = any, M = unknown> extends ModelPluginCommon<C, M> {
  kind: 'teacher';
}

export interface StudentPlugin<C = any, M = unknown> extends ModelPluginCommon<C, M> {
  kind: 'student';
}

/** A teacher or a student: what `createModel` builds. */
export type ModelPlugin = TeacherPlugin | StudentPlugin;

/** One feature a distiller needs from the teacher or the student. */
export interface FeatureRequirement {
  side: 'teacher' | 'student';
  name: string;
  kind?: FeatureKind;
  channels?: number;
  /** The feature must cover the same area as another one (its resolution may differ). */
  sameAreaAs?: { side: 'teacher' | 'student'; name: string };
  /** The feature must have exactly the grid of another one. */
  sameGridAs?: { side: 'teacher' | 'student'; name: string };
  /** Why it is needed (shown when it is missing). */
  why?: string;
}

export interface DistillerContext extends CreateContext {
  teacher: FeatureMap;
  student: FeatureMap;
}

/** One row of a distiller's component ablation: config overrides (or another distiller) applied to the same cell. */
export interface AblationRow {
  name: string;
  overrides: Record<string, unknown>;
  /** Run this row with another registered distiller (e.g. plain feature imitation from a baselines package). */
  distiller?: string;
}

export interface DistillerPlugin<C = any, M = unknown> extends PluginCommon<C> {
  kind: 'distiller';
  /** The rows of `bevzoo ablate <distiller>`, in order. */
  ablation?: readonly AblationRow[];
  /** Whether `bevzoo matrix` runs it by default (default true; false for ablation baselines). */
  matrix?: boolean;
  /** What this distiller needs, given what the teacher and student provide (e.g. the layers it pairs). */
  requires(config: C, provided: { teacher: FeatureMap; student: FeatureMap }): FeatureRequirement[];
  /**
   * What the distiller itself reads from each batch, beyond what the teacher and the student need (e.g. LiDAR points
   * for rendering rays, segment maps); merged into the run's data settings. Fields left out add nothing.
   */
  data?(config: C): Partial<DataSettings>;
  create(config: C, ctx: DistillerContext): M;
}

export type AnyPlugin = TeacherPlugin | StudentPlugin | DistillerPlugin;
export type PluginOf<K extends PluginKind> = K extends 'teacher' ? TeacherPlugin : K extends 'student' ? StudentPlugin : DistillerPlugin;

type Definition<P> = Omit<P, 'kind'>;

export function defineTeacher<C, M>(def: Definition<TeacherPlugin<C, M>>): TeacherPlugin<C, M> {
  return Object.freeze({ kind: 'teacher', ...def }) as TeacherPlugin<C, M>;
}
export function defineStudent<C, M>(def: Definition<StudentPlugin<C, M>>): StudentPlugin<C, M> {
  return Object.freeze({ kind: 'student', ...def }) as StudentPlugin<C, M>;
}
export function defineDistiller<C, M>(def: Definition<DistillerPlugin<C, M>>): DistillerPlugin<C, M> {
  return Object.freeze({ kind: 'distiller', ...def }) as DistillerPlugin<C, M>;
}

export function pluginId(p: { kind: PluginKind; name: string }): string {
  return `${p.kind}:${p.name}`;
}

export type { FeatureSpec };
