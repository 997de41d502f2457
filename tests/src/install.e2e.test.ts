/**
 * What a new user does, from packed tarballs (`pnpm pack`, so that versions replace the `workspace:` ranges): in an
 * empty folder, `npm install` of the runner and one student, with the third-party packages from the registry, is
 * enough for `npx bevzoo list` and `npx bevzoo train student bevdet --preset tiny`. Then a student in a folder of
 * its own (examples/student-oft, packed and unpacked into the project, with no node_modules of its own: its peer
 * dependencies resolve from the project) loads with `--plugin ./my-student` and trains.
 *
 * Needs the built packages (`pnpm test` builds them) and the npm registry (as CI's install does).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pnpmVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager as string;
/** The runner's dependencies, the one student, and the outside plugin (unpacked, not installed). */
const SUBSET = ['packages/core', 'packages/engine', 'packages/nn', 'packages/nuscenes', 'packages/eval', 'apps/runner', 'packages/students/bevdet'];
const OUTSIDE = 'examples/student-oft';

// A user's environment: none of the workspace's development switches; no native build at install (the addon's own
// build is tested in CI's install), no onnxruntime download.
const env: NodeJS.ProcessEnv = { ...process.env, BEVZOO_NATIVE_BUILD: '0', ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
for (const k of ['BEVZOO_SOURCE', 'NODE_OPTIONS', 'VITEST', 'INIT_CWD', 'npm_config_user_agent']) delete env[k];

function run(cmd: string, args: string[], cwd: string, timeout = 300_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

let tmp: string;
let tarballs: Record<string, string>;
let project: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bevzoo-install-'));
  const packs = join(tmp, 'packs');
  mkdirSync(packs);
  tarballs = {};
  for (const dir of [...SUBSET, OUTSIDE]) {
    if (!existsSync(join(root, dir, 'dist'))) throw new Error(`${dir} is not built: run \`pnpm build\` (\`pnpm test\` builds it)`);
    const before = new Set(readdirSync(packs));
    run('npx', ['-y', pnpmVersion, 'pack', '--pack-destination', packs], join(root, dir));
    const made = readdirSync(packs).filter((f) => !before.has(f));
    expect(made).toHaveLength(1);
    tarballs[dir] = join(packs, made[0]!);
  }
  project = join(tmp, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-bev-project', private: true, type: 'module' }, null, 2));
  run('npm', ['install', '--no-audit', '--no-fund', ...SUBSET.map((d) => tarballs[d]!)], project);
}, 600_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The package.json and the file list of a tarball. */
function tarball(dir: string): { manifest: Record<string, unknown>; files: string[] } {
  const files = run('tar', ['tzf', tarballs[dir]!], tmp).stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  const manifest = JSON.parse(run('tar', ['xzf', tarballs[dir]!, '-O', 'package/package.json'], tmp).stdout);
  return { manifest, files };
}

describe('install only what you need, from tarballs', () => {
  it('packs what users need: built code, types, README, LICENSE; versions instead of workspace ranges; the metadata', () => {
    for (const dir of [...SUBSET, OUTSIDE]) {
      const { manifest, files } = tarball(dir);
      expect(files, dir).toContain('LICENSE');
      expect(files, dir).toContain('README.md');
      expect(files.filter((f) => f.startsWith('src/') || f.endsWith('.map') || /\.test\./.test(f) || /(^|\/)bench/.test(f)), dir).toEqual([]);
      expect(JSON.stringify(manifest), dir).not.toContain('workspace:');
      expect(manifest.license, dir).toBe('Apache-2.0');
      for (const f of ['repository', 'homepage', 'bugs', 'keywords']) expect(manifest[f], `${dir}: ${f}`).toBeTruthy();
    }
    const runner = tarball('apps/runner').manifest as { dependencies: Record<string, string> };
    expect(Object.keys(runner.dependencies).filter((d) => d.startsWith('@bevzoo/')).sort()).toEqual(['@bevzoo/core', '@bevzoo/engine', '@bevzoo/eval', '@bevzoo/nn', '@bevzoo/nuscenes']);
  });

  it('`npx bevzoo list` finds the one student the project depends on', () => {
    const out = run('npx', ['--no-install', 'bevzoo', 'list'], project).stdout;
    expect(out).toContain('@bevzoo/student-bevdet@');
    expect(out).toMatch(/students \(1\):\s*\n\s*bevdet\s+det/);
    expect(out).toContain('teachers (0)');
    expect(out).not.toMatch(/bevdepth|bevformer|centerpoint|distillbev/);
    expect(existsSync(join(project, 'node_modules', '@bevzoo', 'student-bevdepth'))).toBe(false);
  });

  it('`npx bevzoo train student bevdet --preset tiny` trains and evaluates', () => {
    const r = run('npx', ['--no-install', 'bevzoo', 'train', 'student', 'bevdet', '--preset', 'tiny'], project);
    const out = join(project, 'runs', 'train-student-bevdet-tiny');
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
    expect(result.metrics.nd_score).toBeGreaterThanOrEqual(0);
    expect(result.train.steps).toBeGreaterThan(0);
    expect(r.stdout + r.stderr).toMatch(/NDS/);
  });

  it('a student in a folder of its own loads with --plugin ./my-student and trains', () => {
    const dir = join(project, 'my-student');
    mkdirSync(dir);
    run('tar', ['xzf', tarballs[OUTSIDE]!, '-C', dir, '--strip-components=1'], tmp);
    const m = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(Object.keys(m.peerDependencies)).toContain('@bevzoo/core');
    expect(m.dependencies ?? {}).toEqual({});
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);

    const list = run('npx', ['--no-install', 'bevzoo', 'list', '--plugin', './my-student'], project).stdout;
    expect(list).toMatch(/students \(2\)/);
    expect(list).toMatch(/\n\s*oft\s+det\s+bevzoo-student-oft@/);

    // The same folder outside the project: its peers do not resolve, and the error says why and what to do.
    const elsewhere = join(tmp, 'elsewhere', 'my-student');
    mkdirSync(elsewhere, { recursive: true });
    run('tar', ['xzf', tarballs[OUTSIDE]!, '-C', elsewhere, '--strip-components=1'], tmp);
    const lost = spawnSync('npx', ['--no-install', 'bevzoo', 'list', '--plugin', elsewhere], { cwd: project, env, encoding: 'utf8' });
    expect(lost.stdout + lost.stderr).toMatch(/imports @bevzoo\/core, which Node cannot find from .*elsewhere\/my-student upwards/);

    run('npx', ['--no-install', 'bevzoo', 'train', 'student', 'oft', '--plugin', './my-student', '--preset', 'tiny', '--steps', '10'], project);
    const result = JSON.parse(readFileSync(join(project, 'runs', 'train-student-oft-tiny', 'result.json'), 'utf8'));
    expect(result.train.steps).toBe(10);
    expect(Number.isFinite(result.metrics.nd_score)).toBe(true);
  });
});
