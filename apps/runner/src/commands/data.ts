import { type ParsedArgs, int, optStr, str, UsageError } from '../args.js';
import { generateWithProgress } from '../pipeline/dataset.js';

/** `bevzoo data synth --preset <p> --seed <n> --out <dir> [--workers n]` */
export async function dataCommand(args: ParsedArgs): Promise<void> {
  const sub = args.positionals[1];
  if (sub !== 'synth') throw new UsageError(`bevzoo data: unknown subcommand ${JSON.stringify(sub)}; expected: synth`);
  const preset = str(args, 'preset', 'small');
  const seed = int(args, 'seed', 0);
  const out = str(args, 'out', `data/synth-${preset}-seed${seed}`);
  const workers = optStr(args, 'workers') !== undefined ? int(args, 'workers', 2) : undefined;
  const r = await generateWithProgress({ preset, seed, out, workers }, (s) => process.stderr.write(`${s}\n`));
  process.stdout.write(`${r.reused ? 'reused' : 'wrote'} synthetic dataset (${preset}, seed ${seed}): ${r.dataroot} — version ${r.version}, ${r.scenes} scenes, ${r.samples} samples\n`);
}
