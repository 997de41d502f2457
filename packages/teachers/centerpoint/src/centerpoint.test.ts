import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, createRng, get, list, resolveConfig, sameArea, type ForwardOutput } from '@bevzoo/core';
import type { BatchBoxes } from '@bevzoo/nuscenes';
import { CenterHead, canFuseHead, concatRegression, fusedCenterHeadForward } from '@bevzoo/nn';
import {
  CENTERPOINT_PRESETS, CenterPointError, CenterPointPillar, centerPointConfigSchema, centerPointFeatures, centerPointGeometry,
  centerPointTeacher, shufflePoints, type CenterPointBatch, type CenterPointConfig,
} from './index.js';

/**
 * The engine's wasm backend with its training kernels (default): tfjs's cpu kernel of UnsortedSegmentSum (the pillar
 * scatter, and the gradient of every gather) loops over all segments and takes seconds here. BEVZOO_TEST_BACKEND=cpu
 * runs on the pure-JS cpu backend instead.
 */
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

const config = (preset: 'tiny' | 'small' | 'paper', overrides?: Record<string, unknown>): CenterPointConfig =>
  resolveConfig<CenterPointConfig>(centerPointTeacher, { preset, overrides }).config;

interface Obj { x: number; y: number; w: number; l: number; h: number; yaw: number; vx: number; vy: number; label: number }

/**
 * A tiny fixed scene: a flat ground grid plus the surface points of a few boxes, swept over `sweeps` past scans
 * (Δt = 0.05 s each; moving boxes were elsewhere then, as in a real multi-sweep cloud).
 */
function scene(objs: Obj[], rng = createRng(3), sweeps = 2): { points: Float32Array; boxes: BatchBoxes } {
  const pts: number[] = [];
  for (let s = 0; s <= sweeps; s++) {
    const dt = 0.05 * s;
    for (let gx = -50; gx <= 50; gx += 2.5) for (let gy = -50; gy <= 50; gy += 2.5) pts.push(gx + rng.uniform(0, 1), gy + rng.uniform(0, 1), rng.normal(0, 0.02), 10, dt);
    for (const o of objs) {
      const cx = o.x - o.vx * dt, cy = o.y - o.vy * dt;
      const c = Math.cos(o.yaw), sn = Math.sin(o.yaw);
      for (let k = 0; k < 80; k++) {
        const u = rng.uniform(-0.5, 0.5) * o.l, v = rng.uniform(-0.5, 0.5) * o.w, z = rng.uniform(0, o.h);
        pts.push(cx + c * u - sn * v, cy + sn * u + c * v, z, 60, dt);
      }
    }
  }
  const n = objs.length;
  const boxes: BatchBoxes = {
    count: n, center: new Float32Array(n * 3), size: new Float32Array(n * 3), yaw: new Float32Array(n), velocity: new Float32Array(n * 2),
    velocityValid: new Uint8Array(n).fill(1), label: new Int32Array(n), tokens: [], instanceTokens: [], attributeNames: [],
  };
  objs.forEach((o, i) => {
    boxes.center.set([o.x, o.y, o.h / 2], 3 * i);
    boxes.size.set([o.w, o.l, o.h], 3 * i);
    boxes.yaw[i] = o.yaw;
    boxes.velocity.set([o.vx, o.vy], 2 * i);
    boxes.label[i] = o.label;
  });
  return { points: new Float32Array(pts), boxes };
}

function fixedBatch(): CenterPointBatch {
  const a = scene([
    { x: 12, y: -8, w: 1.9, l: 4.5, h: 1.6, yaw: 0.3, vx: 5, vy: 1, label: 0 },
    { x: -20, y: 15, w: 2.5, l: 7, h: 3, yaw: -1.2, vx: 0, vy: 0, label: 1 },
    { x: 30, y: 30, w: 0.6, l: 0.7, h: 1.7, yaw: 0, vx: 1, vy: 0, label: 5 },
  ]);
  const b = scene([{ x: -5, y: -30, w: 2, l: 4.8, h: 1.5, yaw: 2, vx: -3, vy: 4, label: 0 }], createRng(4));
  return { points: [a.points, b.points], boxes: [a.boxes, b.boxes] };
}

beforeAll(useBackend);

describe('config and features', () => {
  it('registers teacher:centerpoint with its presets and a zod schema whose defaults are the paper config', () => {
    expect(get('teacher', 'centerpoint')).toBe(centerPointTeacher);
    expect(list('teacher').map((p) => p.name)).toContain('centerpoint');
    expect(Object.keys(centerPointTeacher.presets).sort()).toEqual(['paper', 'small', 'tiny']);
    const paper = config('paper');
    expect(paper).toEqual(centerPointConfigSchema.parse({}));
    expect(paper.train.steps).toBeGreaterThan(0); // nested defaults are filled (prefault)
    expect(paper.data).toMatchObject({ points: true, images: false, sweeps: 9 });
    const g = centerPointGeometry(paper);
    expect(g.pillarCells).toEqual([512, 512]);
    expect(g.stageGrids.map((s) => s.cells)).toEqual([[256, 256], [128, 128], [64, 64]]);
    expect(g.headGrid.cells).toEqual([128, 128]);
    expect(g.headGrid.cellSize).toEqual([0.8, 0.8]);
    const f = centerPointFeatures(paper);
    expect(Object.keys(f)).toEqual(['stage0', 'stage1', 'stage2', 'pre_head', 'heatmap']);
    expect(f.pre_head).toMatchObject({ kind: 'bev', channels: 384, stage: -1 });
    expect(f.heatmap).toMatchObject({ kind: 'heatmap', channels: 10 });
    expect(f.stage2).toMatchObject({ kind: 'bev', channels: 256, stage: 2 });
    for (const spec of Object.values(f)) expect(spec.grid.range).toEqual([-51.2, -51.2, 51.2, 51.2]);
  });

  it('rejects configs whose grids do not fit, naming the field', () => {
    expect(() => resolveConfig(centerPointTeacher, { preset: 'tiny', overrides: { neck: { upsampleStrides: [1, 1, 2] } } })).toThrow(/neck\.upsampleStrides/);
    expect(() => resolveConfig(centerPointTeacher, { preset: 'tiny', overrides: { pillars: { size: [0.3, 0.3, 8] } } })).toThrow(/pillars\.size/);
    expect(() => centerPointGeometry({ ...config('tiny'), backbone: { outChannels: [8, 8], layerNums: [1, 1, 1], layerStrides: [2, 2, 2] } })).toThrow(CenterPointError);
    // featureScale: one factor per raw point feature (5) and decorated offset (5)
    expect(() => resolveConfig(centerPointTeacher, { preset: 'small', overrides: { voxelEncoder: { featureScale: [1, 1, 1, 1, 1, 1, 1, 1, 1] } } })).toThrow(/voxelEncoder\.featureScale[\s\S]*10 factors[\s\S]*found 9 factors/);
  });

  it('leaves voxelEncoder.pointFeatures out of every resolved config (5-value points; the packaged weights match that JSON)', () => {
    for (const p of ['tiny', 'small', 'paper'] as const) {
      expect(Object.keys(config(p).voxelEncoder), p).toEqual(['featChannels', 'featureScale']);
      expect(centerPointGeometry(config(p)).pointFeatures).toBe(5);
    }
  });

  it('keeps every preset constructible; the small preset covers the students\' detection range', () => {
    for (const p of ['tiny', 'small', 'paper'] as const) expect(() => centerPointGeometry(config(p))).not.toThrow();
    const small = centerPointFeatures(config('small'));
    expect(small.pre_head!.grid.range).toEqual([-51.2, -51.2, 51.2, 51.2]);
    expect(CENTERPOINT_PRESETS.small.train?.steps).toBeGreaterThan(0);
  });

  it('builds the paper configuration with mmdet3d parameter names and shapes', () => {
    const m = new CenterPointPillar(config('paper'), createRng(0));
    try {
      const shapes = Object.fromEntries(m.namedParameters().map(([n, v]) => [n, v.shape]));
      expect(shapes['pts_voxel_encoder.pfn_layers.0.linear.weight']).toEqual([10, 64]);
      expect(shapes['pts_backbone.blocks.0.0.weight']).toEqual([3, 3, 64, 64]);
      expect(shapes['pts_backbone.blocks.2.15.weight']).toEqual([3, 3, 256, 256]); // 5 extra convs in stage 2
      expect(shapes['pts_neck.deblocks.0.0.weight']).toEqual([2, 2, 64, 128]); // stride-2 conv (upsample 0.5)
      expect(shapes['pts_neck.deblocks.1.0.weight']).toEqual([1, 1, 128, 128]); // 1×1 conv (use_conv_for_no_stride)
      expect(shapes['pts_neck.deblocks.2.0.weight']).toEqual([2, 2, 128, 256]); // deconv ×2, tfjs [kh, kw, out, in]
      expect(shapes['head.shared_conv.conv.weight']).toEqual([3, 3, 384, 64]);
      expect(shapes['head.task_heads.5.heatmap.1.weight']).toEqual([3, 3, 64, 2]);
      expect(shapes['head.task_heads.0.vel.1.bias']).toEqual([2]);
      const keys = Object.keys(m.stateDict());
      expect(keys).toContain('pts_backbone.blocks.0.1.running_var');
      expect(keys.every((k) => /^(pts_voxel_encoder|pts_backbone|pts_neck|head)\./.test(k))).toBe(true);
      expect(m.numParameters()).toBeGreaterThan(4e6);
    } finally {
      m.dispose();
    }
  });
});

describe('tiny model', () => {
  it('gives every named feature with the shape provides() announces, and the head outputs', () => {
    const cfg = config('tiny');
    const m = new CenterPointPillar(cfg, createRng(1));
    const batch = fixedBatch();
    const out = m.forward(batch, { training: false });
    try {
      const specs = centerPointFeatures(cfg);
      expect(Object.keys(out.features).sort()).toEqual(Object.keys(specs).sort());
      for (const [name, spec] of Object.entries(specs)) {
        const [X, Y] = spec.grid.cells as [number, number];
        expect(out.features[name]!.shape, name).toEqual([2, Y, X, spec.channels]);
      }
      const [X, Y] = specs.heatmap!.grid.cells as [number, number];
      expect(Object.keys(out.outputs).sort()).toEqual([0, 1, 2, 3, 4, 5].flatMap((t) => [`task${t}.box`, `task${t}.heatmap`]));
      expect(out.outputs['task1.heatmap']!.shape).toEqual([2, Y, X, 2]);
      expect(out.outputs['task0.box']!.shape).toEqual([2, Y, X, 10]);
      // heatmap feature = task heatmaps concatenated in task order
      const hm = out.features.heatmap!.arraySync() as number[][][][];
      const t5 = out.outputs['task5.heatmap']!.arraySync() as number[][][][];
      expect(hm[1]![2]![3]![8]).toBeCloseTo(t5[1]![2]![3]![0]!, 6);
      // stage grids cover the same area as the head's
      expect(sameArea(specs.stage0!.grid, specs.pre_head!.grid)).toBe(true);
    } finally {
      tf.dispose([...Object.values(out.features), ...Object.values(out.outputs)]);
      m.dispose();
    }
  });

  it('fails with a typed error when the batch has no points', () => {
    const m = new CenterPointPillar(config('tiny'), createRng(1));
    try {
      expect(() => m.forward({ boxes: fixedBatch().boxes }, { training: true })).toThrow(/batch\.points.*data\.points = true/);
      // a batch of MVP's 17-value points (data.virtualPoints) is not read as 5-value ones
      const { points, boxes } = fixedBatch();
      const wide = points!.map((p) => new Float32Array((p.length / 5) * 17));
      expect(() => m.forward({ points: wide, pointFeatures: 17, boxes }, { training: false })).toThrow(/^CenterPointPillar\.forward: batch\.pointFeatures: expected 5 features per point \(x, y, z, intensity, Δt\).*found 17$/);
    } finally {
      m.dispose();
    }
  });

  it('lowers the loss over 10 steps on a fixed batch and leaks no tensor per step', () => {
    const m = new CenterPointPillar(config('tiny', { head: { headChannels: 8 } }), createRng(2));
    const batch = fixedBatch();
    const params = m.trainableParameters();
    const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0 });
    const losses: number[] = [];
    const counts: number[] = [];
    try {
      for (let s = 0; s < 12; s++) {
        const parts: Record<string, tf.Scalar> = {};
        const { value, grads } = tf.variableGrads(() => {
          const l = m.loss(m.forward(batch, { training: true }), batch);
          for (const [k, v] of Object.entries(l.parts)) parts[k] = tf.keep(v);
          return l.total;
        }, params.map(([, v]) => v));
        const byName = new Map(params.map(([n, v]) => [n, grads[v.name]!] as [string, tf.Tensor]));
        expect([...byName.values()].every((g) => g !== undefined)).toBe(true);
        opt.step(byName, 3e-3);
        losses.push(value.dataSync()[0]!);
        expect(Object.keys(parts)).toContain('det.task0.heatmap');
        tf.dispose([value, ...Object.values(grads), ...Object.values(parts)]);
        counts.push(tf.memory().numTensors);
      }
    } finally {
      opt.dispose();
      m.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.7);
    expect(new Set(counts.slice(2)).size).toBe(1); // constant tensor count after the optimiser's moments exist
  });

  it('predicts boxes in the ego frame of the batch, near the objects it was fitted on', async () => {
    const cfg = config('tiny', { pillars: { size: [1.6, 1.6, 8] }, head: { decode: { scoreThreshold: 0.3 } } });
    const m = new CenterPointPillar(cfg, createRng(5));
    const { points, boxes } = scene([{ x: 20, y: -12, w: 2, l: 4.6, h: 1.6, yaw: 0.5, vx: 4, vy: 0, label: 0 }]);
    const batch: CenterPointBatch = { points: [points], boxes: [boxes] };
    const params = m.trainableParameters();
    const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
    let fwd: ForwardOutput | null = null;
    try {
      for (let s = 0; s < 60; s++) {
        const { value, grads } = tf.variableGrads(() => m.loss(m.forward(batch, { training: true }), batch).total, params.map(([, v]) => v));
        opt.step(new Map(params.map(([n, v]) => [n, grads[v.name]!] as [string, tf.Tensor])), 1e-2);
        tf.dispose([value, ...Object.values(grads)]);
      }
      // Eval mode uses the running BN statistics; momentum 0.1 has converged on this one batch.
      fwd = tf.tidy(() => m.forward(batch, { training: false }) as unknown as tf.TensorContainer) as unknown as ForwardOutput;
      const [dets] = await m.predict(fwd, batch);
      expect(dets!.length).toBeGreaterThan(0);
      const best = dets!.reduce((a, b) => (b.score > a.score ? b : a));
      expect(best.label).toBe(0);
      expect(Math.hypot(best.center[0] - 20, best.center[1] + 12)).toBeLessThan(1.6);
      expect(best.size[1]).toBeGreaterThan(best.size[0]); // length > width
    } finally {
      if (fwd) tf.dispose([...Object.values(fwd.features), ...Object.values(fwd.outputs)]);
      opt.dispose();
      m.dispose();
    }
  });
});

describe('pieces', () => {
  it('shuffles points as whole rows, deterministically per generator', () => {
    const pts = new Float32Array(Array.from({ length: 50 }, (_, i) => i)); // 10 points × 5
    const a = shufflePoints(pts, 5, createRng(1)), b = shufflePoints(pts, 5, createRng(1)), c = shufflePoints(pts, 5, createRng(2));
    expect(a).toEqual(b);
    expect(a).not.toEqual(pts);
    expect(a).not.toEqual(c);
    const rows = (x: Float32Array) => Array.from({ length: 10 }, (_, i) => Array.from(x.subarray(5 * i, 5 * i + 5)).join(',')).sort();
    expect(rows(a)).toEqual(rows(pts));
  });

  it.each([
    [{}, {}],
    [{ vel: 1 }, {}],
    [{ reg: 1, vel: 1 }, {}],
    [{}, { vel: 0.1 }],
    [{ reg: 1 }, { vel: 0.1, dim: 0.3 }],
  ])('the fused head gives the outputs, gradients and running statistics of CenterHead.forward (numConvs %j, leakyRelu %j)', (numConvs, leakyRelu) => {
    // outputs of CenterHead.forward in the fused form (box code, heatmap)
    const mk = () => new CenterHead({ inChannels: 6, sharedChannels: 8, headChannels: 4, numConvs, leakyRelu, grid: { range: [-8, -8, 8, 8], cellSize: [2, 2], stride: 1 } }, { rng: createRng(9) });
    const a = mk(), b = mk();
    expect(canFuseHead(a)).toBe(true);
    expect(a.stateDict()['task_heads.0.vel.0.weight']?.shape ?? null).toEqual('vel' in numConvs ? [3, 3, 8, 2] : null);
    const x = tf.randomNormal([2, 8, 8, 6], 0, 1, 'float32', 3) as tf.Tensor4D;
    try {
      for (const training of [true, false]) {
        a.train(training);
        b.train(training);
        const loss = (outs: { heatmap: tf.Tensor; box: tf.Tensor }[]) =>
          tf.addN(outs.flatMap((o, t) => [tf.mul(tf.sum(tf.square(o.heatmap)), t + 1), tf.sum(tf.mul(tf.square(o.box), tf.range(1, 11)))])) as tf.Scalar;
        const ga = tf.variableGrads(() => loss(a.forward(x).map((o) => ({ heatmap: o.heatmap, box: concatRegression(o) }))), a.parameters());
        const gb = tf.variableGrads(() => loss(fusedCenterHeadForward(b, x)), b.parameters());
        expect(gb.value.dataSync()[0]).toBeCloseTo(ga.value.dataSync()[0]!, 2);
        const pa = a.namedParameters(), pb = b.namedParameters();
        pa.forEach(([n, v], i) => {
          const ref = ga.grads[v.name]!, got = gb.grads[pb[i]![1].name]!;
          const [d, scale] = tf.tidy(() => [tf.max(tf.abs(tf.sub(ref, got))).dataSync()[0]!, tf.max(tf.abs(ref)).dataSync()[0]!]);
          expect(d, n).toBeLessThanOrEqual(1e-4 * Math.max(scale!, 1));
        });
        tf.dispose([ga.value, gb.value, ...Object.values(ga.grads), ...Object.values(gb.grads)]);
      }
      const sa = a.stateDict(), sb = b.stateDict();
      for (const k of Object.keys(sa).filter((k) => k.includes('running') || k.includes('num_batches'))) {
        expect(Array.from(sb[k]!.dataSync()), k).toEqual(Array.from(sa[k]!.dataSync()).map((v) => expect.closeTo(v, 5)));
      }
    } finally {
      x.dispose();
      a.dispose();
      b.dispose();
    }
  });
});
