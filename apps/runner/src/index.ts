import { BevzooError, list } from '@bevzoo/core';
import { parseArgs, UsageError, type ParsedArgs } from './args.js';
import { loadPlugins } from './discover.js';
import { listCommand } from './commands/list.js';

export { parseArgs, type ParsedArgs } from './args.js';
export { findInstalledPlugins, loadPlugin, loadPlugins } from './discover.js';
export { listCommand } from './commands/list.js';

export const HELP = `bevzoo — cross-modal knowledge distillation in bird's-eye view

usage: bevzoo <command> [options]

commands:
  list [--verbose]                       registered plugins, presets, compatible combinations
  data synth --preset <p> --seed <n> --out <dir>
                                         write a synthetic nuScenes-format dataset (presets: tiny, small, mini)
  eval det --dataroot <dir> --version <v> --split <s> --results <file> [--config <json>] --out <dir>
  eval occ --dataroot <dir> --version <v> --split <s> --gts <dir> --predictions <dir>
  train teacher <name> --preset <p> --data <dir>
  distill --teacher <t> --student <s> --distiller <d> --preset <p>
  matrix [--preset <p>] [--seeds n] --out <dir>
  ablate distillbev

common options:
  --plugin <package or path>             load an extra plugin (repeatable)
  --set key=value                        override a config value (dotted keys, repeatable)
  --help                                 this text
`;

type Command = (args: ParsedArgs) => Promise<void> | void;

async function lazy(path: string, name: string): Promise<Command> {
  const mod = (await import(path)) as Record<string, Command>;
  return mod[name]!;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  list: async () => (args) => void process.stdout.write(listCommand({ verbose: !!args.flags.verbose }) + '\n'),
  matrix: () => lazy('./commands/matrix.js', 'matrixCommand'),
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

export function registeredCount(): number {
  return list().length;
}
