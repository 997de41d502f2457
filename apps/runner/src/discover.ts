import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import type { PluginKind } from '@bevzoo/core';

export interface DiscoveredPackage {
  name: string;
  dir: string;
  kind: PluginKind;
  version?: string;
  /** Why it was loaded: `dependency of <project>` or `--plugin`. */
  from: string;
}

/** A plugin package or file that was imported, or failed to import. */
export interface PluginLoad {
  name: string;
  /** Where it was loaded from (its folder or file). */
  dir: string;
  version?: string;
  from: string;
  error?: string;
}

const loads: PluginLoad[] = [];

/** What `loadPlugins` imported in this process (and what failed), for `bevzoo list`. */
export function loadedPlugins(): readonly PluginLoad[] {
  return loads;
}

/** node_modules folders from `start` up to the filesystem root. */
function nodeModulesChain(start: string): string[] {
  const dirs: string[] = [];
  let d = resolve(start);
  for (;;) {
    const nm = join(d, 'node_modules');
    if (existsSync(nm)) dirs.push(nm);
    const up = dirname(d);
    if (up === d) return dirs;
    d = up;
  }
}

interface Manifest {
  name?: string;
  version?: string;
  bevzoo?: { kind?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** The folder of the nearest package.json at or above `start` (the project a command runs in). */
export function projectRoot(start: string): string | undefined {
  let d = resolve(start);
  for (;;) {
    if (existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

/**
 * The plugin packages among the dependencies of the projects at or above each of `from` (the nearest package.json
 * of each: the user's project, and the runner's own package): the dependencies, dev and optional dependencies
 * whose package.json says `"bevzoo": {"kind": ...}`, resolved through node_modules as Node resolves them. Packages
 * that merely sit in a node_modules folder are not plugins of the project, and are not imported.
 */
export function findInstalledPlugins(from: string[]): DiscoveredPackage[] {
  const seen = new Map<string, DiscoveredPackage>();
  for (const start of from) {
    const root = projectRoot(start);
    const m = root ? readManifest(root) : undefined;
    if (!root || !m) continue;
    const deps = Object.keys({ ...m.dependencies, ...m.devDependencies, ...m.optionalDependencies });
    const chain = nodeModulesChain(root);
    for (const dep of deps) {
      if (seen.has(dep)) continue;
      const dir = chain.map((nm) => join(nm, dep)).find((d) => existsSync(join(d, 'package.json')));
      const dm = dir ? readManifest(dir) : undefined;
      const kind = dm?.bevzoo?.kind;
      if (dir && dm?.name && (kind === 'teacher' || kind === 'student' || kind === 'distiller'))
        seen.set(dep, { name: dm.name, dir, kind, version: dm.version, from: `dependency of ${m.name ?? root}` });
    }
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function safeReaddir(d: string): string[] {
  try {
    return statSync(d).isDirectory() ? readdirSync(d) : [];
  } catch {
    return [];
  }
}

/** The ESM entry of a package directory, preferring sources when BEVZOO_SOURCE=1 (tests, development). */
export function packageEntry(dir: string): string {
  const m = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const exp = m.exports?.['.'] ?? m.exports;
  const conds = process.env.BEVZOO_SOURCE === '1' ? ['@bevzoo/source', 'import', 'default'] : ['import', 'default'];
  const pickEntry = (e: unknown): string | undefined => {
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object') for (const c of conds) if (c in e) { const r = pickEntry((e as Record<string, unknown>)[c]); if (r) return r; }
    return undefined;
  };
  const rel = pickEntry(exp) ?? m.module ?? m.main ?? 'index.js';
  return join(dir, rel);
}

/** Load a plugin package by name (resolved from the working directory, then beside the runner) or by path. */
export async function loadPlugin(spec: string, cwd = process.cwd()): Promise<void> {
  let dir: string | undefined;
  if (spec.startsWith('.') || isAbsolute(spec)) {
    const p = resolve(cwd, spec);
    if (!existsSync(p)) throw new Error(`--plugin ${spec}: ${p} does not exist`);
    if (statSync(p).isFile()) return importPlugin(spec, p, dirname(p));
    dir = p;
  } else {
    for (const base of [cwd, dirname(new URL(import.meta.url).pathname)]) {
      try {
        dir = dirname(createRequire(join(base, 'noop.js')).resolve(`${spec}/package.json`));
        break;
      } catch {
        /* next */
      }
    }
    if (!dir) throw new Error(`--plugin ${spec}: package not found from ${cwd} (install it beside the runner, or pass a path)`);
  }
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`--plugin ${spec}: ${dir} has no package.json`);
  const entry = packageEntry(dir);
  if (!existsSync(entry)) throw new Error(`--plugin ${spec}: its entry ${entry} does not exist (is the package built?)`);
  await importPlugin(spec, entry, dir);
}

async function importPlugin(spec: string, file: string, dir: string): Promise<void> {
  try {
    await import(pathToFileURL(file).href);
  } catch (e) {
    throw unresolvedPeer(spec, dir, e);
  }
}

/**
 * A plugin whose own imports (its peer dependencies: @bevzoo/core, tfjs-core...) do not resolve: Node looks for them
 * in node_modules folders from the plugin's folder upwards, so the plugin must sit inside the project that installs
 * them (or have them installed beside it). Other errors pass through.
 */
function unresolvedPeer(spec: string, dir: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  const missing = err?.code === 'ERR_MODULE_NOT_FOUND' ? /Cannot find package '([^']+)'/.exec(err.message)?.[1] : undefined;
  if (!missing) return e;
  return new Error(
    `--plugin ${spec}: it imports ${missing}, which Node cannot find from ${dir} upwards. A plugin's peer dependencies ` +
      `(@bevzoo/core, @tensorflow/tfjs-core, ...) come from the project that runs it: \`npm install ${missing}\` in your project, ` +
      `and keep the plugin's folder inside that project (e.g. ./my-student), or install the plugin into it (npm install ./path/to/plugin).`,
  );
}

/**
 * Import the plugin packages the project depends on (see `findInstalledPlugins`) and the `--plugin` ones. A plugin
 * that fails to import is reported (name, where from, its error) and the others still load.
 */
export async function loadPlugins(extra: string[] = [], opts: { cwd?: string; from?: string[] } = {}): Promise<{ loaded: PluginLoad[]; failed: PluginLoad[] }> {
  const cwd = opts.cwd ?? process.cwd();
  const here = dirname(fileURLToPath(import.meta.url));
  const done: PluginLoad[] = [];
  for (const p of findInstalledPlugins(opts.from ?? [cwd, here])) {
    const rec: PluginLoad = { name: p.name, dir: p.dir, version: p.version, from: p.from };
    try {
      await import(pathToFileURL(packageEntry(p.dir)).href);
    } catch (e) {
      rec.error = (e as Error).message;
    }
    done.push(rec);
  }
  for (const spec of extra) {
    const rec: PluginLoad = { name: spec, dir: spec.startsWith('.') || isAbsolute(spec) ? resolve(cwd, spec) : spec, from: '--plugin' };
    try {
      await loadPlugin(spec, cwd);
    } catch (e) {
      rec.error = (e as Error).message;
    }
    done.push(rec);
  }
  loads.push(...done);
  return { loaded: done.filter((d) => !d.error), failed: done.filter((d) => d.error) };
}
