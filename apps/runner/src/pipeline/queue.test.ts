/** The queue's pure parts: Redis URLs, job ids. (The queue itself runs against Redis in tests/faults/queue.test.ts.) */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import type { JobSpec } from './job.js';
import { queueJobId, redisConnection } from './queue.js';

const spec = (over: Partial<JobSpec> = {}): JobSpec => ({
  id: 'distill-distillbev-centerpoint-bevdet-seed0', role: 'distill', teacher: { name: 'centerpoint', preset: 'small' }, student: { name: 'bevdet', preset: 'small' },
  distiller: { name: 'distillbev', preset: 'small' }, seed: 0, dataset: { synthPreset: 'small', synthSeed: 0 }, outDir: '/shared/m/runs/x', backend: 'auto', ...over,
});

describe('redisConnection', () => {
  it('reads host, port, database, credentials and TLS from the URL; every connection retries forever', () => {
    expect(redisConnection('redis://10.0.0.5:6390')).toMatchObject({ host: '10.0.0.5', port: 6390, db: 0, maxRetriesPerRequest: null });
    expect(redisConnection('redis://box')).toMatchObject({ host: 'box', port: 6379 });
    const c = redisConnection('rediss://me:p%40ss@redis.lab:7000/3') as Record<string, unknown>;
    expect(c).toMatchObject({ host: 'redis.lab', port: 7000, db: 3, username: 'me', password: 'p@ss', tls: {} });
    expect(redisConnection('redis://[::1]:6379')).toMatchObject({ host: '::1' });
  });
  it('refuses what is not a redis URL, saying what to give', () => {
    expect(() => redisConnection('localhost:6379')).toThrow(UsageError);
    expect(() => redisConnection('localhost:6379')).toThrow(/scheme must be redis:\/\/ or rediss:\/\//);
    expect(() => redisConnection('nonsense')).toThrow(/is not a URL; give redis:\/\/host:port/);
    expect(() => redisConnection('http://h:1')).toThrow(/not http:\/\//);
    expect(() => redisConnection('redis://h:1/x')).toThrow(/the database must be a number/);
  });
});

describe('queueJobId', () => {
  it('is the run id and a hash of the spec and threads: stable, key order and the teacher checkpoint left out', () => {
    const a = queueJobId(spec(), 1);
    expect(a).toMatch(/^distill-distillbev-centerpoint-bevdet-seed0\.[0-9a-f]{20}$/);
    expect(a).not.toContain(':'); // BullMQ refuses custom ids with ':'
    const reordered = Object.fromEntries(Object.entries(spec()).reverse()) as unknown as JobSpec;
    expect(queueJobId(reordered, 1)).toBe(a);
    expect(queueJobId(spec({ teacherCheckpoint: '/shared/m/runs/teacher/model.safetensors' }), 1)).toBe(a);
    // What changes the run changes the id: threads (they change the sums), seed, steps, overrides, the folder.
    const others = [queueJobId(spec(), 2), queueJobId(spec({ seed: 1 }), 1), queueJobId(spec({ steps: 10 }), 1),
      queueJobId(spec({ student: { name: 'bevdet', preset: 'small', overrides: { 'train.lr': 1e-3 } } }), 1), queueJobId(spec({ outDir: '/shared/n/runs/x' }), 1)];
    expect(new Set([a, ...others]).size).toBe(6);
  });
});
