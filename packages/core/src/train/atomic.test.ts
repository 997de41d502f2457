import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BevzooError } from '../errors.js';
import { FileError, fileError, makeDir, pidAlive, removeStaleTemps, writeFileAtomic, writeFileAtomicSync } from './atomic.js';

const made: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bevzoo-atomic-'));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('file errors', () => {
  it('say the operation, the path and the system error in one line', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'plain'), 'a file, not a folder');
    const e = await writeFileAtomic(path.join(dir, 'plain', 'sub', 'x.json'), '{}').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(FileError);
    expect(e).toBeInstanceOf(BevzooError);
    expect((e as Error).message).toBe(`cannot create folder ${path.join(dir, 'plain', 'sub')} (ENOTDIR: not a directory)`);
    await expect(makeDir(path.join(dir, 'plain', 'sub'))).rejects.toThrow(FileError);
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write '/x/y'"), { code: 'ENOSPC' });
    expect((fileError('write', '/x/y/results.json', enospc) as Error).message).toBe('cannot write /x/y/results.json (ENOSPC: no space left on device)');
    const other = new Error('not a system error');
    expect(fileError('write', '/x', other)).toBe(other);
  });
});

describe('removeStaleTemps', () => {
  it("removes the temporary files of dead processes, in sub-folders too, and keeps a live writer's and everything else", async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'checkpoints'));
    const dead = deadPid();
    expect(pidAlive(dead)).toBe(false);
    expect(pidAlive(process.pid)).toBe(true);
    const stale = [`result.json.tmp-${dead}-k2j4`, `checkpoints/step_0000004.safetensors.tmp-${dead}-zz01`, `data.tmp-${dead}`];
    const kept = [`model.safetensors.tmp-${process.pid}-live1`, 'result.json', 'checkpoints/step_0000002.safetensors', 'notes.tmp-text'];
    for (const f of [...stale, ...kept]) writeFileSync(path.join(dir, f), 'x');
    const removed = await removeStaleTemps(dir, { recursive: true });
    expect(removed.map((p) => path.relative(dir, p)).sort()).toEqual([...stale].sort());
    expect([...readdirSync(dir), ...readdirSync(path.join(dir, 'checkpoints')).map((n) => `checkpoints/${n}`)].sort()).toEqual(['checkpoints', ...kept].sort());
    expect(await removeStaleTemps(path.join(dir, 'missing'))).toEqual([]);
  });
});

describe('writeFileAtomicSync', () => {
  it('writes text, bytes or streamed chunks whole, and on a failure keeps the old file and no temporary one', () => {
    const dir = tmp();
    const f = path.join(dir, 'sub', 'r.json');
    writeFileAtomicSync(f, 'old');
    writeFileAtomicSync(f, (function* () {
      yield '{"a": ';
      yield new TextEncoder().encode('[1, 2]');
      yield '}';
    })());
    expect(readFileSync(f, 'utf8')).toBe('{"a": [1, 2]}');
    writeFileAtomicSync(f, new Uint8Array([104, 105]));
    expect(readFileSync(f, 'utf8')).toBe('hi');
    const failing = (function* () {
      yield 'half';
      throw new Error('source failed');
    })();
    expect(() => writeFileAtomicSync(f, failing)).toThrow('source failed');
    expect(readFileSync(f, 'utf8')).toBe('hi');
    expect(readdirSync(path.join(dir, 'sub'))).toEqual(['r.json']);
    writeFileSync(path.join(dir, 'plain'), 'x');
    expect(() => writeFileAtomicSync(path.join(dir, 'plain', 'x.json'), '{}')).toThrow(FileError);
  });
});
