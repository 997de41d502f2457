/**
 * `pnpm bench:matrix`: where a matrix's time goes, per run. It runs `bevzoo matrix` with the options given (the default
 * matrix without any; `--students bevdet --seeds 1` or `--steps n` for a shorter look) into `--out` (default
 * runs/bench-matrix), then prints each run's wall time split into setup, data loading, teacher forward, student
 * forward (+ task loss), distiller, backward, optimiser, the rest of the training loop and evaluation, from the runs'
 * result.json (`timing`), with the totals and each phase's share. `--from <matrix folder>` only prints the split of a
 * matrix that has run (a full default matrix, say). A matrix resumes the finished runs of its folder, so give a fresh
 * `--out` to time every run (the default folder is emptied first).
 *
 *   node apps/runner/dist/bench-matrix.js [--from <dir>] [matrix options…]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readResult, type JobResult, type RunTiming } from '../pipeline/results.js';

const PHASES = ['setup', 'data', 'teacher', 'forward', 'distill', 'backward', 'optimizer', 'train_other', 'eval'] as const satisfies readonly (keyof RunTiming)[];
const HEAD = ['run', 'wall s', 'setup', 'data', 'teacher', 'forward', 'distill', 'backward', 'optim', 'train rest', 'eval', 'steps', 'ms/step'];

const USAGE = `usage: node apps/runner/dist/bench-matrix.js [--from <matrix folder>] [matrix options…]   (pnpm bench:matrix …)
  Runs \`bevzoo matrix\` with the options given (default: the default matrix, --out runs/bench-matrix), then prints
  each run's wall time split by phase (seconds) and the totals with each phase's share. For a shorter look pass
  --students bevdet --seeds 1, or --steps n (packaged teachers are still loaded).
  --from <dir>   print the split of a matrix folder that has run, without running anything
`;

/** The runs of a matrix folder that wrote a result with a timing. */
export function timedRuns(dir: string): JobResult[] {
  const runs = join(dir, 'runs');
  if (!existsSync(runs)) throw new Error(`${runs} does not exist: not a matrix folder (bevzoo matrix --out <dir> writes <dir>/runs)`);
  return readdirSync(runs).sort().map((id) => readResult(join(runs, id))).filter((r): r is JobResult => r !== null && r.timing !== undefined);
}

/** The per-run table and the totals, as text. */
export function formatTimings(results: readonly JobResult[], matrixWall?: number): string {
  const fmt = (v: number) => v.toFixed(1);
  const rows = results.map((r) => {
    const t = r.timing!;
    const trained = r.train.packaged ? 0 : r.train.steps;
    const stepMs = trained ? ((t.teacher + t.forward + t.distill + t.backward + t.optimizer) / trained) * 1000 : NaN;
    return [r.id, fmt(t.wall), ...PHASES.map((p) => fmt(t[p])), String(trained), Number.isFinite(stepMs) ? stepMs.toFixed(0) : '—'];
  });
  const total: Record<string, number> = { wall: 0 };
  for (const p of PHASES) total[p] = 0;
  for (const r of results) {
    total.wall! += r.timing!.wall;
    for (const p of PHASES) total[p]! += r.timing![p];
  }
  rows.push(['total', fmt(total.wall!), ...PHASES.map((p) => fmt(total[p]!)), '', '']);
  rows.push(['share of the runs\' wall', '100 %', ...PHASES.map((p) => `${((100 * total[p]!) / Math.max(total.wall!, 1e-9)).toFixed(1)} %`), '', '']);
  const w = HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  const lines = [line(HEAD), ...rows.map(line)];
  const unaccounted = total.wall! - PHASES.reduce((a, p) => a + total[p]!, 0);
  lines.push(`${results.length} runs; ${fmt(unaccounted)} s of their wall time is in none of the phases (writing the results and checkpoints).`);
  if (matrixWall !== undefined)
    lines.push(`matrix wall time ${fmt(matrixWall)} s (dataset and teacher preparation included); the runs' wall times add up to ${fmt(total.wall!)} s, ${(total.wall! / matrixWall).toFixed(2)}× it (runs in parallel).`);
  return `${lines.join('\n')}\n`;
}

function main(argv: string[]): void {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  const fromAt = argv.indexOf('--from');
  if (fromAt >= 0) {
    const dir = argv[fromAt + 1];
    if (!dir) throw new Error('--from expects a matrix folder');
    process.stdout.write(formatTimings(timedRuns(resolve(dir))));
    return;
  }
  const args = [...argv];
  if (!args.includes('--out')) {
    // The bench's own folder starts empty: the matrix resumes the finished runs of a folder, which would time nothing.
    rmSync(resolve('runs/bench-matrix'), { recursive: true, force: true });
    args.push('--out', 'runs/bench-matrix');
  }
  const out = resolve(args[args.indexOf('--out') + 1]!);
  const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
  process.stderr.write(`bench:matrix: bevzoo matrix ${args.join(' ')}\n`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, 'matrix', ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`bevzoo matrix exited with ${r.status ?? r.signal}`);
  process.stdout.write(formatTimings(timedRuns(out), wall));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench:matrix: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
