/** The CLI: commands, their option tables and help, plugin loading, exit codes. Light imports only: a command's modules load when it runs. */
import { BevzooError } from '@bevzoo/core';
import { commandHelp, nearest, parseCommandArgs, UsageError, wantsHelp, type ParsedArgs } from './args.js';
import { loadedPlugins, loadPlugins } from './discover.js';
import { listCommand } from './commands/list.js';
import { COMMAND_SPECS, PUBLIC_COMMANDS } from './commands/specs.js';
import pkg from '../package.json' with { type: 'json' };

/** `bevzoo --help`: the commands (each has its own `--help`). */
export function generalHelp(): string {
  const lines = [
    `bevzoo ${pkg.version} — cross-modal knowledge distillation in bird's-eye view`,
    '',
    'usage: bevzoo <command> [options]',
    '',
    'commands:',
  ];
  for (const name of PUBLIC_COMMANDS) {
    const spec = COMMAND_SPECS[name]!;
    lines.push(`  ${spec.usage[0]}`, `      ${spec.summary}`);
  }
  lines.push('', 'bevzoo <command> --help   the options of one command', 'bevzoo --version          the version', '');
  return lines.join('\n');
}

type Command = (args: ParsedArgs) => Promise<void> | void;


const COMMANDS: Record<string, () => Promise<Command>> = {
  list: async () => (args) => void process.stdout.write(listCommand({ verbose: !!args.flags.verbose, plugins: loadedPlugins() }) + '\n'),
  predict: () => import('./commands/predict.js').then((m) => m.predictCommand as Command),
  export: () => import('./commands/export.js').then((m) => m.exportCommand as Command),
  zoo: () => import('./commands/zoo.js').then((m) => m.zooCommand as Command),
  data: () => import('./commands/data.js').then((m) => m.dataCommand as Command),
  eval: () => import('./commands/eval.js').then((m) => m.evalCommand as Command),
  train: () => import('./commands/run.js').then((m) => m.trainCommand as Command),
  distill: () => import('./commands/run.js').then((m) => m.distillCommand as Command),
  job: () => import('./commands/run.js').then((m) => m.jobCommand as Command),
  ablate: () => import('./commands/ablate.js').then((m) => m.ablateCommand as Command),
  matrix: () => import('./commands/matrix.js').then((m) => m.matrixCommand as Command),
  worker: () => import('./commands/worker.js').then((m) => m.workerCommand as Command),
};

/** Run the CLI; returns the exit code (0 done, 1 failed, 2 a mistake in the command line). */
export async function main(argv: readonly string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === '--version' || cmd === '-V') {
    process.stdout.write(`bevzoo ${pkg.version} (${pkg.name}, node ${process.version})\n`);
    return 0;
  }
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    const topic = cmd === 'help' ? argv[1] : undefined;
    process.stdout.write(topic && COMMAND_SPECS[topic] ? commandHelp(COMMAND_SPECS[topic]) : generalHelp());
    return cmd ? 0 : 1;
  }
  try {
    const spec = COMMAND_SPECS[cmd];
    if (!spec) {
      const guess = nearest(cmd, Object.keys(COMMAND_SPECS));
      throw new UsageError(`unknown ${cmd.startsWith('-') ? 'option' : 'command'} ${JSON.stringify(cmd)}${guess ? ` — did you mean "${guess}"?` : ''}; commands: ${PUBLIC_COMMANDS.join(', ')} (bevzoo --help)`);
    }
    if (wantsHelp(argv)) {
      process.stdout.write(commandHelp(spec));
      return 0;
    }
    const args = parseCommandArgs(spec, argv);
    if (spec.plugins) {
      const { failed } = await loadPlugins(args.lists.plugin ?? []);
      for (const f of failed) process.stderr.write(`bevzoo: warning: plugin ${f.name} (${f.from}) failed to load and is left out: ${f.error}\n`);
    }
    await (await COMMANDS[cmd]!())(args);
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
