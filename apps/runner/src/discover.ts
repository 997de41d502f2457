import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import type { PluginKind } from '@bevzoo/core';

export interface DiscoveredPackage {
  name: string;
  dir: string;
  kind: PluginKind;
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

function readManifest(dir: string): { name?: string; bevzoo?: { kind?: string } } | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Plugin packages installed beside the runner (and in the working directory): those whose package.json has `"bevzoo": {"kind": ...}`. */
export function findInstalledPlugins(from: string[]): DiscoveredPackage[] {
  const seen = new Map<string, DiscoveredPackage>();
  for (const nm of [...new Set(from.flatMap(nodeModulesChain))]) {
    for (const entry of safeReaddir(nm)) {
      const dirs = entry.startsWith('@') ? safeReaddir(join(nm, entry)).map((e) => join(nm, entry, e)) : [join(nm, entry)];
      for (const dir of dirs) {
        const m = readManifest(dir);
        const kind = m?.bevzoo?.kind;
        if (m?.name && (kind === 'teacher' || kind === 'student' || kind === 'distiller') && !seen.has(m.name)) seen.set(m.name, { name: m.name, dir, kind });
      }
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
    if (statSync(p).isFile()) {
      await import(pathToFileURL(p).href);
      return;
    }
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
  await import(pathToFileURL(entry).href);
}

/** Import every installed plugin package and the extra --plugin ones; returns what registered. */
export async function loadPlugins(extra: string[] = [], opts: { cwd?: string; from?: string[] } = {}): Promise<{ loaded: string[]; failed: { name: string; error: string }[] }> {
  const cwd = opts.cwd ?? process.cwd();
  const here = dirname(new URL(import.meta.url).pathname);
  const loaded: string[] = [];
  const failed: { name: string; error: string }[] = [];
  for (const p of findInstalledPlugins(opts.from ?? [here, cwd])) {
    try {
      await import(pathToFileURL(packageEntry(p.dir)).href);
      loaded.push(p.name);
    } catch (e) {
      failed.push({ name: p.name, error: (e as Error).message });
    }
  }
  for (const spec of extra) {
    await loadPlugin(spec, cwd);
    loaded.push(spec);
  }
  return { loaded, failed };
}
