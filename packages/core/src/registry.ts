import { RegistryError } from './errors.js';
import { PLUGIN_KINDS, pluginId, type AnyPlugin, type PluginKind, type PluginOf } from './plugin.js';

/**
 * One registry per process: kept on globalThis under a well-known symbol, so that two copies of
 * @bevzoo/core (or of a plugin package) still share it.
 */
const KEY = Symbol.for('bevzoo.registry.v1');
type Store = Map<string, AnyPlugin>;
function store(): Store {
  const g = globalThis as Record<symbol, unknown>;
  let s = g[KEY] as Store | undefined;
  if (!s) {
    s = new Map();
    g[KEY] = s;
  }
  return s;
}

/** What a plugin, preset or run name may be: lower case, digits, `.`, `_`, `-`, not starting with a dot or a dash (no path can hide in it). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

/** Throw a RegistryError naming `what` unless `name` matches NAME_PATTERN. */
export function checkName(name: string, what: string): string {
  if (!NAME_PATTERN.test(name)) throw new RegistryError(`${what} must match ${NAME_PATTERN}, found ${JSON.stringify(name)}`, { field: what, found: name });
  return name;
}

function validatePlugin(p: AnyPlugin): void {
  const where = `plugin ${JSON.stringify((p as { name?: unknown })?.name)} from ${JSON.stringify((p as { package?: unknown })?.package)}`;
  if (!p || typeof p !== 'object') throw new RegistryError(`register: expected a plugin object, found ${typeof p}`);
  if (!PLUGIN_KINDS.includes(p.kind)) throw new RegistryError(`register: ${where} has kind ${JSON.stringify(p.kind)}; expected one of ${PLUGIN_KINDS.join(', ')}`);
  for (const f of ['name', 'version', 'package'] as const)
    if (typeof p[f] !== 'string' || !p[f]) throw new RegistryError(`register: ${where} needs a non-empty string field "${f}"`);
  if (!NAME_PATTERN.test(p.name))
    throw new RegistryError(`register: ${where}: name must match ${NAME_PATTERN} (it names run folders and report rows), found ${JSON.stringify(p.name)}`, { field: 'name', found: p.name });
  for (const preset of Object.keys((p as { presets?: object }).presets ?? {}))
    if (!NAME_PATTERN.test(preset))
      throw new RegistryError(`register: ${where}: preset names must match ${NAME_PATTERN}, found ${JSON.stringify(preset)}`, { field: 'presets', found: preset });
  if (p.task !== 'det' && p.task !== 'occ') throw new RegistryError(`register: ${where} has task ${JSON.stringify(p.task)}; expected "det" or "occ"`);
  if (typeof p.create !== 'function') throw new RegistryError(`register: ${where} has no create() factory`);
  if (!p.configSchema || typeof (p.configSchema as { safeParse?: unknown }).safeParse !== 'function')
    throw new RegistryError(`register: ${where} needs a zod configSchema`);
}

/** Put a plugin in the registry. The same plugin object twice is a no-op; another plugin with the same kind and name is an error. */
export function register(plugin: AnyPlugin): void {
  validatePlugin(plugin);
  const s = store();
  const id = pluginId(plugin);
  const existing = s.get(id);
  if (existing === plugin) return;
  if (existing)
    throw new RegistryError(
      `register: ${id} is already registered by ${existing.package}@${existing.version}; ` +
        `${plugin.package}@${plugin.version} registers another plugin with the same kind and name ` +
        `(two copies of one package installed? de-duplicate it, or rename the plugin)`,
      { id, existing: existing.package, incoming: plugin.package },
    );
  s.set(id, plugin);
}

/** Remove a plugin (tests, or a user replacing one deliberately). Returns whether it was there. */
export function unregister(kind: PluginKind, name: string): boolean {
  return store().delete(`${kind}:${name}`);
}

export function get<K extends PluginKind>(kind: K, name: string): PluginOf<K> {
  const p = store().get(`${kind}:${name}`);
  if (!p) {
    const known = list(kind).map((q) => q.name);
    throw new RegistryError(`no ${kind} named "${name}" is registered; registered ${kind}s: ${known.length ? known.join(', ') : '(none)'}`, { kind, name, known });
  }
  return p as PluginOf<K>;
}

export function has(kind: PluginKind, name: string): boolean {
  return store().has(`${kind}:${name}`);
}

/** Registered plugins, optionally of one kind, sorted by kind then name. */
export function list<K extends PluginKind>(kind?: K): PluginOf<K>[] {
  const all = [...store().values()].filter((p) => !kind || p.kind === kind);
  all.sort((a, b) => PLUGIN_KINDS.indexOf(a.kind) - PLUGIN_KINDS.indexOf(b.kind) || a.name.localeCompare(b.name));
  return all as PluginOf<K>[];
}
