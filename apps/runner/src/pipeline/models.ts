/**
 * The models of one job, made through core's `createModel` / `createDistillation`: the trained model (a teacher,
 * a student baseline, or a distillation of a student), its weights (packaged, starting or random), and what its
 * batches must hold. Nothing here knows a particular plugin.
 */
import {
  createDistillation, createModel, dataSettings, getModelPlugin, matchPackagedCheckpoint, mergeDataSettings, resolveConfig, runSettings,
  type CreatedModel, type Distillation, type DistillerPlugin, type DataSettings, type Rng, type TaskModel, type TrainableModel, type Task,
} from '@bevzoo/core';
import type { Batch } from '@bevzoo/nuscenes';
import type { JobSpec } from './job.js';
import type { JobResult } from './results.js';

export interface JobModels {
  task: Task;
  /** What the trainer trains: the model itself, or the distillation (student + adapters, frozen teacher). */
  trainable: TrainableModel;
  /** The trained model (the student of a distillation): evaluated, and saved as `model.safetensors`. */
  trained: CreatedModel<TaskModel<Batch, unknown>>;
  /** Presets of the trained model and, in a distillation, of the teacher and the distiller. */
  presets: Record<string, string>;
  /** What every training batch must hold (the student's and the teacher's needs merged). */
  data: DataSettings;
  /** Set when the weights are the package's checkpoint and the training is skipped. */
  packaged?: { file: string; command: string; metadata: Record<string, string> };
  init?: NonNullable<JobResult['train']['init']>;
  /** What the distiller's setup did. */
  setup?: string;
  /** The distillation (role distill), whose frozen teacher may run on onnxruntime-node. */
  distillation?: Distillation<Batch, unknown>;
  dispose(): void;
}

/** The component a job trains. */
export function trainedComponent(spec: JobSpec): { kind: 'teacher' | 'student'; name: string; preset?: string; overrides?: Record<string, unknown> } {
  const c = spec.role === 'teacher' ? spec.teacher : spec.student;
  if (!c) throw new Error(`job ${spec.id}: a ${spec.role} run needs a ${spec.role === 'teacher' ? 'teacher' : 'student'}`);
  return { kind: spec.role === 'teacher' ? 'teacher' : 'student', ...c };
}

function initOf(m: CreatedModel): JobModels['init'] {
  const w = m.weights.find((x) => x.source === 'init');
  return w ? { file: w.file, tensors: w.tensors, description: w.description } : undefined;
}

/** What a distiller reads from the batches itself (its plugin's `data` hook), as data settings that add nothing else. */
function distillerData(plugin: DistillerPlugin | undefined, config: unknown): DataSettings[] {
  const extra = plugin?.data?.(config);
  return extra ? [dataSettings.parse({ images: false, points: false, sweeps: 0, withPrev: false, occ: false, segments: false, virtualPoints: false, ...extra })] : [];
}

/** Create the models of a job; `dataId` names the run's training data (for matching packaged weights). */
export async function buildJobModels(spec: JobSpec, rng: Rng, dataId: string, log: (s: string) => void): Promise<JobModels> {
  const c = trainedComponent(spec);
  const base = { kind: c.kind, preset: c.preset, overrides: c.overrides, rng: rng.fork(c.kind), initWeights: !spec.scratch };
  if (spec.role !== 'distill') {
    const plugin = getModelPlugin(c.name, c.kind);
    let packaged: JobModels['packaged'];
    if (spec.usePackaged) { // --steps shortens the runs that train; a matching packaged teacher is still loaded (--retrain-teachers trains it)
      const { config, preset } = resolveConfig(plugin, { preset: c.preset, overrides: c.overrides });
      const m = matchPackagedCheckpoint(plugin, preset, config, dataId);
      if ('checkpoint' in m) {
        log(`${plugin.kind} ${plugin.name}: the packaged checkpoint ${m.checkpoint.file} matches this run's config and data: loading it instead of training (reproduce: ${m.checkpoint.command})`);
        packaged = { file: m.checkpoint.file, command: m.checkpoint.command, metadata: m.metadata };
      } else if (plugin.checkpoints?.length) log(`${m.reason}; training instead`);
    }
    const trained = await createModel<TaskModel<Batch, unknown>>(c.name, { ...base, initWeights: base.initWeights && !packaged, pretrained: !!packaged });
    trained.notes.forEach((n) => log(n));
    return {
      task: trained.task, trainable: trained.model, trained, presets: { trained: trained.preset }, data: runSettings(trained.config).data, packaged,
      init: initOf(trained), dispose: () => trained.model.dispose(),
    };
  }
  if (!spec.teacher || !spec.distiller) throw new Error(`job ${spec.id}: a distillation needs a teacher and a distiller`);
  if (!spec.teacherCheckpoint) throw new Error(`job ${spec.id}: a distillation needs the teacher's checkpoint`);
  const d = await createDistillation<Batch, unknown>({
    teacher: { name: spec.teacher.name, kind: 'teacher', preset: spec.teacher.preset, overrides: spec.teacher.overrides, pretrained: spec.teacherCheckpoint },
    student: { name: c.name, ...base },
    distiller: spec.distiller,
    rng,
  });
  d.student.notes.forEach((n) => log(n));
  if (d.setup) log(`${d.distiller.name}: ${d.setup.summary}`);
  return {
    task: d.task, trainable: d, trained: d.student, distillation: d,
    presets: { trained: d.student.preset, teacher: d.teacher.preset, distiller: d.distiller.preset },
    data: mergeDataSettings(runSettings(d.student.config).data, runSettings(d.teacher.config).data, ...distillerData(d.assembly.distiller?.plugin, d.distiller.config)),
    init: initOf(d.student), setup: d.setup?.summary, dispose: () => d.dispose(),
  };
}
