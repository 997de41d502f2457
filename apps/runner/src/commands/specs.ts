/** The option table of every command: the parser, the checks and each command's `--help` come from here. */
import type { CommandSpec, OptionTable } from '../args.js';
import { BACKENDS, TEACHER_RUNTIMES } from '../pipeline/options.js';

const PLUGIN: OptionTable = {
  plugin: { type: 'string', multiple: true, value: '<package or path>', help: 'load an extra plugin' },
  help: { type: 'boolean', short: 'h', help: 'this text' },
};

const DATA: OptionTable = {
  dataroot: { type: 'string', value: '<dir>', check: 'dir', help: 'a nuScenes-format dataset (default: the synthetic dataset of the preset, generated on first use under .bevzoo/data)' },
  data: { type: 'string', value: '<dir>', check: 'dir', help: 'the same as --dataroot' },
  version: { type: 'string', value: '<v>', help: 'the dataset version of --dataroot (v1.0-trainval, v1.0-mini, ...)' },
  'train-split': { type: 'string', value: '<split>', help: 'the training split of --dataroot' },
  'val-split': { type: 'string', value: '<split>', help: 'the evaluation split of --dataroot' },
  gts: { type: 'string', value: '<dir>', check: 'dir', help: 'Occ3D ground truth folder (occupancy runs on --dataroot)' },
  'eval-config': { type: 'string', value: '<json>', check: 'file', help: 'a detection evaluation config (the devkit\'s JSON)' },
  'data-preset': { type: 'string', value: '<p>', help: 'the synthetic dataset preset (default: the model preset)' },
  'data-seed': { type: 'string', value: '<n>', check: 'int>=0', help: 'the synthetic dataset seed (default 0)' },
  'data-dir': { type: 'string', value: '<dir>', help: 'where synthetic datasets live (default .bevzoo/data)' },
  'max-train': { type: 'string', value: '<n>', check: 'int>=1', help: 'use at most n training samples' },
  'max-val': { type: 'string', value: '<n>', check: 'int>=1', help: 'evaluate at most n samples' },
};

const TRAINING: OptionTable = {
  set: { type: 'string', multiple: true, value: '<key=value>', help: 'override a config value of the trained model (dotted keys)' },
  'teacher-set': { type: 'string', multiple: true, value: '<key=value>', help: 'override a config value of the teacher' },
  'student-set': { type: 'string', multiple: true, value: '<key=value>', help: 'override a config value of the student' },
  'distiller-set': { type: 'string', multiple: true, value: '<key=value>', help: 'override a config value of the distiller' },
  steps: { type: 'string', value: '<n>', check: 'int>=1', help: 'override the training steps of the runs that train (quick runs; packaged teacher weights are still loaded unless --retrain-teachers)' },
  'retrain-teachers': { type: 'boolean', help: 'train teachers even where their package ships matching weights' },
  scratch: { type: 'boolean', help: 'start from random weights, not from the starting weights a plugin ships (initWeights)' },
  backend: { type: 'string', value: '<name>', choices: BACKENDS, help: `${BACKENDS.join(' | ')} (default auto)` },
  parallel: { type: 'string', value: '<n>', check: 'int>=1', help: 'runs at once (default 2: one per core)' },
};

const PRESET = { type: 'string', value: '<p>', help: 'the preset of every model (default small)' } as const;
const OUT = (what: string) => ({ type: 'string', value: '<dir>', help: `output folder (default ${what})` }) as const;
const TEACHER_CKPT = { type: 'string', value: '<file>', check: 'file', help: 'a trained teacher checkpoint to use instead of training or loading one' } as const;
const TEACHER_RUNTIME = {
  type: 'string', value: '<r>', choices: TEACHER_RUNTIMES,
  help: 'where the frozen teacher runs in a distillation: onnx (onnxruntime-node), engine, or auto (default: onnx where it is faster on the first batches)',
} as const;
const QUEUE_NAME = { type: 'string', value: '<name>', help: 'the BullMQ queue (default bevzoo-matrix)' } as const;
const SEEDS = { type: 'string', value: '<n>', check: 'int>=1', help: 'seeds per run (default 1)' } as const;

const planSections = (own: OptionTable): CommandSpec['sections'] => [
  { title: 'options', options: own },
  { title: 'data', options: DATA },
  { title: 'training', options: TRAINING },
  { title: 'plugins and help', options: PLUGIN },
];

export const COMMAND_SPECS: Record<string, CommandSpec> = {
  list: {
    name: 'list', summary: 'registered plugins (and where they were loaded from), presets, features, compatible combinations', maxPositionals: 0, plugins: true,
    usage: ['list [--verbose] [--plugin <package or path>]'],
    sections: [{ title: 'options', options: { verbose: { type: 'boolean', help: 'also each model\'s features' } } }, { title: 'plugins and help', options: PLUGIN }],
  },
  data: {
    name: 'data', summary: 'write a synthetic nuScenes-format dataset', maxPositionals: 1, plugins: false,
    usage: ['data synth [--preset tiny|small|mini] [--seed n] [--out dir] [--workers n]'],
    sections: [{
      title: 'options', options: {
        preset: { type: 'string', value: '<p>', help: 'tiny, small or mini (default small)' },
        seed: { type: 'string', value: '<n>', check: 'int>=0', help: 'generator seed (default 0)' },
        out: OUT('data/synth-<preset>-seed<seed>'),
        workers: { type: 'string', value: '<n>', check: 'int>=1', help: 'worker threads (default 2)' },
        help: PLUGIN.help!,
      },
    }],
  },
  eval: {
    name: 'eval', summary: 'evaluate results files with the nuScenes detection metrics or Occ3D mIoU', maxPositionals: 1, plugins: false,
    usage: [
      'eval det --dataroot <dir> --version <v> --split <s> --results <file> [--eval-config <json>] [--distance-bands 0,20,30,40] --out <dir>',
      'eval occ --dataroot <dir> --version <v> --split <s> --gts <dir> --predictions <dir>',
    ],
    sections: [{
      title: 'options', options: {
        dataroot: DATA.dataroot!,
        version: { type: 'string', value: '<v>', help: 'dataset version (default v1.0-trainval)' },
        split: { type: 'string', value: '<s>', help: 'the split evaluated' },
        results: { type: 'string', value: '<file>', check: 'file', help: 'det: results.json in the nuScenes submission format' },
        'eval-config': { type: 'string', value: '<json>', check: 'file', help: 'det: an evaluation config (the devkit\'s JSON; default detection_cvpr_2019)' },
        out: { type: 'string', value: '<dir>', help: 'det: where metrics_summary.json and metrics_details.json go' },
        'distance-bands': { type: 'string', value: '<m,m,…>', help: 'det: edges of the ego-distance bands of AP by distance (default 0,20,30,40: [0,20) … [40,∞))' },
        gts: { type: 'string', value: '<dir>', check: 'dir', help: 'occ: the Occ3D ground truth folder' },
        predictions: { type: 'string', value: '<dir>', check: 'dir', help: 'occ: one .npz per sample token' },
        verbose: { type: 'boolean', help: 'det: per-class tables' },
        help: PLUGIN.help!,
      },
    }],
  },
  train: {
    name: 'train', summary: 'train one model and evaluate it on the val split', maxPositionals: 2, plugins: true,
    usage: ['train teacher|student <name> [--preset p] [--seed n] [--out dir] [--set key=value]'],
    sections: planSections({ preset: PRESET, seed: { type: 'string', value: '<n>', check: 'int>=0', help: 'seed (default 0)' }, out: OUT('runs/train-<kind>-<name>-<preset>') }),
  },
  distill: {
    name: 'distill', summary: 'teacher (loaded or trained), baseline and distilled student, side by side', maxPositionals: 0, plugins: true,
    usage: ['distill --teacher <t> --student <s> [--distiller <d>] [--preset p] [--teacher-checkpoint f] [--no-baseline]'],
    sections: planSections({
      teacher: { type: 'string', value: '<name>', help: 'the teacher' },
      student: { type: 'string', value: '<name>', help: 'the student' },
      distiller: { type: 'string', value: '<name>', help: 'the distiller (default: the first of the student\'s task)' },
      preset: PRESET,
      seed: { type: 'string', value: '<n>', check: 'int>=0', help: 'seed (default 0)' },
      out: OUT('runs/distill-<t>-<s>-<d>-<preset>'),
      'teacher-checkpoint': TEACHER_CKPT,
      'teacher-runtime': TEACHER_RUNTIME,
      'no-baseline': { type: 'boolean', help: 'skip the student\'s baseline run' },
    }),
  },
  matrix: {
    name: 'matrix', summary: 'every compatible combination, two runs at a time; resumes when rerun', maxPositionals: 0, plugins: true,
    usage: ['matrix [--preset p] [--seeds n] [--out dir] [--teachers a,b] [--students a,b] [--distillers a,b|all]'],
    sections: planSections({
      preset: PRESET,
      seeds: SEEDS,
      'first-seed': { type: 'string', value: '<n>', check: 'int>=0', help: 'the first seed (default 0)' },
      out: OUT('runs/matrix-<preset>'),
      teachers: { type: 'string', value: '<a,b>', help: 'only these teachers' },
      students: { type: 'string', value: '<a,b>', help: 'only these students' },
      distillers: { type: 'string', value: '<a,b|all>', help: 'these distillers (default: all but the ablation baselines)' },
      'teacher-runtime': TEACHER_RUNTIME,
      'in-process': { type: 'boolean', help: 'run every job in this process (debugging)' },
      threads: { type: 'string', value: '<n>', check: 'int>=1', help: 'engine threads of each run (default 1 when runs go two at a time)' },
      queue: { type: 'string', value: '<redis://host:port>', help: 'enqueue the runs on this Redis for `bevzoo worker`s (BullMQ) instead of running them here' },
      'queue-name': QUEUE_NAME,
      attempts: { type: 'string', value: '<n>', check: 'int>=1', help: 'with --queue: tries of a failing run before it is reported (default 3)' },
    }),
  },
  worker: {
    name: 'worker', summary: 'run the queued runs of `bevzoo matrix --queue` on this machine (BullMQ over Redis)', maxPositionals: 0, plugins: true,
    usage: ['worker --queue <redis://host:port> [--concurrency n] [--queue-name name] [--lock-seconds s]'],
    sections: [{
      title: 'options', options: {
        queue: { type: 'string', value: '<redis://host:port>', help: 'the Redis of the matrix (required)' },
        'queue-name': QUEUE_NAME,
        concurrency: { type: 'string', value: '<n>', check: 'int>=1', help: 'runs at once, each in a child process (default 1)' },
        'lock-seconds': { type: 'string', value: '<s>', check: 'int>=1', help: 'a dead worker\'s run is taken over after about this long (default 30)' },
      },
    }, { title: 'plugins and help', options: PLUGIN }],
  },
  predict: {
    name: 'predict', summary: 'a model\'s predictions on a split as submission files (nuScenes results.json, Occ3D .npz)', maxPositionals: 1, plugins: true,
    usage: ['predict <model> [--preset p] [--checkpoint f] [--split val|train] --out <dir>'],
    sections: [{
      title: 'options', options: {
        preset: { type: 'string', value: '<p>', help: 'the model preset (default: the checkpoint\'s, else the model\'s default)' },
        checkpoint: { type: 'string', value: '<file>', check: 'file', help: 'the weights (a run\'s model.safetensors; default: the weights the package ships)' },
        split: { type: 'string', value: '<s>', choices: ['val', 'train'], help: 'the split of the dataset predicted: val (--val-split) or train (--train-split); default val' },
        out: { type: 'string', value: '<dir>', help: 'where the files go (required)' },
      },
    }, { title: 'data', options: DATA }, { title: 'plugins and help', options: PLUGIN }],
  },
  export: {
    name: 'export', summary: 'a model with its weights as an ONNX file (opset 17), checked on onnxruntime-node against the engine', maxPositionals: 1, plugins: true,
    usage: ['export <model> [--preset p] [--checkpoint f] [--batch-size n] --out model.onnx'],
    sections: [{
      title: 'options', options: {
        preset: { type: 'string', value: '<p>', help: 'the model preset (default: the checkpoint\'s, else the model\'s default)' },
        checkpoint: { type: 'string', value: '<file>', check: 'file', help: 'the weights (a run\'s model.safetensors; default: the weights the package ships)' },
        'batch-size': { type: 'string', value: '<n>', check: 'int>=1', help: 'the batch size fixed in the file (default: the preset\'s training batch size)' },
        out: { type: 'string', value: '<file>', help: 'the .onnx file written (required)' },
      },
    }, { title: 'data (the batch traced)', options: DATA }, { title: 'plugins and help', options: PLUGIN }],
  },
  zoo: {
    name: 'zoo', summary: 'the model zoo: each model\'s task, presets, parameters and packaged weights with their metrics', maxPositionals: 0, plugins: true,
    usage: ['zoo [--markdown]'],
    sections: [{ title: 'options', options: { markdown: { type: 'boolean', help: 'the table the root README holds' } } }, { title: 'plugins and help', options: PLUGIN }],
  },
  ablate: {
    name: 'ablate', summary: 'the distiller\'s component ablation on one cell', maxPositionals: 1, plugins: true,
    usage: ['ablate <distiller> [--teacher t] [--student s] [--preset p] [--seeds n] [--out dir]'],
    sections: planSections({
      teacher: { type: 'string', value: '<name>', help: 'the teacher (default: the first of the distiller\'s task)' },
      student: { type: 'string', value: '<name>', help: 'the student (default: the first of the distiller\'s task)' },
      preset: PRESET,
      seeds: SEEDS,
      out: OUT('runs/ablate-<d>-<t>-<s>-<preset>'),
      'teacher-checkpoint': TEACHER_CKPT,
      'teacher-runtime': TEACHER_RUNTIME,
    }),
  },
  job: {
    name: 'job', summary: 'run one job of a matrix (started by the scheduler in a child process)', maxPositionals: 0, plugins: true,
    usage: ['job --spec <file>'],
    sections: [{
      title: 'options', options: {
        spec: { type: 'string', value: '<file>', check: 'file', help: 'the job spec (JSON)' },
        queued: { type: 'boolean', help: 'started by a queue worker: a folder lock of another host is its stopped predecessor\'s and is taken over' },
      },
    }, { title: 'plugins and help', options: PLUGIN }],
  },
};

/**
 * `--config <file>` on every command: the command's long options as keys of a JSON or YAML file (args.ts,
 * `applyOptionsFile`); the command line overrides the file.
 */
export const CONFIG_OPTION: OptionTable = {
  config: { type: 'string', value: '<file.json|yaml>', check: 'file', help: 'read options from a JSON or YAML file (the long options as keys; the command line overrides it)' },
};
for (const spec of Object.values(COMMAND_SPECS)) spec.sections.push({ title: 'options file', options: CONFIG_OPTION });

/** Commands shown in `bevzoo --help` (job is internal). */
export const PUBLIC_COMMANDS = ['list', 'zoo', 'data', 'train', 'distill', 'matrix', 'worker', 'ablate', 'predict', 'export', 'eval'];
