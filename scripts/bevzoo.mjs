#!/usr/bin/env node
// `pnpm bevzoo <args>`: build what the runner needs (turbo, cached), then run the built CLI.
// `--build-only <package>` builds a package and its dependencies and exits (used by bench scripts).
// A build that takes more than a moment (the first call, or after a change) says so on stderr.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let target = '@bevzoo/runner';
let buildOnly = false;
if (args[0] === '--build-only') {
  buildOnly = true;
  target = args[1] ?? target;
}
const turbo = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'turbo.cmd' : 'turbo');
const t0 = Date.now();
const build = spawn(turbo, ['run', 'build', `--filter=${target}...`, '--output-logs=errors-only', '--log-prefix=none'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', TURBO_NO_UPDATE_NOTIFIER: '1' },
});
let output = '';
build.stdout.on('data', (d) => (output += d));
build.stderr.on('data', (d) => (output += d));
// BEVZOO_BUILD_NOTICE_MS: after how long the notice shows (default 1500 ms; the test sets 0).
const noticeMs = Number(process.env.BEVZOO_BUILD_NOTICE_MS ?? 1500);
const notice = setTimeout(() => process.stderr.write(`bevzoo: building ${target} and the packages it needs (about a minute on the first call; cached afterwards)…\n`), noticeMs);
const status = await new Promise((res) => build.on('close', (code) => res(code ?? 1)));
clearTimeout(notice);
if (status !== 0) {
  process.stderr.write(output + `\nbevzoo: building ${target} failed (exit ${status})\n`);
  process.exit(status);
}
if (Date.now() - t0 > noticeMs) process.stderr.write(`bevzoo: built in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
if (buildOnly) process.exit(0);
const r = spawnSync(process.execPath, [join(root, 'apps', 'runner', 'dist', 'cli.js'), ...args], { cwd: process.env.INIT_CWD ?? process.cwd(), stdio: 'inherit' });
process.exit(r.status ?? (r.signal ? 1 : 0));
