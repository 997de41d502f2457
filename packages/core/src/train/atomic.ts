/**
 * Files written whole (checkpoints, weights, results, reports) go through `writeFileAtomic`: a temporary file beside
 * the target (`<file>.tmp-<pid>-<random>`), fsync-ed and renamed over it, so a reader sees the old file or the new
 * one, never half of one. A process killed mid-write leaves its temporary file; `removeStaleTemps` clears those of
 * dead processes. File-system failures surface as a `FileError`: `cannot write <path> (ENOSPC: no space left on device)`.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, promises as fsp, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { BevzooError } from '../errors.js';

/** A file-system operation that failed; the message names the operation, the path and the system error. */
export class FileError extends BevzooError {
  constructor(readonly op: string, readonly path: string, readonly code: string, cause: unknown) {
    super(`cannot ${op} ${path} (${code}: ${/^[A-Z0-9]+: ([^,]+)/.exec((cause as Error).message)?.[1] ?? (cause as Error).message})`, { op, path, code });
    this.cause = cause;
  }
}

/** A system error (one with an errno code such as ENOSPC) as a `FileError` for `op` on `file`; any other error unchanged. */
export function fileError(op: string, file: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return e instanceof FileError || typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code) ? e : new FileError(op, file, code, e);
}

/**
 * Create a folder and its parents. Node's recursive mkdir says ENOENT where a parent cannot be written (a read-only
 * file system, say): the first missing folder is then created alone, for the real reason.
 */
export async function makeDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    let first = path.resolve(dir);
    while (path.dirname(first) !== first && !existsSync(path.dirname(first))) first = path.dirname(first);
    throw fileError('create folder', first, await fsp.mkdir(first).then(() => e, (real: unknown) => real));
  }
}

/**
 * Write a file atomically: the text or the chunks go to a temporary file beside `file`, which is fsync-ed and renamed
 * over it. If anything fails (including the chunk source throwing), the temporary file is removed and any old file
 * stays; a file-system failure is thrown as a `FileError` naming `file`.
 */
export async function writeFileAtomic(file: string, content: string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
  const chunks = typeof content === 'string' ? [new TextEncoder().encode(content)] : content;
  await makeDir(path.dirname(path.resolve(file)));
  const io = <T>(p: Promise<T>): Promise<T> => p.catch((e: unknown) => Promise.reject(fileError('write', file, e)));
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fh = await io(fsp.open(tmp, 'w'));
  let closed = false;
  try {
    for await (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += (await io(fh.write(c, off, c.byteLength - off))).bytesWritten;
    }
    await io(fh.sync());
    closed = true;
    await io(fh.close());
    await io(fsp.rename(tmp, file));
  } catch (e) {
    if (!closed) await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * `writeFileAtomic` for synchronous callers (the evaluation CLI's reports): the same temporary file, fsync and rename,
 * the same cleanup and `FileError`s. Chunks may be strings (UTF-8) or bytes, so a large file streams out piece by piece.
 */
export function writeFileAtomicSync(file: string, content: string | Uint8Array | Iterable<string | Uint8Array>): void {
  const chunks: Iterable<string | Uint8Array> = typeof content === 'string' || content instanceof Uint8Array ? [content] : content;
  const io = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw fileError('write', file, e);
    }
  };
  const dir = path.dirname(path.resolve(file));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw fileError('create folder', dir, e);
  }
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = io(() => openSync(tmp, 'w'));
  let closed = false;
  try {
    for (const c of chunks) {
      const bytes = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
      let off = 0;
      while (off < bytes.byteLength) off += io(() => writeSync(fd, bytes, off, bytes.byteLength - off));
    }
    io(() => fsyncSync(fd));
    closed = true;
    io(() => closeSync(fd));
    io(() => renameSync(tmp, file));
  } catch (e) {
    if (!closed) try { closeSync(fd); } catch { /* already failing */ }
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Whether a process runs (a zombie, killed but not yet reaped, does not). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // it exists, owned by another user
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (not Linux): kill(0) answered
  }
}

const TEMP = /\.tmp-(\d+)(?:-[a-z0-9]+)?$/;

/**
 * Remove the temporary files (and folders) that writers of a process which no longer runs left in `dir` (named
 * `<target>.tmp-<pid>[-<random>]`, as `writeFileAtomic` names them); with `recursive`, in its sub-folders too.
 * Returns the paths removed. A missing folder is fine.
 */
export async function removeStaleTemps(dir: string, opts: { recursive?: boolean } = {}): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    const m = TEMP.exec(e.name);
    if (m && !pidAlive(Number(m[1]))) {
      await fsp.rm(p, { recursive: true, force: true }).catch((err: unknown) => Promise.reject(fileError('remove', p, err)));
      removed.push(p);
    } else if (opts.recursive && e.isDirectory()) removed.push(...(await removeStaleTemps(p, opts)));
  }
  return removed;
}
