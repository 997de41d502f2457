#!/usr/bin/env node
// `pnpm bevzoo <args>`: build what the runner needs (turbo, cached), then run the built CLI.
// `--build-only <package>` builds a package and its dependencies and exits (used by bench scripts).
import { spawnSync } from 'node:child_process';
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
const b = spawnSync(turbo, ['run', 'build', `--filter=${target}...`, '--output-logs=errors-only', '--log-prefix=none'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', TURBO_NO_UPDATE_NOTIFIER: '1' },
});
if (b.status !== 0) {
  process.stderr.write(b.stdout + b.stderr + `\nbevzoo: building ${target} failed (exit ${b.status})\n`);
  process.exit(b.status ?? 1);
}
if (buildOnly) process.exit(0);
const r = spawnSync(process.execPath, [join(root, 'apps', 'runner', 'dist', 'cli.js'), ...args], { cwd: process.env.INIT_CWD ?? process.cwd(), stdio: 'inherit' });
process.exit(r.status ?? (r.signal ? 1 : 0));
