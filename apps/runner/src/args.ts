/**
 * Command-line arguments through `node:util`'s parseArgs in strict mode, one option table per command: an unknown
 * option is a UsageError that names it and suggests the nearest valid one, values are checked (integers, ranges,
 * existing files and folders) before anything runs, and each command's `--help` is generated from its table.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs as parseNodeArgs, type ParseArgsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';

/** What the commands read: positionals (the command first), option values, and the values of repeatable options. */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
  /** Values of repeatable options (`--set`, `--plugin`). */
  lists: Record<string, string[]>;
}

/** A mistake in the command line (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** How a value is checked: an integer ≥ 1 or ≥ 0, an existing file or folder (a list of allowed values is `choices`). */
export type ValueCheck = 'int>=1' | 'int>=0' | 'file' | 'dir';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Repeatable (values collected in `lists`). */
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the help (`<dir>`). */
  value?: string;
  help: string;
  check?: ValueCheck;
  choices?: readonly string[];
}
export type OptionTable = Record<string, OptionSpec>;

export interface CommandSpec {
  name: string;
  /** Usage lines (without `bevzoo `). */
  usage: string[];
  summary: string;
  /** Positionals after the command (0 = none accepted). */
  maxPositionals: number;
  /** Option sections of the help, in order; the parser accepts the union. */
  sections: { title: string; options: OptionTable }[];
  /** Whether the command needs the registered plugins (imported before it runs). */
  plugins: boolean;
}

/** Levenshtein distance (for suggestions). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/** The nearest of `candidates` to `word`, when it is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(word, c);
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function optionsOf(spec: CommandSpec): OptionTable {
  return Object.assign({}, ...spec.sections.map((s) => s.options)) as OptionTable;
}

function checkValue(name: string, v: string, o: OptionSpec): void {
  const fail = (expected: string) => {
    throw new UsageError(`--${name} expects ${expected}, got ${JSON.stringify(v)}`);
  };
  if (o.choices && !o.choices.includes(v)) fail(`one of ${o.choices.join(', ')}`);
  switch (o.check) {
    case 'int>=1':
    case 'int>=0': {
      const min = o.check === 'int>=1' ? 1 : 0;
      if (!/^[+-]?\d+$/.test(v.trim()) || Number(v) < min || !Number.isSafeInteger(Number(v))) fail(`an integer ≥ ${min}`);
      break;
    }
    case 'file':
      if (!existsSync(v)) fail(`an existing file (${v} does not exist)`);
      if (!statSync(v).isFile()) fail(`a file (${v} is a folder)`);
      break;
    case 'dir':
      if (!existsSync(v)) fail(`an existing folder (${v} does not exist)`);
      if (!statSync(v).isDirectory()) fail(`a folder (${v} is a file)`);
      break;
  }
}

/** Whether argv asks for help (`--help` or `-h` anywhere before a `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Parse a command's argv (the command name first) against its option table. Throws a UsageError for an unknown
 * option (with the nearest valid one), a missing or malformed value, a value that fails its check, or too many
 * positionals.
 */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const table = optionsOf(spec);
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [k, o] of Object.entries(table)) options[k] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  const { tokens } = parseNodeArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens ?? []) {
    if (t.kind !== 'option' || t.name in table) continue;
    const guess = nearest(t.name, Object.keys(table));
    throw new UsageError(`unknown option ${t.rawName} for "bevzoo ${spec.name}"${guess ? ` — did you mean --${guess}?` : ''} (bevzoo ${spec.name} --help lists its options)`);
  }
  let parsed: ReturnType<typeof parseNodeArgs>;
  try {
    parsed = parseNodeArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(`bevzoo ${spec.name}: ${(e as Error).message}`);
  }
  const out: ParsedArgs = { positionals: parsed.positionals, flags: {}, lists: {} };
  if (out.positionals.length - 1 > spec.maxPositionals) {
    const extra = out.positionals.slice(1 + spec.maxPositionals);
    throw new UsageError(`bevzoo ${spec.name}: unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((x) => JSON.stringify(x)).join(' ')} (usage: bevzoo ${spec.usage[0]})`);
  }
  for (const [k, v] of Object.entries(parsed.values)) {
    const o = table[k]!;
    const values = (Array.isArray(v) ? v : [v]) as (string | boolean)[];
    for (const x of values) if (typeof x === 'string') checkValue(k, x, o);
    if (o.multiple) out.lists[k] = values.map(String);
    else out.flags[k] = values[0]!;
  }
  if (typeof out.flags.config === 'string') applyOptionsFile(spec, table, out, out.flags.config);
  return out;
}

/** Whether an option's value is a path (resolved against an options file's folder). */
const isPath = (o: OptionSpec) => o.check === 'file' || o.check === 'dir' || o.value === '<dir>' || o.value === '<file>';

/**
 * `--config <file>`: the command's long options as the keys of a JSON or YAML object (`preset: small`, `seeds: 2`,
 * `student-set: [train.lr=1e-3]`, `retrain-teachers: true`); what the command line gives wins. Paths in the file are
 * relative to its folder. An unknown key, a value of the wrong type or one that fails the option's check is a
 * UsageError naming the file and the key.
 */
export function applyOptionsFile(spec: CommandSpec, table: OptionTable, out: ParsedArgs, file: string): void {
  let doc: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    doc = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return; // an empty file
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`--config ${file}: expected an object of options (long option names as keys), found ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  const dir = dirname(resolve(file));
  for (const [key, raw] of Object.entries(doc as Record<string, unknown>)) {
    const where = `--config ${file}: option "${key}"`;
    const o = table[key];
    if (!o || key === 'config' || key === 'help') {
      const guess = nearest(key, Object.keys(table).filter((k) => k !== 'config' && k !== 'help'));
      throw new UsageError(`--config ${file}: unknown option "${key}" for "bevzoo ${spec.name}"${guess ? ` — did you mean "${guess}"?` : ''} (bevzoo ${spec.name} --help lists its options)`);
    }
    if (key in out.flags || key in out.lists) continue; // the command line wins
    const scalar = (v: unknown): string => {
      if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) {
        let s = String(v);
        if (isPath(o) || (key === 'plugin' && s.startsWith('.'))) s = isAbsolute(s) ? s : resolve(dir, s);
        try {
          checkValue(key, s, o);
        } catch (e) {
          throw new UsageError(`${where}: ${(e as Error).message}`);
        }
        return s;
      }
      throw new UsageError(`${where}: expected ${o.type === 'boolean' ? 'true or false' : 'a string or a number'}, found ${JSON.stringify(v)}`);
    };
    if (o.type === 'boolean') {
      if (typeof raw !== 'boolean') throw new UsageError(`${where}: expected true or false, found ${JSON.stringify(raw)}`);
      if (raw) out.flags[key] = true;
    } else if (o.multiple) out.lists[key] = (Array.isArray(raw) ? raw : [raw]).map(scalar);
    else if (Array.isArray(raw)) throw new UsageError(`${where}: takes one value, found a list`);
    else out.flags[key] = scalar(raw);
  }
}

/** The help text of one command, from its table. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`bevzoo ${spec.name} — ${spec.summary}`, '', 'usage:', ...spec.usage.map((u) => `  bevzoo ${u}`)];
  for (const s of spec.sections) {
    lines.push('', `${s.title}:`);
    for (const [k, o] of Object.entries(s.options)) {
      const left = `  ${o.short ? `-${o.short}, ` : ''}--${k}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
      const help = `${o.help}${o.multiple ? ' (repeatable)' : ''}`;
      lines.push(left.length < 34 ? `${left.padEnd(34)}  ${help}` : `${left}\n${''.padEnd(36)}${help}`);
    }
  }
  return `${lines.join('\n')}\n`;
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
