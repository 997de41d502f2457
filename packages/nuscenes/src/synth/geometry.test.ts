import { describe, expect, it } from 'vitest';
import { Path } from './path.js';
import { Prism, intersectPrism, hitFace } from './prism.js';
import { profileDistance, profileSpeed } from './objects.js';

describe('paths, prisms, profiles', () => {
  it('offsets and reverses line + arc paths exactly', () => {
    const p = Path.build(0, 0, 0, [{ line: 10 }, { arc: 20, angle: Math.PI / 2 }, { line: 5 }]);
    expect(p.length).toBeCloseTo(15 + 10 * Math.PI, 9);
    const end = p.at(p.length);
    expect(end.x).toBeCloseTo(30, 9);
    expect(end.y).toBeCloseTo(25, 9);
    expect(end.heading).toBeCloseTo(Math.PI / 2, 9);
    const left = p.offset(2);
    expect(left.length).toBeCloseTo(15 + 9 * Math.PI, 9);
    expect(left.at(left.length).x).toBeCloseTo(28, 9);
    const rev = p.reversed();
    const r0 = rev.at(0);
    expect([r0.x, r0.y]).toEqual([expect.closeTo(30, 9), expect.closeTo(25, 9)]);
    expect(rev.at(rev.length).x).toBeCloseTo(0, 9);
    expect(p.at(-5).x).toBeCloseTo(-5, 9);
  });

  it('intersects rays with boxes and octagons', () => {
    const box = new Prism(10, 0, 0, 2, 1, 0, 1.5, false, -1, 0, 0, 0, 0, 0, 0);
    expect(intersectPrism(box, 0, 0, 1, 1, 0, 0)).toBeCloseTo(8, 12);
    expect(hitFace).toBe(2);
    expect(intersectPrism(box, 0, 0, 2, 1, 0, 0)).toBe(Infinity);
    expect(intersectPrism(box, 10, 0, 5, 0, 0, -1)).toBeCloseTo(3.5, 12);
    expect(hitFace).toBe(1);
    const oct = new Prism(0, 5, 0, 1, 1, 0, 3, true, -1, 0, 0, 0, 0, 0, 0);
    expect(intersectPrism(oct, 0, 0, 1, 0, 1, 0)).toBeCloseTo(4, 12);
    expect(oct.contains(0, 5.99, 1)).toBe(true);
    expect(oct.contains(0.9, 5.9, 1)).toBe(false);
  });

  it('integrates speed profiles', () => {
    const p = { v0: 10, a: -2, vmax: 14 };
    expect(profileSpeed(p, 3)).toBe(4);
    expect(profileSpeed(p, 8)).toBe(0);
    expect(profileDistance(p, 5)).toBeCloseTo(25, 12);
    expect(profileDistance(p, 9)).toBeCloseTo(25, 12);
    expect(profileDistance({ v0: 0, a: 2, vmax: 4 }, 4)).toBeCloseTo(4 + 8, 12);
  });
});
