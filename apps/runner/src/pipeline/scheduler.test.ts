import { describe, expect, it } from 'vitest';
import { runProgress } from './scheduler.js';

describe('runProgress', () => {
  it('says which run of how many finished, how many are left and about how long they take (wall time per finished run)', () => {
    let t = 0;
    const p = runProgress(4, () => t * 1000);
    t = 600;
    expect(p.done('baseline-a-seed0', 590)).toBe('run 1 of 4 done: baseline-a-seed0 (9.8 min); 3 to go, about 30.0 min left');
    p.gone(); // a run failed: no longer to go
    t = 900;
    expect(p.done('baseline-b-seed0', 45)).toBe('run 2 of 4 done: baseline-b-seed0 (45 s); 1 to go, about 7.5 min left');
    t = 1000;
    expect(p.done('distill-x-seed0', 400)).toBe('run 3 of 4 done: distill-x-seed0 (6.7 min); none to go');
  });

  it('leaves runs that loaded packaged weights out of the rate, and gives no estimate before a run that trained', () => {
    let t = 0;
    const p = runProgress(3, () => t * 1000);
    t = 20;
    expect(p.done('teacher-a', 20, true)).toBe('run 1 of 3 done: teacher-a (20 s); 2 to go');
    t = 620;
    expect(p.done('baseline-a-seed0', 600)).toBe('run 2 of 3 done: baseline-a-seed0 (10.0 min); 1 to go, about 10.3 min left');
  });
});
