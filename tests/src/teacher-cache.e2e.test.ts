/**
 * The teacher cache through the runner: a distillation whose student trains without augmentation keeps the frozen
 * teacher's outputs per training sample, and trains to the same bits as with the cache off
 * (`BEVZOO_TEACHER_CACHE_MB=0`). The teacher runs on the engine in both: `auto` keeps it there when its outputs
 * are cached, and the run without the cache asks for it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRun, runCli } from './cli.js';

const out = mkdtempSync(join(tmpdir(), 'bevzoo-teacher-cache-'));
const saved = process.env.BEVZOO_TEACHER_CACHE_MB;

type Cell = { teacher: string; student: string; distiller: string };
const DBEV: Cell = { teacher: 'centerpoint', student: 'bevdet', distiller: 'distillbev' };

/** One tiny distillation of `cell` without augmentation, 6 steps; its result and per-step losses. */
const distill = async (name: string, cacheMb: string | undefined, extra: string[], cell: Cell = DBEV) => {
  if (cacheMb === undefined) delete process.env.BEVZOO_TEACHER_CACHE_MB;
  else process.env.BEVZOO_TEACHER_CACHE_MB = cacheMb;
  const dir = join(out, name);
  const r = await runCli(['distill', '--teacher', cell.teacher, '--student', cell.student, '--distiller', cell.distiller, '--preset', 'tiny', '--no-baseline', '--steps', '6',
    '--student-set', 'train.augment=false', ...extra, '--data-dir', join(out, 'data'), '--out', dir]);
  expect(r.code).toBe(0);
  return { stdout: r.stdout, ...readRun(join(dir, 'runs', `distill-${cell.distiller}-${cell.teacher}-${cell.student}-seed0`)) };
};

describe('the teacher cache (distillation without augmentation)', () => {
  beforeAll(() => {
    process.env.BEVZOO_SOURCE = '1';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.BEVZOO_TEACHER_CACHE_MB;
    else process.env.BEVZOO_TEACHER_CACHE_MB = saved;
  });

  it('serves the teacher from memory after the first epoch, and trains to the same bits as without it', async () => {
    const off = await distill('off', '0', ['--teacher-runtime', 'engine']);
    const on = await distill('on', undefined, []); // --teacher-runtime auto: the engine, because of the cache
    expect(off.result.train.teacher_cache).toBeUndefined();
    // 4 training samples in batches of 2: the first epoch computes them, the two after it are served from memory.
    expect(on.result.train.teacher_cache).toMatchObject({ hits: 8, computed: 4, samples: 4 });
    expect(on.result.train.teacher_cache.bytes).toBeGreaterThan(0);
    expect(on.result.train.teacher_cache.off).toBeUndefined();
    expect(on.result.train.teacher_runtime).toEqual({ used: 'engine', requested: 'auto', reason: 'its outputs are kept per training sample' });
    expect(on.result.train.last_loss).toBe(off.result.train.last_loss);
    expect(on.result.metrics.mean_ap).toBe(off.result.metrics.mean_ap);
    expect(on.result.metrics.nd_score).toBe(off.result.metrics.nd_score);
    expect(on.losses).toEqual(off.losses);
  });

  it('keeps the occupancy teacher\'s outputs too (its per-camera depth is [B·6, …], sample-major), to the same bits', async () => {
    const occ: Cell = { teacher: 'occ-fusion', student: 'flashocc', distiller: 'radocc' };
    const off = await distill('occ-off', '0', ['--teacher-runtime', 'engine'], occ);
    const on = await distill('occ-on', undefined, [], occ);
    expect(off.result.train.teacher_cache).toBeUndefined();
    expect(on.result.train.teacher_cache).toMatchObject({ hits: 8, computed: 4, samples: 4 });
    expect(on.result.train.teacher_cache.off).toBeUndefined();
    expect(on.losses).toEqual(off.losses);
    expect(on.result.metrics).toEqual(off.result.metrics);
  });
});
