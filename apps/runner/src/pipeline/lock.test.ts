import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, LockError, lockFolder } from './lock.js';

const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
afterAll(() => void holder.kill('SIGKILL'));

describe('lockFolder', () => {
  it('refuses a folder another running process holds, naming its pid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-lock-'));
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: holder.pid, command: 'bevzoo matrix', started: '2025-01-01T00:00:00.000Z' }));
    const e = await lockFolder(dir, 'bevzoo matrix', () => {}).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(LockError);
    expect((e as Error).message).toContain(`${dir} is locked by bevzoo matrix (pid ${holder.pid}`);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(holder.pid);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]); // no temporary file left
  });

  it('takes over the lock of a process that no longer runs, with a log line, and releases it', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'bevzoo-lock-')), 'new', 'out');
    const first = await lockFolder(dir, 'bevzoo matrix', () => {}); // creates the folder
    expect(JSON.parse(readFileSync(first.file, 'utf8'))).toMatchObject({ pid: process.pid, command: 'bevzoo matrix' });
    first.release();
    expect(existsSync(first.file)).toBe(false);
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: dead, command: 'bevzoo run x', started: '2025-01-01T00:00:00.000Z' }));
    const logs: string[] = [];
    const lock = await lockFolder(dir, 'bevzoo matrix', (s) => logs.push(s));
    expect(logs).toEqual([`${dir}: taking over the lock of bevzoo run x (pid ${dead}), which no longer runs`]);
    expect(JSON.parse(readFileSync(lock.file, 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses another host's lock (its process cannot be checked from here) unless a queue worker takes it over", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-lock-'));
    const theirs = { pid: process.pid + 1, command: 'bevzoo run baseline-x', started: '2025-01-01T00:00:00.000Z', host: 'other-machine' };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(theirs));
    await expect(lockFolder(dir, 'bevzoo run baseline-x', () => {})).rejects.toThrow(`${dir} is locked by bevzoo run baseline-x on host other-machine (pid ${theirs.pid}`);
    const logs: string[] = [];
    const lock = await lockFolder(dir, 'bevzoo run baseline-x', (s) => logs.push(s), { takeOverOtherHosts: true });
    expect(logs).toEqual([`${dir}: taking over the lock of bevzoo run baseline-x on host other-machine (pid ${theirs.pid}): the queue gave this run to this worker`]);
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });
});
