import { parseDistanceBands, runDetEvalCli, runOccEvalCli } from '@bevzoo/eval';
import { type ParsedArgs, optStr, str, UsageError } from '../args.js';

/** `bevzoo eval det|occ ...`: flags are parsed here, the work is @bevzoo/eval's. */
export async function evalCommand(args: ParsedArgs): Promise<void> {
  const sub = args.positionals[1];
  const log = (line: string) => void process.stdout.write(`${line}\n`);
  const common = { dataroot: str(args, 'dataroot'), version: str(args, 'version', 'v1.0-trainval'), split: str(args, 'split'), log };
  if (sub === 'det') {
    const bands = optStr(args, 'distance-bands');
    await runDetEvalCli({
      ...common, results: str(args, 'results'), config: optStr(args, 'eval-config'), out: str(args, 'out'), verbose: !!args.flags.verbose,
      distanceBands: bands === undefined ? undefined : parseDistanceBands(bands),
    });
  } else if (sub === 'occ') {
    await runOccEvalCli({ ...common, gts: str(args, 'gts'), predictions: str(args, 'predictions') });
  } else throw new UsageError(`bevzoo eval: expected "det" or "occ", got ${JSON.stringify(sub)}`);
}
