import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, MVP_POINT_FEATURES, createRng, get, list, resolveConfig, type ForwardOutput, type Rng } from '@bevzoo/core';
import { CenterPointError, centerPointFeatures, centerPointGeometry, type BatchBoxesLike, type CenterPointPillar, type PillarDetectorBatch } from '@bevzoo/nn';
import { MVP_FEATURE_SCALE, MVP_PRESETS, createMVP, mvpConfigSchema, mvpTeacher, type MVPConfig } from './index.js';

/** The engine's wasm backend with its training kernels (as CenterPoint's tests; BEVZOO_TEST_BACKEND=cpu: tfjs's cpu). */
async function useBackend(): Promise<void> {
  if (process.env.BEVZOO_TEST_BACKEND === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    if (!tf.getGradient('Sum')) await import('@tensorflow/tfjs-core/dist/register_all_gradients');
    await tf.setBackend('cpu');
    return;
  }
  const { initEngine } = await import('@bevzoo/engine');
  await initEngine({ backend: 'wasm', log: () => {} });
}

const F = MVP_POINT_FEATURES;
const config = (preset: 'tiny' | 'small' | 'paper', overrides?: Record<string, unknown>): MVPConfig =>
  resolveConfig<MVPConfig>(mvpTeacher, { preset, overrides }).config;

interface Obj { x: number; y: number; w: number; l: number; h: number; yaw: number; label: number }

/** One 17-value point: x, y, z, intensity, Δt, class one-hot (label < 0: none), mask score, virtual flag. */
function point(out: number[], xyz: [number, number, number], intensity: number, dt: number, label: number, score: number, virtual: 0 | 1): void {
  const oneHot = Array<number>(10).fill(0);
  if (label >= 0) oneHot[label] = 1;
  out.push(...xyz, intensity, dt, ...oneHot, label >= 0 ? score : 0, virtual);
}

/**
 * A fixed scene in MVP's layout, as the loader gives it with `data.virtualPoints`: a ground grid (no mask), the surface
 * points of a few boxes over `sweeps` past scans (painted with their class and a mask score when `paint`), and
 * `virtual` virtual points per object (intensity 0, flag 1) on the boxes' surfaces.
 */
function scene(objs: Obj[], rng: Rng, opts: { paint?: boolean; virtual?: number; sweeps?: number } = {}): { points: Float32Array; boxes: BatchBoxesLike } {
  const pts: number[] = [];
  const surface = (o: Obj): [number, number, number] => {
    const c = Math.cos(o.yaw), s = Math.sin(o.yaw);
    const u = rng.uniform(-0.5, 0.5) * o.l, v = rng.uniform(-0.5, 0.5) * o.w;
    return [o.x + c * u - s * v, o.y + s * u + c * v, rng.uniform(0, o.h)];
  };
  for (let sw = 0; sw <= (opts.sweeps ?? 2); sw++) {
    const dt = 0.05 * sw;
    for (let gx = -50; gx <= 50; gx += 2.5) for (let gy = -50; gy <= 50; gy += 2.5) point(pts, [gx + rng.uniform(0, 1), gy + rng.uniform(0, 1), rng.normal(0, 0.02)], 10, dt, -1, 0, 0);
    for (const o of objs) for (let k = 0; k < 30; k++) point(pts, surface(o), 60, dt, opts.paint ? o.label : -1, 0.9, 0);
  }
  for (const o of objs) for (let k = 0; k < (opts.virtual ?? 0); k++) point(pts, surface(o), 0, 0, o.label, 0.9, 1);
  const n = objs.length;
  const boxes = {
    count: n, center: new Float32Array(n * 3), size: new Float32Array(n * 3), yaw: new Float32Array(n), velocity: new Float32Array(n * 2),
    velocityValid: new Uint8Array(n).fill(1), label: new Int32Array(n),
  };
  objs.forEach((o, i) => {
    boxes.center.set([o.x, o.y, o.h / 2], 3 * i);
    boxes.size.set([o.w, o.l, o.h], 3 * i);
    boxes.yaw[i] = o.yaw;
    boxes.label[i] = o.label;
  });
  return { points: new Float32Array(pts), boxes };
}

const OBJECTS_A: Obj[] = [
  { x: 12, y: -8, w: 1.9, l: 4.5, h: 1.6, yaw: 0.3, label: 0 },
  { x: -20, y: 15, w: 2.5, l: 7, h: 3, yaw: -1.2, label: 1 },
  { x: 30, y: 30, w: 0.6, l: 0.7, h: 1.7, yaw: 0, label: 5 },
];
const OBJECTS_B: Obj[] = [{ x: -5, y: -30, w: 2, l: 4.8, h: 1.5, yaw: 2, label: 0 }];

/** A two-sample batch in MVP's layout (`pointFeatures` = 17). */
function fixedBatch(opts: { paint?: boolean; virtual?: number } = { paint: true, virtual: 20 }): PillarDetectorBatch {
  const a = scene(OBJECTS_A, createRng(3), opts), b = scene(OBJECTS_B, createRng(4), opts);
  return { points: [a.points, b.points], pointFeatures: F, boxes: [a.boxes, b.boxes] };
}

/** The first 5 values of every real point: the batch a loader gives without `virtualPoints`. */
function lidarOnly(batch: PillarDetectorBatch): PillarDetectorBatch {
  const points = batch.points!.map((p) => {
    const out: number[] = [];
    for (let o = 0; o < p.length; o += F) if (p[o + F - 1] === 0) out.push(...p.subarray(o, o + 5));
    return new Float32Array(out);
  });
  return { points, boxes: batch.boxes };
}

const dispose = (out: ForwardOutput) => tf.dispose([...Object.values(out.features), ...Object.values(out.outputs)]);

beforeAll(useBackend);

describe('config and features', () => {
  it('registers teacher:mvp (det) with presets that all read virtual points, and the paper config as the MVP repository\'s', () => {
    expect(get('teacher', 'mvp')).toBe(mvpTeacher);
    expect(list('teacher').map((p) => p.name)).toContain('mvp');
    expect(mvpTeacher.task).toBe('det');
    expect(Object.keys(mvpTeacher.presets).sort()).toEqual(['paper', 'small', 'tiny']);
    for (const p of ['tiny', 'small', 'paper'] as const) {
      const cfg = config(p);
      expect(cfg.data, p).toMatchObject({ points: true, images: false, virtualPoints: true });
      expect(MVP_PRESETS[p].data, p).toMatchObject({ points: true, images: false, virtualPoints: true });
      expect(cfg.voxelEncoder.pointFeatures, p).toBe(17);
      expect(centerPointGeometry(cfg).pointFeatures).toBe(17);
      // the resolved JSON keeps the data setting (core's dataSettings knows it: zod would strip an unknown key)
      expect(JSON.parse(JSON.stringify(cfg)).data.virtualPoints, p).toBe(true);
    }
    const paper = config('paper');
    expect(paper.pillars).toMatchObject({ size: [0.2, 0.2, 8], maxPoints: 20, maxPillarsTrain: 30000, maxPillarsTest: 60000 });
    expect(paper.voxelEncoder.featChannels).toEqual([64, 64]);
    expect(paper.head.decode).toMatchObject({ nms: 'rotate', iouThreshold: 0.2 });
    expect(paper.train).toMatchObject({ objectSample: false, lr: 1e-3 });
    expect(mvpConfigSchema.parse({}).voxelEncoder.pointFeatures).toBe(17);
  });

  it('keeps the small preset CenterPoint small\'s with the wider input and the same schedule', () => {
    const small = config('small');
    expect(small.voxelEncoder.featureScale).toEqual([...MVP_FEATURE_SCALE]);
    expect(small.voxelEncoder.featureScale).toHaveLength(22);
    // the one-hot, score and flag factors sit between the raw features and the decorated offsets
    expect(small.voxelEncoder.featureScale!.slice(0, 5)).toEqual([1 / 51.2, 1 / 51.2, 0.25, 0.02, 2]);
    expect(small.voxelEncoder.featureScale!.slice(5, 17)).toEqual(Array(12).fill(1));
    expect(small.voxelEncoder.featureScale!.slice(17)).toEqual([2.5, 2.5, 0.5, 2.5, 2.5]);
    expect(small.train).toMatchObject({ steps: 4000, batchSize: 2, lr: 5e-3, warmupSteps: 20, evalEvery: 500, objectSample: true, objectSampleUntil: 0.75 });
    expect(small.data.sweeps).toBe(9);
    const f = centerPointFeatures(small);
    expect(Object.keys(f)).toEqual(['stage0', 'stage1', 'stage2', 'pre_head', 'heatmap']);
    expect(f.pre_head).toMatchObject({ kind: 'bev', channels: 96, stage: -1 });
    expect(f.pre_head!.grid.cells).toEqual([64, 64]); // CenterPoint small's head grid (1.6 m)
    expect(f.heatmap).toMatchObject({ kind: 'heatmap', channels: 10 });
  });

  it('rejects configs without virtual points, with another point width or a featureScale of another length, naming the field', () => {
    expect(() => config('tiny', { data: { virtualPoints: false } })).toThrow(/data\.virtualPoints[\s\S]*expected true/);
    expect(() => config('tiny', { voxelEncoder: { pointFeatures: 5, featureScale: null } })).toThrow(/voxelEncoder\.pointFeatures[\s\S]*expected 17/);
    expect(() => config('tiny', { voxelEncoder: { featureScale: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] } })).toThrow(/voxelEncoder\.featureScale[\s\S]*22 factors[\s\S]*found 10 factors/);
    expect(() => centerPointGeometry({ ...config('tiny'), voxelEncoder: { ...config('tiny').voxelEncoder, featureScale: [1] } })).toThrow(CenterPointError);
  });

  it('builds the paper configuration with mmdet3d parameter names, the first PFN layer reading 17 + 5 features', () => {
    const m = createMVP(config('paper'), createRng(0));
    try {
      const shapes = Object.fromEntries(m.namedParameters().map(([n, v]) => [n, v.shape]));
      expect(shapes['pts_voxel_encoder.pfn_layers.0.linear.weight']).toEqual([22, 32]); // 22 → 32 ⊕ max → 64
      expect(shapes['pts_voxel_encoder.pfn_layers.1.linear.weight']).toEqual([64, 64]);
      expect(shapes['pts_backbone.blocks.0.0.weight']).toEqual([3, 3, 64, 64]);
      expect(shapes['head.shared_conv.conv.weight']).toEqual([3, 3, 384, 64]);
      expect(Object.keys(m.stateDict()).every((k) => /^(pts_voxel_encoder|pts_backbone|pts_neck|head)\./.test(k))).toBe(true);
    } finally {
      m.dispose();
    }
  });
});

describe('tiny model', () => {
  it('gives every named feature with the shape provides() announces on 17-value points', () => {
    const cfg = config('tiny');
    const m = createMVP(cfg, createRng(1));
    const out = m.forward(fixedBatch(), { training: false });
    try {
      const specs = mvpTeacher.provides(cfg);
      expect(Object.keys(out.features).sort()).toEqual(Object.keys(specs).sort());
      for (const [name, spec] of Object.entries(specs)) {
        const [X, Y] = spec.grid.cells as [number, number];
        expect(out.features[name]!.shape, name).toEqual([2, Y, X, spec.channels]);
      }
      expect(Object.keys(out.outputs).sort()).toEqual([0, 1, 2, 3, 4, 5].flatMap((t) => [`task${t}.box`, `task${t}.heatmap`]));
      for (const t of Object.values({ ...out.features, ...out.outputs })) expect(Array.from(t.dataSync()).every(Number.isFinite)).toBe(true);
    } finally {
      dispose(out);
      m.dispose();
    }
  });

  it('reads the paintings and the virtual points: each changes the output', () => {
    const m = createMVP(config('tiny'), createRng(1));
    const heatmap = (batch: PillarDetectorBatch) => tf.tidy(() => {
      const out = m.forward(batch, { training: false });
      return tf.concat([tf.reshape(out.features.heatmap!, [-1]), tf.reshape(out.features.pre_head!, [-1])]);
    });
    const plain = heatmap(fixedBatch({ paint: false, virtual: 0 }));
    const painted = heatmap(fixedBatch({ paint: true, virtual: 0 }));
    const withVirtual = heatmap(fixedBatch({ paint: true, virtual: 20 }));
    const again = heatmap(fixedBatch({ paint: true, virtual: 20 }));
    try {
      const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
      expect(maxDiff(plain, painted)).toBeGreaterThan(1e-4);
      expect(maxDiff(painted, withVirtual)).toBeGreaterThan(1e-4);
      expect(maxDiff(withVirtual, again)).toBe(0); // evaluation is deterministic: the differences are the inputs'
    } finally {
      tf.dispose([plain, painted, withVirtual, again]);
      m.dispose();
    }
  });

  it('rejects a batch loaded without virtual points, naming the batch field and the data setting', () => {
    const m = createMVP(config('tiny'), createRng(1));
    try {
      const five = lidarOnly(fixedBatch());
      expect(() => m.forward(five, { training: true })).toThrow(CenterPointError);
      expect(() => m.forward(five, { training: true })).toThrow(/^MVP\.forward: batch\.pointFeatures: expected 17 features per point \(x, y, z, intensity, Δt, class one-hot ×10, mask score, virtual flag\); load the batch with data\.virtualPoints = true.*found 5 \(field absent/);
      // a batch claiming 17 values whose arrays do not hold whole points
      const bad = fixedBatch();
      expect(() => m.forward({ ...bad, points: [bad.points![0]!.subarray(0, 170), bad.points![1]!.subarray(0, 16)] }, { training: false })).toThrow(/MVP\.forward: batch\.points\[1\]: expected a multiple of 17 values/);
      expect(() => m.forward({ boxes: bad.boxes }, { training: false })).toThrow(/MVP\.forward: batch\.points.*data\.virtualPoints = true/);
    } finally {
      m.dispose();
    }
  });

  it('lowers the loss over 12 steps on a fixed batch and leaks no tensor per step', () => {
    const m = createMVP(config('tiny'), createRng(2));
    const batch = fixedBatch();
    const params = m.trainableParameters();
    const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0 });
    const losses: number[] = [];
    const counts: number[] = [];
    try {
      for (let s = 0; s < 12; s++) {
        // the loss parts are kept by the loss (the trainer logs and disposes them)
        const parts: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const l = m.loss(m.forward(batch, { training: true }), batch);
          parts.push(...Object.values(l.parts));
          return l.total;
        }, params.map(([, v]) => v));
        expect(params.every(([, v]) => grads[v.name] !== undefined)).toBe(true);
        opt.step(new Map(params.map(([n, v]) => [n, grads[v.name]!] as [string, tf.Tensor])), 3e-3);
        losses.push(value.dataSync()[0]!);
        tf.dispose([value, ...Object.values(grads), ...parts]);
        counts.push(tf.memory().numTensors);
      }
    } finally {
      opt.dispose();
      m.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.7);
    expect(new Set(counts.slice(2)).size).toBe(1); // constant tensor count once the optimiser's moments exist
  });

  it('predicts boxes from its outputs in the batch frame', async () => {
    const m: CenterPointPillar = createMVP(config('tiny', { head: { decode: { scoreThreshold: 0 } } }), createRng(5));
    const batch = fixedBatch();
    const out = m.forward(batch, { training: false });
    try {
      const dets = await m.predict(out, batch);
      expect(dets).toHaveLength(2);
      expect(dets.flat().length).toBeGreaterThan(0);
      for (const d of dets.flat()) expect(d.center.every(Number.isFinite)).toBe(true);
    } finally {
      dispose(out);
      m.dispose();
    }
  });
});
