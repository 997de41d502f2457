/** A small argument parser: positionals, `--key value`, `--key=value`, boolean `--flag`, repeated `--set k=v`. */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
  /** Values of repeatable options (`--set`, `--plugin`). */
  lists: Record<string, string[]>;
}

const REPEATABLE = new Set(['set', 'plugin', 'teacher-set', 'student-set', 'distiller-set']);

export function parseArgs(argv: readonly string[], booleans: readonly string[] = []): ParsedArgs {
  const out: ParsedArgs = { positionals: [], flags: {}, lists: {} };
  const bools = new Set(['help', 'verbose', 'quiet', 'force', 'json', 'no-baseline', 'in-process', 'retrain-teachers', 'scratch', ...booleans]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--') || a === '--') {
      out.positionals.push(a);
      continue;
    }
    let key = a.slice(2);
    let value: string | boolean;
    const eq = key.indexOf('=');
    if (eq >= 0) {
      value = key.slice(eq + 1);
      key = key.slice(0, eq);
    } else if (bools.has(key) || i + 1 >= argv.length || argv[i + 1]!.startsWith('--')) value = true;
    else value = argv[++i]!;
    if (REPEATABLE.has(key)) (out.lists[key] ??= []).push(String(value));
    else out.flags[key] = value;
  }
  return out;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function str(args: ParsedArgs, key: string, fallback?: string): string {
  const v = args.flags[key];
  if (v === undefined || v === true) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`missing --${key} <value>`);
  }
  return String(v);
}

export function optStr(args: ParsedArgs, key: string): string | undefined {
  const v = args.flags[key];
  return v === undefined || v === true ? undefined : String(v);
}

export function int(args: ParsedArgs, key: string, fallback: number): number {
  const v = args.flags[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${key} expects an integer, got ${JSON.stringify(v)}`);
  return n;
}
