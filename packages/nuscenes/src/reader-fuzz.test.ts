/**
 * Fuzz test of the reader: 1,000 randomly mutated records of each of the 13 tables (seeded, so every run feeds the
 * same mutations). Each mutated database is built with createNuScenes (what openNuScenes does after reading the
 * files; a sample of the mutations also goes through the files and openNuScenes) and, when it is accepted, every
 * sync call of the reader and loadFrame are run on it. The only error allowed is a NuScenesError; what an
 * accepted database gives must be finite (boxes, sizes, intrinsics, points).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng, type Rng } from '@bevzoo/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NuScenesError } from './errors.js';
import { loadFrame } from './frame.js';
import { createNuScenes, openNuScenes, type NuScenes } from './reader.js';
import { TABLE_NAMES, type TableName } from './tables.js';
import { buildFixture, type Fixture } from './test-fixture.js';
import type { RawTables } from './validate-tables.js';

const PER_TABLE = 1000;
/** Every this many mutations also go through the table files and openNuScenes. */
const ON_DISK_EVERY = 50;
/** Every this many accepted mutations also load a frame (images and LiDAR files). */
const FRAME_EVERY = 4;
/** No single mutation may take longer than this (a hang would exceed it by far). */
const MAX_MS_PER_MUTATION = 2000;

type Json = unknown;
const hex32 = (rng: Rng) => Array.from({ length: 32 }, () => '0123456789abcdef'[rng.int(16)]).join('');

/** A mutated copy of `v`, and what was done. `tokens` are existing tokens (to make links that exist but do not fit). */
function mutateValue(rng: Rng, v: Json, tokens: string[], depth = 0): { value: Json; what: string } {
  if (Array.isArray(v) && v.length > 0 && depth < 2 && rng.next() < 0.5) {
    const copy = [...v];
    const i = rng.int(copy.length);
    const m = mutateValue(rng, copy[i], tokens, depth + 1);
    if (m.what === 'delete') copy.splice(i, 1);
    else copy[i] = m.value;
    return { value: copy, what: `[${i}] ${m.what}` };
  }
  const kinds = [
    'delete', 'null', 'wrong type', 'NaN', 'Infinity', '-Infinity', 'huge', 'negative', 'zero', 'fraction', 'longer', 'shorter',
    'dangling token', 'other token', 'empty string', 'empty array', 'object',
  ] as const;
  const kind = rng.pick(kinds);
  switch (kind) {
    case 'delete': return { value: undefined, what: kind };
    case 'null': return { value: null, what: kind };
    case 'wrong type':
      return { value: typeof v === 'number' ? String(v) : typeof v === 'string' ? 7 : typeof v === 'boolean' ? 1 : Array.isArray(v) ? 'x' : true, what: kind };
    // JSON holds no NaN / Infinity, but JSON.parse gives Infinity for 1e400: the reader can meet both.
    case 'NaN': return { value: NaN, what: kind };
    case 'Infinity': return { value: Infinity, what: kind };
    case '-Infinity': return { value: -Infinity, what: kind };
    case 'huge': return { value: 1e300, what: kind };
    case 'negative': return { value: typeof v === 'number' ? -Math.abs(v) - 1 : -1, what: kind };
    case 'zero': return { value: Array.isArray(v) ? v.map(() => 0) : 0, what: kind };
    case 'fraction': return { value: typeof v === 'number' ? v + 0.5 : 0.5, what: kind };
    case 'longer': return { value: Array.isArray(v) ? [...v, v[0] ?? 1] : [v], what: kind };
    case 'shorter': return { value: Array.isArray(v) ? v.slice(0, -1) : [], what: kind };
    case 'dangling token': return { value: hex32(rng), what: kind };
    case 'other token': return { value: rng.pick(tokens), what: kind };
    case 'empty string': return { value: '', what: kind };
    case 'empty array': return { value: [], what: kind };
    case 'object': return { value: { a: 1 }, what: kind };
  }
}

/** Mutate one field of one random record of `table` in place; returns a description. */
function mutateRecord(rng: Rng, tables: RawTables, table: TableName, tokens: string[]): string {
  const rows = tables[table];
  const r = rng.int(rows.length);
  const rec = rows[r]!;
  const fields = Object.keys(rec);
  const field = rng.next() < 0.05 ? 'no_such_field' : rng.pick(fields);
  const m = mutateValue(rng, rec[field], tokens);
  if (m.value === undefined) delete rec[field];
  else rec[field] = m.value;
  return `${table} #${r} (${String(rec.token)}) .${field}: ${m.what}`;
}

const finite = (xs: ArrayLike<number>) => Array.prototype.every.call(xs, Number.isFinite);
/** A plain check (expect() in the hot loop would cost more than the reader). */
function assert(ok: boolean, what: string): void {
  if (!ok) throw new Error(`accepted, but ${what}`);
}

/** Every sync call of the reader; what it returns must be finite. */
function exercise(db: NuScenes, splitNames: readonly string[]): void {
  for (const s of db.table('scene')) db.sceneSampleTokens(s.token);
  for (const name of splitNames) db.sampleTokensForSplit(name);
  for (const a of db.table('sample_annotation')) {
    const b = db.getBox(a.token);
    assert(finite([...b.center, ...b.size, ...b.rotation]) && b.size.every((x) => x > 0), `box ${a.token} is not finite`);
    const v = db.boxVelocity(a.token);
    assert(v.every((x) => Number.isFinite(x) || Number.isNaN(x)), `velocity of ${a.token} is infinite`);
  }
  for (const sd of db.table('sample_data')) {
    const r = db.getSampleData(sd.token, { boxVisLevel: 'any' });
    for (const b of r.boxes) assert(finite([...b.center, ...b.rotation]), `a box of ${sd.token} is not finite`);
    if (r.intrinsic) assert(finite(r.intrinsic), `the intrinsic of ${sd.token} is not finite`);
    const tf = db.egoPose(sd.token);
    assert(finite([...tf.rotation, ...tf.translation]), `the ego pose of ${sd.token} is not finite`);
  }
  for (const s of db.table('sample')) db.boxesForSample(s.token);
}

async function checkFrame(db: NuScenes, sampleToken: string): Promise<void> {
  const f = await loadFrame(db, sampleToken, { sweeps: 2 });
  for (const b of f.boxes) assert(finite([...b.center, ...b.size, b.yaw, ...b.rotation]) && b.size.every((x) => x > 0), `frame box ${b.token} is not finite`);
  for (const c of f.cameras) assert(finite([...c.intrinsics, ...c.sensor2keyEgoMatrix]), `camera ${c.channel} geometry is not finite`);
  assert(finite(f.lidar!.points), 'a LiDAR point is not finite');
}

/** Run `fn`; anything thrown other than a NuScenesError fails the test with the mutation that caused it. */
async function onlyNamedErrors(what: string, fn: () => unknown): Promise<'accepted' | 'refused'> {
  try {
    await fn();
    return 'accepted';
  } catch (e) {
    if (e instanceof NuScenesError) {
      if (!(e.table ?? e.file)) throw new Error(`${what}: the error does not say where: ${e.message}`);
      return 'refused';
    }
    throw new Error(`${what}: ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
  }
}

describe('reader fuzz', () => {
  let fx: Fixture;
  let texts: Record<TableName, string>;
  let splits: Record<string, string[]>;
  let disk: string;
  beforeAll(async () => {
    fx = await buildFixture();
    texts = Object.fromEntries(TABLE_NAMES.map((n) => [n, readFileSync(join(fx.dataroot, fx.version, `${n}.json`), 'utf8')])) as Record<TableName, string>;
    splits = JSON.parse(readFileSync(join(fx.dataroot, fx.version, 'splits.json'), 'utf8')) as Record<string, string[]>;
    disk = mkdtempSync(join(tmpdir(), 'bevzoo-fuzz-'));
    cpSync(fx.dataroot, disk, { recursive: true });
  });
  afterAll(() => {
    rmSync(disk, { recursive: true, force: true });
    rmSync(fx.dataroot, { recursive: true, force: true });
  });

  it(`refuses or reads ${PER_TABLE} mutated records of each table, with named errors only`, async () => {
    const fresh = () => Object.fromEntries(TABLE_NAMES.map((n) => [n, JSON.parse(texts[n])])) as RawTables;
    const allTokens = TABLE_NAMES.flatMap((n) => (JSON.parse(texts[n]) as { token: string }[]).map((r) => r.token));
    // The unmutated fixture is accepted (else every mutation would be "refused" for the wrong reason).
    const splitNames = Object.keys(splits);
    exercise(createNuScenes({ dataroot: fx.dataroot, version: fx.version, tables: fresh(), splits }), splitNames);
    const counts: Record<string, { accepted: number; refused: number }> = {};
    const rng = createRng(20240615);
    for (const table of TABLE_NAMES) {
      const c = (counts[table] = { accepted: 0, refused: 0 });
      for (let i = 0; i < PER_TABLE; i++) {
        const t0 = Date.now();
        const tables = fresh();
        const what = mutateRecord(rng, tables, table, allTokens);
        const mutatedText = i % ON_DISK_EVERY === 0 ? JSON.stringify(tables[table]) : '';
        let db: NuScenes | undefined;
        const outcome = await onlyNamedErrors(what, () => {
          db = createNuScenes({ dataroot: fx.dataroot, version: fx.version, tables, splits });
          exercise(db, splitNames);
        });
        c[outcome]++;
        if (db && outcome === 'accepted' && c.accepted % FRAME_EVERY === 0) {
          const sample = db.table('sample')[i % db.table('sample').length]!.token;
          await onlyNamedErrors(`${what} (loadFrame)`, () => checkFrame(db!, sample));
        }
        if (i % ON_DISK_EVERY === 0) {
          // The same records through the files: the streaming table reader, then openNuScenes.
          writeFileSync(join(disk, fx.version, `${table}.json`), mutatedText);
          const fromDisk = await onlyNamedErrors(`${what} (on disk)`, async () => exercise(await openNuScenes({ dataroot: disk, version: fx.version }), splitNames));
          writeFileSync(join(disk, fx.version, `${table}.json`), texts[table]);
          // JSON turns NaN and ±Infinity into null, so only a mutation without them must give the same outcome.
          if (!/NaN|Infinity/.test(what)) expect(fromDisk, `${what} (on disk)`).toBe(outcome);
        }
        assert(Date.now() - t0 < MAX_MS_PER_MUTATION, `${what} took ${Date.now() - t0} ms`);
      }
      expect(c.accepted + c.refused).toBe(PER_TABLE);
    }
    // Most mutations break a rule the reader checks: far more are refused than accepted.
    const total = Object.values(counts).reduce((a, c) => ({ accepted: a.accepted + c.accepted, refused: a.refused + c.refused }), { accepted: 0, refused: 0 });
    expect(total.refused).toBeGreaterThan(total.accepted);
  }, 120_000);
});
