/**
 * A folder a process works in (a matrix's `--out`, a run's folder) is locked while that process owns it: `bevzoo.lock`
 * in the folder holds the owner's pid. It is created atomically (a complete temporary file linked into place, which
 * fails if a lock is there), so two processes never both take a free folder and a lock is never half-written.
 * A lock whose process no longer runs (killed with SIGKILL, say) is stale and is taken over, with a log line. A lock
 * of another host (a shared file system) cannot be checked from here: it is refused, unless the caller knows its
 * holder is gone (a queue worker given a run whose previous worker stopped: `takeOverOtherHosts`).
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BevzooError, fileError, makeDir, pidAlive } from '@bevzoo/core';

export const LOCK_FILE = 'bevzoo.lock';

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  /** What holds it, e.g. `bevzoo matrix`. */
  command: string;
  started: string;
  /** The host of the process (absent in locks written before hosts were recorded: this host). */
  host?: string;
}

/** The folder is locked by another process that still runs. */
export class LockError extends BevzooError {}

export interface FolderLock {
  file: string;
  /** Remove the lock (if it is still this process's). Also done when the process exits. */
  release(): void;
}

function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return null; // gone meanwhile, or not ours to read: treated as stale
  }
}

/**
 * Take the lock of `dir` (created if missing) for this process. Refused with a `LockError` naming the holder's pid
 * when another running process holds it; a stale lock is taken over and logged. This process taking a folder it holds
 * already (a second in-process run) succeeds.
 */
export async function lockFolder(dir: string, command: string, log: (s: string) => void, opts: { takeOverOtherHosts?: boolean } = {}): Promise<FolderLock> {
  await makeDir(dir);
  const file = join(dir, LOCK_FILE);
  const host = hostname();
  const info: LockInfo = { pid: process.pid, command, started: new Date().toISOString(), host };
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  try {
    writeFileSync(tmp, `${JSON.stringify(info)}\n`);
    try {
      linkSync(tmp, file); // atomic; EEXIST when a lock is there
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = readLock(file);
      const elsewhere = held?.host !== undefined && held.host !== host;
      if (held && elsewhere && !opts.takeOverOtherHosts)
        throw new LockError(`${dir} is locked by ${held.command} on host ${held.host} (pid ${held.pid}, since ${held.started}); wait for it to finish or stop it, or remove ${file} if that host no longer runs it`, { dir, ...held });
      if (held && elsewhere) log(`${dir}: taking over the lock of ${held.command} on host ${held.host} (pid ${held.pid}): the queue gave this run to this worker`);
      else if (held && held.pid !== process.pid && pidAlive(held.pid))
        throw new LockError(`${dir} is locked by ${held.command} (pid ${held.pid}, since ${held.started}); wait for it to finish or stop it (${file})`, { dir, ...held });
      else if (held && held.pid !== process.pid) log(`${dir}: taking over the lock of ${held.command} (pid ${held.pid}), which no longer runs`);
      renameSync(tmp, file);
    }
  } catch (e) {
    throw fileError('write', file, e);
  } finally {
    rmSync(tmp, { force: true });
  }
  const release = (): void => {
    process.off('exit', release);
    const held = readLock(file);
    if (held?.pid === process.pid && (held.host ?? host) === host) rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, release };
}
