import { BevzooError } from '@bevzoo/core';
import { parseArgs, UsageError, type ParsedArgs } from './args.js';
import { loadPlugins } from './discover.js';
import { listCommand } from './commands/list.js';

export { parseArgs, type ParsedArgs } from './args.js';
export { findInstalledPlugins, loadPlugin, loadPlugins } from './discover.js';
export { listCommand } from './commands/list.js';
export { runJob, type JobSpec } from './pipeline/job.js';
export type { JobResult, CurvePoint } from './pipeline/results.js';
export { prepareDataset, datasetId, type Dataset, type DatasetChoice } from './pipeline/dataset.js';

export const HELP = `bevzoo — cross-modal knowledge distillation in bird's-eye view

usage: bevzoo <command> [options]

commands:
  list [--verbose]                    registered plugins, presets, features, compatible combinations
  data synth --preset <p> --seed <n> --out <dir>
                                      write a synthetic nuScenes-format dataset (presets: tiny, small, mini)
  train teacher|student <name> [--preset p] [--seed n] [--out dir] [--set k=v]
                                      train one model, evaluate it on the val split
  distill --teacher <t> --student <s> [--distiller <d>] [--preset p] [--teacher-checkpoint f] [--no-baseline]
                                      teacher (trained or loaded), baseline and distilled student, side by side
  matrix [--preset p] [--seeds n] [--out dir] [--teachers a,b] [--students a,b] [--distillers a,b|all]
                                      every compatible combination, two runs at a time; resumes when rerun
  ablate <distiller> [--teacher t] [--student s] [--preset p] [--seeds n]
                                      the distiller's component ablation on one cell
  eval det --dataroot <dir> --version <v> --split <s> --results <file> [--config <json>] --out <dir>
  eval occ --dataroot <dir> --version <v> --split <s> --gts <dir> --predictions <dir>

data (train, distill, matrix, ablate):
  default: the synthetic dataset of the preset, generated on first use under .bevzoo/data
  --dataroot <dir> --version <v> [--train-split s] [--val-split s] [--gts dir] [--eval-config json]
  --data-preset <p> --data-seed <n> --data-dir <dir> --max-train <n> --max-val <n>

common options:
  --plugin <package or path>          load an extra plugin (repeatable)
  --set key=value                     override a config value of the trained model (dotted keys, repeatable);
                                      --teacher-set, --student-set, --distiller-set for one component
  --steps <n>                         override the training steps (quick runs)
  --retrain-teachers                  train teachers even where their package ships matching weights
                                      (distill, matrix, ablate load those by default)
  --scratch                           start every trained model from random weights, not from the
                                      starting weights a plugin ships for its preset (initWeights)
  --backend auto|wasm|cpu|tensorflow|tensorflow-gpu
  --parallel <n>                      runs at once (default 2: one per core)
  --help                              this text
`;

type Command = (args: ParsedArgs) => Promise<void> | void;


const COMMANDS: Record<string, () => Promise<Command>> = {
  list: async () => (args) => void process.stdout.write(listCommand({ verbose: !!args.flags.verbose }) + '\n'),
  data: () => import('./commands/data.js').then((m) => m.dataCommand as Command),
  eval: () => import('./commands/eval.js').then((m) => m.evalCommand as Command),
  train: () => import('./commands/run.js').then((m) => m.trainCommand as Command),
  distill: () => import('./commands/run.js').then((m) => m.distillCommand as Command),
  job: () => import('./commands/run.js').then((m) => m.jobCommand as Command),
  ablate: () => import('./commands/ablate.js').then((m) => m.ablateCommand as Command),
  matrix: () => import('./commands/matrix.js').then((m) => m.matrixCommand as Command),
};

/** Run the CLI; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const cmd = args.positionals[0];
  if (!cmd || args.flags.help || cmd === 'help') {
    process.stdout.write(HELP);
    return cmd || args.flags.help ? 0 : 1;
  }
  try {
    const { failed } = await loadPlugins(args.lists.plugin ?? []);
    for (const f of failed) process.stderr.write(`bevzoo: warning: plugin package ${f.name} failed to load: ${f.error}\n`);
    const make = COMMANDS[cmd];
    if (!make) throw new UsageError(`unknown command "${cmd}"; commands: ${Object.keys(COMMANDS).join(', ')} (bevzoo --help)`);
    await (await make())(args);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bevzoo: ${e.message}\n`);
      return 2;
    }
    if (e instanceof BevzooError || (e as Error)?.name?.endsWith('Error')) {
      process.stderr.write(`bevzoo ${cmd}: ${(e as Error).message}\n`);
      if (process.env.BEVZOO_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      return 1;
    }
    throw e;
  }
}
