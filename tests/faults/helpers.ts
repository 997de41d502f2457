/**
 * Fault tests run the built CLI (apps/runner/dist/cli.js: `pnpm build` first, as CI does) in child processes, so that
 * they can kill it, signal it and watch its own child runs. Everything a test spawns is killed in `killAll`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { pidAlive } from '@bevzoo/core';

export const CLI = fileURLToPath(new URL('../../apps/runner/dist/cli.js', import.meta.url));

/** Throws unless the CLI is built (the fault tests need real processes: the sources do not run under plain node). */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: the fault tests run the built CLI; build first (pnpm build)`);
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr so far. */
  output(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const spawned = new Set<ChildProcess>();

/** Start `bevzoo <args>` (its output collected). */
export function bevzoo(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  spawned.add(child);
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('close', (code, signal) => res({ code, signal })));
  return { child, pid: child.pid!, output: () => out, stderr: () => err, exited };
}

/** The pids of a process's children (Linux /proc), [] when it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every descendant of a process. */
function descendants(pid: number): number[] {
  return childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
}

/** Wait until `cond` holds, polling; throws after `ms` with `what` and the output of `proc`. */
export async function waitFor(cond: () => boolean, ms: number, what: string, proc?: Proc): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${proc ? `; output:\n${proc.output().slice(-3000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const alive = (pid: number) => pidAlive(pid);

/** SIGKILL every process the tests started that still runs, with its descendants (runs a killed matrix left). */
export function killAll(extra: number[] = []): void {
  const pids = [...[...spawned].flatMap((c) => (c.pid ? [...descendants(c.pid), c.pid] : [])), ...extra];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  spawned.clear();
}

/**
 * The hooks of a fault test file: the built CLI checked and a temporary folder (`root`) with the tiny synthetic
 * dataset (`dataDir`, for `--data-dir`) made before its tests, what they spawned killed after each, the folder
 * removed at the end. The fields are set once the file's tests start.
 */
export function faultSandbox(): { root: string; dataDir: string } {
  const box = { root: '', dataDir: '' };
  beforeAll(() => {
    requireBuiltCli();
    Object.assign(box, tinyDataDir());
  });
  afterEach(() => killAll());
  afterAll(() => rmSync(box.root, { recursive: true, force: true }));
  return box;
}

/** A temporary folder with the tiny synthetic dataset generated once (`--data-dir` for the CLI). */
function tinyDataDir(): { root: string; dataDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'bevzoo-faults-'));
  const dataDir = join(root, 'data');
  const r = spawnSync(process.execPath, [CLI, 'data', 'synth', '--preset', 'tiny', '--seed', '0', '--out', join(dataDir, 'synth-tiny-seed0')], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`generating the tiny dataset failed (exit ${r.status}): ${r.stderr}`);
  return { root, dataDir };
}

/**
 * Mount a tmpfs at `dir` (created) with mount options such as `size=256k` or `ro`. Returns null, or why the OS
 * refused (no privilege in this sandbox, say).
 */
export function mountTmpfs(dir: string, options: string): string | null {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? null : `mount -t tmpfs -o ${options} refused: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
}

export function unmount(dir: string): void {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`umount ${dir} failed: ${r.stderr.trim()}`);
  rmSync(dir, { recursive: true, force: true });
}

/** Why a tmpfs cannot be mounted here (null: it can), found by trying once. */
export function tmpfsRefused(): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'bevzoo-mount-probe-'));
  const why = mountTmpfs(dir, 'size=64k');
  if (!why) spawnSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
  return why;
}
