import { describe, expect, it } from 'vitest';
import { frameCacheBytes, teacherCacheBytes } from './job.js';

const GiB = 1024 ** 3;

describe('the training loader’s frame-cache budget', () => {
  it('is a fifth of the machine’s memory, between 1 and 8 GiB', () => {
    expect(frameCacheBytes({}, 24 * GiB)).toBe(Math.round(24 * GiB / 5));
    expect(frameCacheBytes({}, 64 * GiB)).toBe(8 * GiB);
    expect(frameCacheBytes({}, 2 * GiB)).toBe(GiB);
  });

  it('BEVZOO_FRAME_CACHE_MB sets it (0 turns the memory cache off); anything else is an error naming the variable', () => {
    expect(frameCacheBytes({ BEVZOO_FRAME_CACHE_MB: '512' }, 24 * GiB)).toBe(512 * 1024 ** 2);
    expect(frameCacheBytes({ BEVZOO_FRAME_CACHE_MB: '0' }, 24 * GiB)).toBe(0);
    expect(frameCacheBytes({ BEVZOO_FRAME_CACHE_MB: '' }, 10 * GiB)).toBe(2 * GiB);
    expect(() => frameCacheBytes({ BEVZOO_FRAME_CACHE_MB: '2G' })).toThrow(/BEVZOO_FRAME_CACHE_MB must be a whole number of megabytes .* found "2G"/);
  });
});

describe('the teacher cache’s budget', () => {
  it('is a tenth of the machine’s memory, between 256 MiB and 4 GiB; BEVZOO_TEACHER_CACHE_MB sets it', () => {
    expect(teacherCacheBytes({}, 24 * GiB)).toBe(Math.round(24 * GiB / 10));
    expect(teacherCacheBytes({}, 64 * GiB)).toBe(4 * GiB);
    expect(teacherCacheBytes({}, 1 * GiB)).toBe(256 * 1024 ** 2);
    expect(teacherCacheBytes({ BEVZOO_TEACHER_CACHE_MB: '0' }, 24 * GiB)).toBe(0);
    expect(() => teacherCacheBytes({ BEVZOO_TEACHER_CACHE_MB: '1.5' })).toThrow(/BEVZOO_TEACHER_CACHE_MB must be a whole number of megabytes .* found "1.5"/);
  });
});
