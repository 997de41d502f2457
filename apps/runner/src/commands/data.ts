import { createProgress } from '@bevzoo/core';
import { generateSynthetic, SYNTH_PRESETS } from '@bevzoo/nuscenes';
import { type ParsedArgs, int, str, UsageError } from '../args.js';

/** `bevzoo data synth --preset <p> --seed <n> --out <dir> [--workers n]` */
export async function dataCommand(args: ParsedArgs): Promise<void> {
  const sub = args.positionals[1];
  if (sub !== 'synth') throw new UsageError(`bevzoo data: unknown subcommand ${JSON.stringify(sub)}; expected: synth`);
  const preset = str(args, 'preset', 'small');
  if (!(preset in SYNTH_PRESETS)) throw new UsageError(`--preset ${preset}: unknown; presets: ${Object.keys(SYNTH_PRESETS).join(', ')}`);
  const out = str(args, 'out', `data/synth-${preset}`);
  const seed = int(args, 'seed', 0);
  const bars = new Map<string, ReturnType<typeof createProgress>>();
  const t0 = Date.now();
  const res = await generateSynthetic({
    preset: preset as keyof typeof SYNTH_PRESETS,
    seed,
    out,
    workers: args.flags.workers !== undefined ? int(args, 'workers', 2) : undefined,
    onProgress: ({ done, total, phase }) => {
      let bar = bars.get(phase);
      if (!bar) {
        bar = createProgress({ total, label: `synth ${phase}`, unit: 'items' });
        bars.set(phase, bar);
      }
      bar.update(done);
    },
  });
  for (const b of bars.values()) b.done();
  process.stdout.write(`synthetic dataset (${preset}, seed ${seed}): ${res.out} — ${res.scenes} scenes, ${res.samples} samples, version ${res.version}, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
