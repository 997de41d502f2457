/** The command line: strict options with suggestions, value checks, per-command help, --version, a closed pipe. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { commandHelp, nearest, parseCommandArgs, UsageError } from './args.js';
import { COMMAND_SPECS } from './commands/specs.js';
import { loadedPlugins } from './discover.js';
import { main } from './main.js';
import { runDir } from './pipeline/plan.js';
import pkg from '../package.json' with { type: 'json' };
import rootPkg from '../../../package.json' with { type: 'json' };

const parse = (argv: string[]) => parseCommandArgs(COMMAND_SPECS[argv[0]!]!, argv);

/** Run main() with stdout and stderr captured. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('options', () => {
  it('parses values, booleans and repeatable options of the command', () => {
    const a = parse(['matrix', '--preset', 'tiny', '--seeds=3', '--set', 'a.b=1', '--set', 'c=x', '--retrain-teachers', '--plugin', './p.mjs']);
    expect(a.positionals).toEqual(['matrix']);
    expect(a.flags).toEqual({ preset: 'tiny', seeds: '3', 'retrain-teachers': true });
    expect(a.lists).toEqual({ set: ['a.b=1', 'c=x'], plugin: ['./p.mjs'] });
    expect(parse(['train', 'student', 'cam-s', '--seed', '4']).positionals).toEqual(['train', 'student', 'cam-s']);
  });

  it('refuses an unknown option, naming it and the nearest valid one', () => {
    expect(() => parse(['train', 'student', 'cam-s', '--sead', '1'])).toThrow(/unknown option --sead for "bevzoo train" — did you mean --seed\?/);
    expect(() => parse(['matrix', '--sead', '1'])).toThrow(/did you mean --seeds\?/);
    expect(() => parse(['matrix', '--stepz', '5'])).toThrow(/unknown option --stepz .*did you mean --steps\?/);
    expect(() => parse(['matrix', '--zzzzzzzz'])).toThrow(/unknown option --zzzzzzzz for "bevzoo matrix" \(bevzoo matrix --help/);
    expect(() => parse(['list', '-x'])).toThrow(UsageError);
    expect(nearest('matrx', Object.keys(COMMAND_SPECS))).toBe('matrix');
  });

  it('checks values: integers and their ranges, choices, existing files, a value where one is needed', () => {
    expect(() => parse(['matrix', '--steps', '0'])).toThrow('--steps expects an integer ≥ 1, got "0"');
    expect(() => parse(['matrix', '--steps', '-3'])).toThrow(UsageError);
    expect(() => parse(['matrix', '--seeds', '1.5'])).toThrow('--seeds expects an integer ≥ 1, got "1.5"');
    expect(() => parse(['train', 'student', 'x', '--seed', 'one'])).toThrow('--seed expects an integer ≥ 0, got "one"');
    expect(() => parse(['matrix', '--parallel', '0'])).toThrow(/--parallel expects an integer ≥ 1/);
    expect(() => parse(['matrix', '--backend', 'gpu'])).toThrow('--backend expects one of auto, wasm, cpu, tensorflow, tensorflow-gpu, got "gpu"');
    expect(() => parse(['distill', '--teacher-checkpoint', '/nonexistent/t.safetensors'])).toThrow(/--teacher-checkpoint expects an existing file \(\/nonexistent\/t.safetensors does not exist\)/);
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-args-'));
    expect(() => parse(['distill', '--teacher-checkpoint', dir])).toThrow(/expects a file/);
    expect(() => parse(['matrix', '--dataroot', join(dir, 'none')])).toThrow(/--dataroot expects an existing folder/);
    writeFileSync(join(dir, 'f'), 'x');
    expect(parse(['distill', '--teacher-checkpoint', join(dir, 'f')]).flags['teacher-checkpoint']).toBe(join(dir, 'f'));
    expect(() => parse(['matrix', '--out'])).toThrow(/--out/);
    expect(() => parse(['matrix', '--retrain-teachers=yes'])).toThrow(UsageError);
    expect(() => parse(['matrix', 'extra'])).toThrow(/bevzoo matrix: unexpected argument "extra"/);
    rmSync(dir, { recursive: true });
  });
});

describe('--teacher-runtime', () => {
  it('is an option of distill, matrix and ablate with the values onnx, engine and auto, and reaches the distillation runs', async () => {
    for (const cmd of ['distill', 'matrix', 'ablate']) expect(parse([cmd, '--teacher-runtime', 'onnx']).flags['teacher-runtime']).toBe('onnx');
    expect(() => parse(['matrix', '--teacher-runtime', 'gpu'])).toThrow('--teacher-runtime expects one of auto, onnx, engine, got "gpu"');
    expect(() => parse(['train', 'student', 'bevdet', '--teacher-runtime', 'onnx'])).toThrow(/unknown option --teacher-runtime for "bevzoo train"/);
    expect(commandHelp(COMMAND_SPECS.matrix!)).toMatch(/--teacher-runtime <r>\s+where the frozen teacher runs in a distillation: onnx \(onnxruntime-node\), engine, or auto/);
    const { commonPlanOptions } = await import('./pipeline/options.js');
    expect(commonPlanOptions(parse(['distill', '--teacher-runtime', 'engine']), 'tiny').teacherRuntime).toBe('engine');
    expect(commonPlanOptions(parse(['distill']), 'tiny').teacherRuntime).toBeUndefined(); // the job's default: auto
  });
});

describe('--config: options from a JSON or YAML file', () => {
  it('takes the long options as keys, paths relative to the file; the command line wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-cfg-'));
    const json = join(dir, 'm.json');
    writeFileSync(json, JSON.stringify({ preset: 'tiny', seeds: 2, 'student-set': ['train.lr=1e-3', 'train.steps=5'], 'retrain-teachers': true, out: 'runs/m', students: 'bevdet' }));
    const a = parse(['matrix', '--config', json, '--seeds', '3']);
    expect(a.flags).toMatchObject({ preset: 'tiny', seeds: '3', 'retrain-teachers': true, out: join(dir, 'runs', 'm'), students: 'bevdet' });
    expect(a.lists['student-set']).toEqual(['train.lr=1e-3', 'train.steps=5']);
    const yaml = join(dir, 'm.yaml');
    writeFileSync(yaml, 'preset: tiny\nseeds: 2\nstudent-set:\n  - train.lr=1e-3\nqueue: redis://10.0.0.2:6379\n# a comment\n');
    expect(parse(['matrix', '--config', yaml]).flags).toMatchObject({ preset: 'tiny', seeds: '2', queue: 'redis://10.0.0.2:6379' });
    expect(parse(['matrix', '--config', yaml, '--student-set', 'x=1']).lists['student-set']).toEqual(['x=1']);
  });

  it('names the file and the key of what is wrong in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bevzoo-cfg-'));
    const f = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const bad = (file: string) => {
      try {
        parse(['matrix', '--config', file]);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad(f('a.yaml', 'sead: 1\n'))).toBe(`--config ${join(dir, 'a.yaml')}: unknown option "sead" for "bevzoo matrix" — did you mean "seed"? (bevzoo matrix --help lists its options)`.replace('"seed"', '"seeds"'));
    expect(bad(f('b.json', '{"steps": 0}'))).toBe(`--config ${join(dir, 'b.json')}: option "steps": --steps expects an integer ≥ 1, got "0"`);
    expect(bad(f('c.json', '{"retrain-teachers": "yes"}'))).toBe(`--config ${join(dir, 'c.json')}: option "retrain-teachers": expected true or false, found "yes"`);
    expect(bad(f('d.json', '{"preset": ["a", "b"]}'))).toBe(`--config ${join(dir, 'd.json')}: option "preset": takes one value, found a list`);
    expect(bad(f('e.json', '{"preset": '))).toMatch(/e\.json: not valid JSON: /);
    expect(bad(f('f.yaml', '- a\n- b\n'))).toMatch(/f\.yaml: expected an object of options \(long option names as keys\), found a list/);
    expect(bad(f('g.yaml', 'preset: {a: 1}\n'))).toMatch(/option "preset": expected a string or a number, found \{"a":1\}/);
  });
});

describe('the CLI', () => {
  it('exits 2 on a mistake in the command line, without loading a plugin', async () => {
    const before = loadedPlugins().length;
    for (const argv of [['matrix', '--sead', '1'], ['matrix', '--steps', '0'], ['matrx'], ['train', 'student', 'x', '--stepz', '5']]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toMatch(/^bevzoo: /);
    }
    expect((await run(['matrx'])).err).toMatch(/unknown command "matrx" — did you mean "matrix"\?/);
    expect(loadedPlugins().length).toBe(before);
  });

  it('refuses a queue that is not a Redis URL, and a worker without one, before anything starts', async () => {
    const w = await run(['worker']);
    expect([w.code, w.err]).toEqual([2, 'bevzoo: missing --queue <value>\n']);
    const bad = await run(['worker', '--queue', 'localhost:6379']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--queue localhost:6379: the scheme must be redis:// or rediss:// (TLS), not localhost:');
    const m = await run(['matrix', '--queue', 'http://h:1', '--out', join(mkdtempSync(join(tmpdir(), 'bevzoo-q-')), 'm')]);
    expect(m.code).toBe(2);
    expect(m.err).toMatch(/^bevzoo: --queue http:\/\/h:1: the scheme must be redis:\/\/ or rediss:\/\/ \(TLS\), not http:\/\//);
    expect((await run(['worker', '--concurrency', '0', '--queue', 'redis://h'])).err).toMatch(/--concurrency/);
  });

  it('gives each command its own --help, and the version', async () => {
    const m = await run(['matrix', '--help']);
    const t = await run(['train', '-h']);
    expect([m.code, t.code]).toEqual([0, 0]);
    expect(m.out).toBe(commandHelp(COMMAND_SPECS.matrix!));
    expect(m.out).toMatch(/^bevzoo matrix — /);
    expect(m.out).toContain('--seeds <n>');
    expect(t.out).toMatch(/^bevzoo train — /);
    expect(t.out).not.toContain('--seeds');
    expect((await run(['help', 'distill'])).out).toBe(commandHelp(COMMAND_SPECS.distill!));
    const g = await run(['--help']);
    expect(g.out).toContain('bevzoo <command> --help');
    for (const c of ['list', 'data', 'train', 'distill', 'matrix', 'worker', 'ablate', 'eval']) expect(g.out).toContain(`  ${c}`);
    expect((await run(['--version'])).out).toBe(`bevzoo ${pkg.version} (@bevzoo/runner, node ${process.version})\n`);
  });

  it('ends quietly when its output goes into a closed pipe', () => {
    const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
    // `true` exits at once, so the CLI writes its help into a pipe whose reader is gone (EPIPE); pipefail gives its status.
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', `node --conditions=@bevzoo/source --import tsx "${cli}" --help | true`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('says that it is building before a build that takes a while (pnpm bevzoo)', () => {
    // As a user calls it (turbo finds pnpm on the PATH that pnpm gives its scripts).
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const r = spawnSync('npx', ['-y', `pnpm@${rootPkg.packageManager.split('@')[1]}`, '--silent', 'bevzoo', '--build-only', '@bevzoo/core'], { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, BEVZOO_BUILD_NOTICE_MS: '0' } });
    expect(r.status, r.stderr).toBe(0);
    // (npx may add its own warnings before ours)
    expect(r.stderr).toMatch(/(^|\n)bevzoo: building @bevzoo\/core and the packages it needs \(about a minute on the first call; cached afterwards\)…\nbevzoo: built in \d+ s\n$/);
  }, 240_000);

  it('keeps every run folder inside --out', () => {
    expect(runDir('/tmp/o', 'baseline-cam-s-seed0')).toBe('/tmp/o/runs/baseline-cam-s-seed0');
    expect(() => runDir('/tmp/o', '../x')).toThrow(/run id must match/);
    expect(() => runDir('/tmp/o', 'a/../../x')).toThrow(/run id must match/);
  });
});
