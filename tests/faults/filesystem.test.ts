/**
 * File-system faults, made for real: a read-only file system (a tmpfs mounted `ro`: the tests run as root, which
 * permission bits do not stop), a full disk (a tmpfs of 256 KiB) and a missing data root. Each gives one line naming
 * the path and the operation, exit code 1, and leaves nothing half-written. Where the OS refuses to mount a tmpfs
 * (an unprivileged container), the mount cases are skipped with that reason and the same failures are injected
 * in-process instead (BEVZOO_FAULTS_NO_MOUNT=1 forces that).
 */
import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { FileError, writeFileAtomic, writeSafetensors } from '@bevzoo/core';
import { bevzoo, faultSandbox, mountTmpfs, tmpfsRefused, unmount } from './helpers.js';

const refused = process.env.BEVZOO_FAULTS_NO_MOUNT ? 'BEVZOO_FAULTS_NO_MOUNT is set' : tmpfsRefused();
const box = faultSandbox();
const mounts: string[] = [];
afterEach(() => void vi.restoreAllMocks());
afterAll(() => mounts.forEach(unmount)); // before the sandbox's folder is removed (after-hooks run in reverse order)

function mount(name: string, options: string): string {
  const dir = join(box.root, name);
  const why = mountTmpfs(dir, options);
  if (why) throw new Error(why);
  mounts.push(dir);
  return dir;
}

/** Every file under a folder, relative to it. */
function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).sort();
}

/** Exit code 1 and the error as the last line of stderr, no stack trace. */
async function failsWith(args: string[], line: string): Promise<void> {
  const p = bevzoo(args);
  const r = await p.exited;
  expect(r.code, p.output()).toBe(1);
  expect(p.stderr().trim().split('\n').at(-1)).toBe(line);
  expect(p.stderr()).not.toMatch(/^\s+at /m);
}

const train = (out: string, ...more: string[]) => ['train', 'student', 'bevdet', '--preset', 'tiny', '--steps', '2', '--out', out, '--data-dir', box.dataDir, ...more];
const skipReason = refused ? ` (skipped: ${refused})` : '';

describe('file-system faults', () => {
  it.skipIf(refused)(`a read-only file system: matrix --out and a run folder on it say which path could not be written${skipReason}`, async () => {
    const ro = mount('ro', 'ro,size=64k');
    await failsWith(['matrix', '--preset', 'tiny', '--students', 'bevdet', '--teachers', 'centerpoint', '--distillers', 'distillbev', '--out', join(ro, 'm'), '--data-dir', box.dataDir],
      `bevzoo matrix: cannot create folder ${join(ro, 'm')} (EROFS: read-only file system)`);
    await failsWith(train(ro), `bevzoo train: cannot write ${join(ro, 'bevzoo.lock')} (EROFS: read-only file system)`);
    expect(files(ro)).toEqual([]);
  }, 120_000);

  it.skipIf(refused)(`a full disk: the weights that do not fit are named, and nothing half-written or stale stays${skipReason}`, async () => {
    const small = mount('full', 'size=256k');
    await failsWith(train(small), `bevzoo train: cannot write ${join(small, 'model.safetensors')} (ENOSPC: no space left on device)`);
    // The run got as far as its log; no temporary file, no partial weights, no result, no lock.
    expect(files(small)).toEqual(['train.jsonl']);
  }, 120_000);

  // The real faults cannot be made here: inject them into the one helper every whole-file write goes through.
  it.runIf(refused)(`(injected, where the OS refuses the mounts${refused ? `: ${refused}` : ''}) a full disk and a read-only folder: the path is named, nothing half-written stays`, async () => {
    const dir = join(box.root, 'injected');
    const sysError = (code: string, text: string, syscall: string) => Object.assign(new Error(`${code}: ${text}, ${syscall}`), { code, syscall });
    const open = fsp.open.bind(fsp);
    vi.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
      const fh = await open(...args);
      fh.write = (async () => Promise.reject(sysError('ENOSPC', 'no space left on device', 'write'))) as typeof fh.write;
      return fh;
    });
    const weights = join(dir, 'model.safetensors');
    const e = await writeSafetensors(weights, { w: { dtype: 'float32', shape: [256], data: new Float32Array(256) } }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(FileError);
    expect((e as Error).message).toBe(`cannot write ${weights} (ENOSPC: no space left on device)`);
    expect(readdirSync(dir)).toEqual([]);
    vi.restoreAllMocks();
    vi.spyOn(fsp, 'mkdir').mockImplementation(async () => Promise.reject(sysError('EROFS', 'read-only file system', 'mkdir')));
    await expect(writeFileAtomic(join(dir, 'm', 'results.json'), '{}')).rejects.toThrow(`cannot create folder ${join(dir, 'm')} (EROFS: read-only file system)`);
  });

  it('a missing data root is named', async () => {
    // Refused as a usage error (exit 2) or by the reader (exit 1): either way one line that names the folder.
    const missing = join(box.root, 'no-such-dataset');
    const p = bevzoo(train(join(box.root, 'run'), '--dataroot', missing));
    expect((await p.exited).code).not.toBe(0);
    expect(p.stderr().trim().split('\n').at(-1)).toMatch(new RegExp(`^bevzoo( train)?: .*${missing}`));
    expect(p.stderr()).not.toMatch(/^\s+at /m);
    expect(existsSync(join(box.root, 'run'))).toBe(false);
  }, 120_000);
});
