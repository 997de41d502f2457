import { describe, expect, it, beforeEach } from 'vitest';
import { z } from 'zod';
import {
  assemble, boxCorners, composeTransforms, createRng, defineDistiller, defineStudent, defineTeacher, get, invertTransform,
  bevBoxesOverlap, list, matrixToQuat, parseOverrides, pointInBox, quatMultiply, quatRotate, quatToMatrix, quatYaw, register, resolveConfig,
  transformPoint, unregister, wrapAngle, yawToQuat, bevGrid, AssemblyError, ConfigError, RegistryError, formatConfig,
  type Quat, type RigidTransform,
} from './index.js';

const close = (a: number[], b: number[], eps = 1e-12) => a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, -Math.log10(eps)));

describe('rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = createRng(7), b = createRng(7), c = createRng(8);
    const xa = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xa);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xa);
    expect(xa.every((x) => x >= 0 && x < 1)).toBe(true);
  });
  it('has sane moments and stable forks', () => {
    const r = createRng(1);
    let s = 0, s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) { const x = r.normal(); s += x; s2 += x * x; }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.05);
    expect(createRng(3).fork('scene-1').next()).toBe(createRng(3).fork('scene-1').next());
    expect(createRng(3).fork('scene-1').next()).not.toBe(createRng(3).fork('scene-2').next());
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[r.int(3)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(900);
    expect(r.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('geometry', () => {
  it('rotates by known quaternions', () => {
    const q90 = yawToQuat(Math.PI / 2);
    close(quatRotate(q90, [1, 0, 0]), [0, 1, 0]);
    close(quatToMatrix(q90), [0, -1, 0, 1, 0, 0, 0, 0, 1]);
    // 90° about x: y → z.
    const qx: Quat = [Math.SQRT1_2, Math.SQRT1_2, 0, 0];
    close(quatRotate(qx, [0, 1, 0]), [0, 0, 1]);
    // Hamilton product: two 90° yaws make 180°.
    close(quatMultiply(q90, q90), [0, 0, 0, 1]);
    // i·j = k
    close(quatMultiply([0, 1, 0, 0], [0, 0, 1, 0]), [0, 0, 0, 1]);
  });
  it('computes yaw like the devkit and round-trips matrices', () => {
    for (const yaw of [-3, -1.2, 0, 0.5, 2.9]) expect(quatYaw(yawToQuat(yaw))).toBeCloseTo(yaw, 12);
    // nuScenes CAM_FRONT calibrated rotation (w,x,y,z): camera z axis points forward (ego x).
    const cam: Quat = [0.4998015430569128, -0.5030316162024876, 0.4997798114386805, -0.49737083824542755];
    const fwd = quatRotate(cam, [0, 0, 1]);
    expect(fwd[0]).toBeGreaterThan(0.99);
    const m = quatToMatrix(cam);
    close(quatRotate(matrixToQuat(m), [0.3, -0.2, 0.9]), quatRotate(cam, [0.3, -0.2, 0.9]), 1e-12);
    expect(wrapAngle(3 * Math.PI / 2)).toBeCloseTo(-Math.PI / 2, 12);
  });
  it('composes and inverts rigid transforms', () => {
    const a: RigidTransform = { rotation: yawToQuat(0.7), translation: [1, 2, 3] };
    const b: RigidTransform = { rotation: [0.9, 0.1, -0.2, 0.3], translation: [-4, 0.5, 2] };
    const p: [number, number, number] = [0.3, -1.1, 2.2];
    close(transformPoint(composeTransforms(a, b), p), transformPoint(a, transformPoint(b, p)), 1e-12);
    close(transformPoint(invertTransform(b), transformPoint(b, p)), p, 1e-12);
  });
  it('gives box corners in the devkit order and tests containment', () => {
    const box = { center: [10, 5, 1] as [number, number, number], size: [2, 4, 1.5] as [number, number, number], yaw: Math.PI / 2 };
    const c = boxCorners(box);
    // corner 0: +l/2 along heading (now +y), +w/2 to the left (now −x), top.
    close(c[0]!, [9, 7, 1.75]);
    close(c[6]!, [11, 3, 0.25]);
    expect(pointInBox(box, [9.01, 6.99, 1])).toBe(true);
    expect(pointInBox(box, [8.9, 5, 1])).toBe(false);
    expect(pointInBox({ ...box, yaw: 0 }, [12, 6, 1.75])).toBe(true); // inclusive on the faces
  });
  it('tests BEV footprint overlap of rotated boxes by separating axes', () => {
    const sq = (x: number, y: number, yaw: number, w = 2, l = 2) => ({ center: [x, y, 0] as [number, number, number], size: [w, l, 1] as [number, number, number], yaw });
    expect(bevBoxesOverlap(sq(0, 0, 0), sq(1.5, 1.5, 0))).toBe(true);
    expect(bevBoxesOverlap(sq(0, 0, 0), sq(2, 0, 0))).toBe(true); // touching
    expect(bevBoxesOverlap(sq(0, 0, 0), sq(2.01, 0, 0))).toBe(false);
    // Diamonds whose axis-aligned bounds overlap but whose footprints do not: only the rotated axes separate them.
    const d = Math.SQRT2;
    expect(bevBoxesOverlap(sq(0, 0, Math.PI / 4), sq(2 * d - 0.05, 0, Math.PI / 4))).toBe(true);
    expect(bevBoxesOverlap(sq(0, 0, Math.PI / 4), sq(d + 0.05, d + 0.05, Math.PI / 4))).toBe(false);
    // A long thin box crossing a square without any corner inside it.
    expect(bevBoxesOverlap(sq(0, 0, 0), sq(0, 0, 0.3, 0.2, 10))).toBe(true);
    expect(bevBoxesOverlap(sq(0, 0, 0), sq(0, 3, Math.PI / 2 + 0.1, 0.2, 10))).toBe(true);
    expect(bevBoxesOverlap(sq(0, 0, 0), sq(0, 3.5, 0, 0.2, 10))).toBe(false);
  });
});

const grid = bevGrid([-51.2, -51.2, 51.2, 51.2], 128);
const schema = z.object({ width: z.number().int().positive().default(64), depth: z.number().default(2), train: z.object({ lr: z.number().default(2e-4) }).default({ lr: 2e-4 }) });
const mkStudent = (name: string, pkg = '@x/student', channels = 64) => defineStudent({
  name, version: '1.0.0', task: 'det', package: pkg, description: 'test', configSchema: schema,
  presets: { tiny: { width: 16 }, small: { width: 32, train: { lr: 1e-3 } } },
  provides: (c) => ({ pre_head: { kind: 'bev', channels: c.width, grid }, heatmap: { kind: 'heatmap', channels: 10, grid } }),
  create: () => ({ channels }),
});
const teacher = defineTeacher({
  name: 't', version: '1.0.0', task: 'det', package: '@x/teacher', description: 'test', configSchema: schema, presets: { small: {} },
  provides: () => ({ neck: { kind: 'bev', channels: 384, grid }, heatmap: { kind: 'heatmap', channels: 10, grid } }),
  create: () => ({}),
});
const distiller = defineDistiller({
  name: 'd', version: '1.0.0', task: 'det', package: '@x/distiller', description: 'test', configSchema: schema, presets: { small: {} },
  requires: () => [
    { side: 'teacher', name: 'neck', kind: 'bev' },
    { side: 'student', name: 'pre_head', kind: 'bev', sameGridAs: { side: 'teacher', name: 'neck' } },
    { side: 'student', name: 'stage1', kind: 'bev', why: 'multi-scale distillation' },
    { side: 'teacher', name: 'heatmap', kind: 'heatmap' },
  ],
  create: () => ({}),
});

describe('registry', () => {
  beforeEach(() => { for (const p of list()) unregister(p.kind, p.name); });
  it('registers, lists and gets plugins', () => {
    register(mkStudent('s'));
    register(teacher);
    register(teacher); // same object: no-op
    expect(list().map((p) => `${p.kind}:${p.name}`)).toEqual(['teacher:t', 'student:s']);
    expect(get('student', 's').package).toBe('@x/student');
    expect(() => get('student', 'nope')).toThrow(/no student named "nope".*registered students: s/);
  });
  it('rejects a second plugin with the same kind and name, naming both packages', () => {
    register(mkStudent('s', '@a/one'));
    expect(() => register(mkStudent('s', '@b/two'))).toThrow(RegistryError);
    expect(() => register(mkStudent('s', '@b/two'))).toThrow(/@a\/one@1\.0\.0.*@b\/two@1\.0\.0/);
  });
  it('refuses plugin and preset names that could leave a folder or break a report', () => {
    for (const bad of ['../evil', 'a/b', 'Upper', '.hidden', '-x', 'a b', 'a|b', 'a,b', ''])
      expect(() => register(mkStudent(bad)), bad).toThrow(bad === '' ? /non-empty string field "name"/ : /name must match/);
    expect(() => register(defineStudent({ ...mkStudent('p'), presets: { '../up': {} } }))).toThrow(/preset names must match .* found "\.\.\/up"/);
    register(mkStudent('ok.name_1-2'));
    expect(list().map((p) => p.name)).toEqual(['ok.name_1-2']);
  });
  it('shares one registry across module copies through globalThis', () => {
    register(mkStudent('s'));
    const store = (globalThis as Record<symbol, Map<string, unknown>>)[Symbol.for('bevzoo.registry.v1')]!;
    expect(store.has('student:s')).toBe(true);
  });
});

describe('config', () => {
  it('merges defaults ← preset ← overrides and validates', () => {
    const p = mkStudent('s');
    expect(resolveConfig(p, { preset: 'small' }).config).toEqual({ width: 32, depth: 2, train: { lr: 1e-3 } });
    expect(resolveConfig(p).preset).toBe('small');
    const o = parseOverrides(['train.lr=5e-4', 'depth=3']);
    expect(resolveConfig(p, { preset: 'tiny', overrides: o }).config).toEqual({ width: 16, depth: 3, train: { lr: 5e-4 } });
    expect(formatConfig({ a: { b: 1 }, c: [1, 2] })).toBe('  a.b = 1\n  c = [1,2]');
  });
  it('lists every invalid or unknown key by dotted path', () => {
    const p = mkStudent('s');
    expect(() => resolveConfig(p, { overrides: parseOverrides(['train.lrr=1', 'wdth=2']) })).toThrow(/train\.lrr: unknown key[\s\S]*wdth: unknown key/);
    try {
      resolveConfig(p, { overrides: { width: -3 } });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).issues[0]!.path).toBe('width');
    }
    expect(() => resolveConfig(p, { preset: 'huge' })).toThrow(/no preset "huge"; presets: tiny, small/);
    expect(() => parseOverrides(['nokey'])).toThrow(/key=value/);
  });
});

describe('assemble', () => {
  beforeEach(() => { for (const p of list()) unregister(p.kind, p.name); register(teacher); register(distiller); register(mkStudent('s')); });
  it('lists each missing or mismatched feature', () => {
    try {
      assemble({ teacher: { plugin: 't' }, student: { plugin: 's' }, distiller: { plugin: 'd' } });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AssemblyError);
      const problems = (e as AssemblyError).problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/student "s" does not provide feature "stage1" \(needed for multi-scale distillation\); it provides: pre_head, heatmap/);
    }
  });
  it('accepts a compatible combination and a baseline', () => {
    const ok = defineStudent({ ...mkStudent('ok'), provides: (c: { width: number }) => ({ pre_head: { kind: 'bev' as const, channels: c.width, grid }, stage1: { kind: 'bev' as const, channels: 8, grid } }) });
    const a = assemble({ teacher: { plugin: 't' }, student: { plugin: ok, preset: 'tiny' }, distiller: { plugin: 'd' } });
    expect(a.student.features.pre_head!.channels).toBe(16);
    expect(a.distiller!.requirements).toHaveLength(4);
    expect(assemble({ student: { plugin: 's' } }).teacher).toBeUndefined();
  });
  it('catches grid and task mismatches', () => {
    const coarse = defineStudent({ ...mkStudent('c'), task: 'det', provides: () => ({ pre_head: { kind: 'bev' as const, channels: 8, grid: bevGrid([-40, -40, 40, 40], 100) }, stage1: { kind: 'bev' as const, channels: 8, grid } }) });
    expect(() => assemble({ teacher: { plugin: 't' }, student: { plugin: coarse }, distiller: { plugin: 'd' } })).toThrow(/does not share the grid/);
    const occ = defineStudent({ ...mkStudent('o'), task: 'occ' });
    expect(() => assemble({ teacher: { plugin: 't' }, student: { plugin: occ }, distiller: { plugin: 'd' } })).toThrow(/teacher "t" is a det model but student "o" is a occ model/);
    expect(() => assemble({ teacher: { plugin: 't' }, student: { plugin: 's' } })).toThrow(/without a distiller/);
  });
});

describe('progress', () => {
  it('prints plain lines off a TTY, the final state once, with rate and extra fields', async () => {
    const { createProgress, formatDuration } = await import('./progress.js');
    const out: string[] = [];
    const p = createProgress({ total: 4, label: 'train', unit: 'steps', stream: { write: (s: string) => out.push(s), isTTY: false }, intervalMs: 0 });
    p.update(1, { loss: 0.5 });
    p.update(4, { loss: 0.25 });
    p.done('finished');
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(/^train 1\/4 \(25%\) .* steps\/s .* loss 0\.5000\n$/);
    expect(out[1]).toMatch(/^train 4\/4 \(100%\) .* eta 0:00 loss 0\.2500\n$/);
    expect(out[2]).toBe('finished\n');
    expect(formatDuration(3725)).toBe('1:02:05');
  });

  it('draws a cli-progress bar on a TTY, redrawn in place, and ends it with a newline', async () => {
    const { createProgress } = await import('./progress.js');
    const out: string[] = [];
    const p = createProgress({ total: 4, label: 'eval', unit: 'samples', stream: { write: (s: string) => out.push(s), isTTY: true, columns: 200 }, intervalMs: 0 });
    p.update(2);
    await new Promise((r) => setTimeout(r, 5));
    p.update(4, { loss: 0.25 });
    p.done('finished');
    const text = out.join('');
    expect(text).toMatch(/eval \[#{12}\.{12}\] 2\/4 \(50%\) /);
    expect(text).toMatch(/eval \[#{24}\] 4\/4 \(100%\) .* samples\/s .* eta 0:00 loss 0\.2500\u001b\[0K\nfinished\n$/);
    expect(text.match(/\n/g)).toHaveLength(2); // one line, redrawn in place, then the message
    expect(text).not.toMatch(/\u001b[78]/); // no cursor save/restore
  });

  it('prints nothing when silent', async () => {
    const { createProgress } = await import('./progress.js');
    const out: string[] = [];
    const p = createProgress({ total: 2, label: 'x', silent: true, stream: { write: (s: string) => out.push(s), isTTY: true } });
    p.tick();
    p.done('bye');
    expect(out).toEqual([]);
  });
});
