import type { z } from 'zod';
import { ConfigError } from './errors.js';
import type { AnyPlugin } from './plugin.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isObj(base) || !isObj(over)) return (over === undefined ? base : over) as T;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out as T;
}

/** Parse a CLI value: JSON where it parses (numbers, booleans, arrays, objects, null), else the raw string. */
export function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** `["a.b=1", "c=[1,2]"]` → `{a: {b: 1}, c: [1, 2]}`. */
export function parseOverrides(pairs: readonly string[]): Obj {
  const out: Obj = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`override "${pair}": expected key=value with a dotted key, e.g. train.lr=2e-4`);
    setDotted(out, pair.slice(0, eq).trim(), parseValue(pair.slice(eq + 1)));
  }
  return out;
}

export function setDotted(obj: Obj, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Obj;
  }
  cur[keys[keys.length - 1]!] = value;
}

/** Flatten to dotted keys (arrays stay values). */
export function flattenConfig(obj: unknown, prefix = ''): [string, unknown][] {
  if (!isObj(obj)) return [[prefix, obj]];
  const rows: [string, unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isObj(v) && Object.keys(v).length) rows.push(...flattenConfig(v, key));
    else rows.push([key, v]);
  }
  return rows;
}

/** A config printed back in full, one dotted key per line. */
export function formatConfig(config: unknown, indent = '  '): string {
  return flattenConfig(config)
    .map(([k, v]) => `${indent}${k} = ${JSON.stringify(v)}`)
    .join('\n');
}

/** Paths in `over` that do not exist in `base` (typos in overrides or presets). */
function unknownPaths(base: unknown, over: unknown, prefix = ''): string[] {
  if (!isObj(over) || !isObj(base)) return [];
  const bad: string[] = [];
  for (const [k, v] of Object.entries(over)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (!(k in base)) bad.push(key);
    else bad.push(...unknownPaths(base[k], v, key));
  }
  return bad;
}

export interface ResolvedConfig<C> {
  config: C;
  preset: string;
}

/** The preset a plugin takes when none is named. */
export function defaultPresetOf(plugin: AnyPlugin): string {
  const names = Object.keys(plugin.presets);
  if (plugin.defaultPreset) return plugin.defaultPreset;
  return names.includes('small') ? 'small' : (names[0] ?? 'default');
}

/**
 * defaults (from the schema) ← preset ← overrides, validated by the plugin's schema. Unknown keys and
 * invalid values fail with every problem listed by dotted path.
 */
export function resolveConfig<C>(plugin: AnyPlugin, opts: { preset?: string; overrides?: Obj } = {}): ResolvedConfig<C> {
  const who = `${plugin.kind} "${plugin.name}"`;
  const preset = opts.preset ?? defaultPresetOf(plugin);
  const presetValues = plugin.presets[preset];
  if (presetValues === undefined && !(preset === 'default' && Object.keys(plugin.presets).length === 0))
    throw new ConfigError(`${who} has no preset "${preset}"; presets: ${Object.keys(plugin.presets).join(', ') || '(none)'}`);
  const defaults = plugin.configSchema.safeParse({});
  if (!defaults.success) throw new ConfigError(`${who}: its config schema has fields without defaults (${formatIssues(defaults.error.issues).map((i) => i.path).join(', ')})`);
  const base = defaults.data;
  const issues: { path: string; message: string }[] = [];
  for (const p of unknownPaths(base, presetValues)) issues.push({ path: p, message: `preset "${preset}" sets an unknown key` });
  const withPreset = deepMerge(base, presetValues ?? {});
  for (const p of unknownPaths(withPreset, opts.overrides)) issues.push({ path: p, message: 'unknown key' });
  if (issues.length)
    throw new ConfigError(`${who}: invalid config:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}\n  known keys:\n${formatConfig(base, '    ')}`, issues);
  const merged = deepMerge(withPreset, opts.overrides ?? {});
  const parsed = plugin.configSchema.safeParse(merged);
  if (!parsed.success) {
    const list = formatIssues(parsed.error.issues);
    throw new ConfigError(`${who} (preset "${preset}"): invalid config:\n${list.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`, list);
  }
  return { config: parsed.data as C, preset };
}

function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): { path: string; message: string }[] {
  return issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}

/**
 * A config schema whose parsed configs also pass `check`, a function that derives what a model builds from its config
 * (its layout) and throws a ConfigError on what does not fit: each of the error's issues becomes a schema issue at
 * its dotted path. Other errors propagate.
 */
export function checkedSchema<S extends z.ZodType>(schema: S, check: (config: z.output<S>) => unknown): S {
  return schema.superRefine((config, ctx) => {
    try {
      check(config);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      for (const i of e.issues) ctx.addIssue({ code: 'custom', path: i.path.split('.'), message: i.message });
    }
  }) as S;
}
