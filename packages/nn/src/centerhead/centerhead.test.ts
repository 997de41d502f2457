import * as tf from '@tensorflow/tfjs-core';
import { createRng, Trainer, type TrainableModel } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randn, useCpu } from '../testutil.js';
import { centerHeadConfig, CenterHeadError, featureMapSize, NUSCENES_CLASS_NAMES, type CenterHeadConfigInput } from './config.js';
import { decodeCenterHead, type DetBox } from './decode.js';
import { CenterHead, disposeTaskOutputs } from './head.js';
import { ConvModule } from '../layers/conv-module.js';
import { centerHeadLoss, gaussianFocalLoss, regL1Loss, type TaskOutput } from './loss.js';
import { circleNms, rotatedIouBev, rotatedNms } from './nms.js';
import { buildTargets, drawHeatmapGaussian, gaussianRadius, type CenterHeadTargets, type GtBox } from './targets.js';

beforeAll(useCpu);

const label = (name: string) => NUSCENES_CLASS_NAMES.indexOf(name);

describe('gaussianRadius', () => {
  it('matches the hand-computed third root (mmdet3d divides every root by 2)', () => {
    // 10×10 cells, overlap 0.1: r3 = (−2·0.1·20 + √(0.04·400 + 16·0.1·0.9·100)) / 2 = (−4 + √160) / 2.
    expect(gaussianRadius([10, 10], 0.1)).toBeCloseTo((-4 + Math.sqrt(160)) / 2, 12);
    expect(gaussianRadius([10, 10], 0.1)).toBeCloseTo(4.324555320336759, 12);
    // A car 4.5 × 1.9 m at 0.8 m cells: (−1.6 + √21.7975) / 2.
    expect(gaussianRadius([5.625, 2.375], 0.1)).toBeCloseTo((-1.6 + Math.sqrt(21.7975)) / 2, 12);
    expect(gaussianRadius([4, 40], 0.5)).toBeCloseTo(3.3771550808990405, 12);
    expect(gaussianRadius([40, 4], 0.5)).toBe(gaussianRadius([4, 40], 0.5)); // symmetric
  });
});

describe('targets', () => {
  const cfg = centerHeadConfig({ inChannels: 4, grid: { range: [-16, -16, 16, 16], cellSize: [1, 1], stride: 1 } });

  it('draws a Gaussian peaking at 1 at the centre cell with the right radius', () => {
    // 10 × 10 m box → 10 × 10 cells → radius int(4.32) = 4; σ = 9/6.
    const box: GtBox = { center: [0.3, -2.6, 0.5], size: [10, 10, 2], yaw: 0.3, velocity: [1, -2], label: label('car') };
    const t = buildTargets([[box]], cfg);
    const [H, W] = featureMapSize(cfg.grid);
    expect([H, W]).toEqual([32, 32]);
    const hm = t.tasks[0]!.heatmap; // car task: 1 class
    const at = (y: number, x: number) => hm[y * W + x]!;
    const cx = 16, cy = 13; // ⌊(0.3 + 16)/1⌋, ⌊(−2.6 + 16)/1⌋
    expect(at(cy, cx)).toBe(1);
    let max = 0;
    for (const v of hm) max = Math.max(max, v);
    expect(max).toBe(1);
    const s2 = 2 * (9 / 6) ** 2;
    expect(at(cy, cx + 4)).toBeCloseTo(Math.exp(-16 / s2), 6);
    expect(at(cy - 4, cx)).toBeCloseTo(Math.exp(-16 / s2), 6);
    expect(at(cy + 1, cx + 1)).toBeCloseTo(Math.exp(-2 / s2), 6);
    expect(at(cy, cx + 5)).toBe(0);
    expect(at(cy + 5, cx)).toBe(0);
    expect(hm.filter((v) => v > 0).length).toBe(81);
    // Regression target at the centre cell.
    expect(t.tasks[0]!.ind[0]).toBe(cy * W + cx);
    expect(t.tasks[0]!.mask[0]).toBe(1);
    const ab = Array.from(t.tasks[0]!.annoBox.subarray(0, 10));
    const expected = [0.3, 0.4, 0.5, Math.log(10), Math.log(10), Math.log(2), Math.sin(0.3), Math.cos(0.3), 1, -2];
    ab.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    // Other tasks are empty.
    expect(t.tasks[1]!.heatmap.every((v) => v === 0)).toBe(true);
    expect(t.tasks[1]!.mask.every((v) => v === 0)).toBe(true);
  });

  it('uses the minimum radius, merges overlaps by max, routes classes to tasks, skips boxes off the grid', () => {
    const small: GtBox = { center: [0.5, 0.5, 0], size: [1.9, 4.5, 1.6], yaw: 0, label: label('car') };
    const near: GtBox = { ...small, center: [2.5, 0.5, 0] };
    const off: GtBox = { ...small, center: [40, 0, 0] };
    const cone: GtBox = { ...small, size: [0.4, 0.4, 1], label: label('traffic_cone') };
    const t = buildTargets([[small, near, off, cone], []], cfg);
    const hm = t.tasks[0]!.heatmap;
    const W = 32;
    const s2 = 2 * (5 / 6) ** 2; // radius max(2, int(1.5…)) = 2 → σ = 5/6
    expect(hm[16 * W + 16]).toBe(1);
    expect(hm[16 * W + 18]).toBe(1);
    expect(hm[16 * W + 17]).toBeCloseTo(Math.exp(-1 / s2), 6); // max of the two, both exp(−1/s2)
    expect(hm[16 * W + 19]).toBeCloseTo(Math.exp(-1 / s2), 6);
    expect(hm[16 * W + 20]).toBeCloseTo(Math.exp(-4 / s2), 6);
    expect(hm[16 * W + 21]).toBe(0);
    expect(Array.from(t.tasks[0]!.mask.subarray(0, 4))).toEqual([1, 1, 0, 0]); // slot 2 (off grid) stays empty
    // traffic_cone is class 1 of task 5; velocity missing → NaN targets (masked in the loss).
    const pc = t.tasks[5]!;
    expect(pc.numClasses).toBe(2);
    expect(pc.heatmap[(16 * W + 16) * 2 + 1]).toBe(1);
    expect(pc.heatmap[(16 * W + 16) * 2]).toBe(0);
    expect(Number.isNaN(pc.annoBox[8]!)).toBe(true);
    // Sample 1 is empty.
    expect(hm.subarray(32 * 32).every((v) => v === 0)).toBe(true);
    expect(() => buildTargets([[{ ...small, label: 10 }]], cfg)).toThrow(CenterHeadError);
  });

  it('drawHeatmapGaussian clips at the border', () => {
    const hm = new Float32Array(4 * 4);
    drawHeatmapGaussian(hm, { height: 4, width: 4, channels: 1, channel: 0 }, 0, 3, 2);
    expect(hm[3 * 4]).toBe(1);
    expect(hm[1 * 4 + 2]).toBeCloseTo(Math.exp(-8 / (2 * (5 / 6) ** 2)), 6);
    expect(hm[3]).toBe(0);
  });
});

describe('losses', () => {
  it('Gaussian focal loss on hand-computed values', () => {
    const logits = tf.tensor4d([0, 2, 20, -3], [1, 2, 2, 1]);
    const target = new Float32Array([1, 0.5, 0, 0.2]);
    const p1 = 1 / (1 + Math.exp(-2)), p2 = Math.fround(1 - 1e-4), p3 = 1 / (1 + Math.exp(3));
    const pos = -Math.log(0.5) * 0.25; // p = 0.5, target 1
    const n1 = -Math.log(1 - p1) * p1 ** 2 * 0.5 ** 4;
    const n2 = -Math.log(1 - p2) * p2 ** 2; // clamped at 1 − 1e-4 (in float32)
    const n3 = -Math.log(1 - p3) * p3 ** 2 * 0.8 ** 4;
    const l = gaussianFocalLoss(logits, target);
    expect(l.dataSync()[0]).toBeCloseTo(pos + n1 + n2 + n3, 4); // one positive
    expect(pos + n1 + n2 + n3).toBeCloseTo(0.1732868 + 0.1031297 + 9.2083 + 0.0000168, 3);
    const none = gaussianFocalLoss(logits, new Float32Array([0, 0, 0, 0]));
    expect(none.dataSync()[0]).toBeCloseTo(-Math.log(0.5) * 0.25 + -Math.log(1 - p1) * p1 ** 2 + n2 + -Math.log(1 - p3) * p3 ** 2, 4);
    tf.dispose([logits, l, none]);
  });

  it('L1 on positives with code weights, NaN targets masked, / (#objects + 1e-4)', () => {
    // pred [1, 2, 2, 10]: cell k holds k + 0.1·c in channel c.
    const pred = tf.tensor4d(Array.from({ length: 40 }, (_, i) => Math.floor(i / 10) + 0.1 * (i % 10)), [1, 2, 2, 10]);
    const target = new Float32Array(30);
    target.fill(1, 0, 10); // object 0 at cell 3, all targets 1
    target.fill(2, 10, 20); // object 1 at cell 1, all targets 2, velocity NaN
    target[18] = Number.NaN;
    target[19] = Number.NaN;
    const ind = new Int32Array([3, 1, 0]);
    const mask = new Float32Array([1, 1, 0]);
    const w = [1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2];
    const l = regL1Loss(pred, { annoBox: target, ind, mask }, w);
    // object 0: |3 + 0.1c − 1| = 2 + 0.1c; object 1: |1 + 0.1c − 2| = |−1 + 0.1c| for c < 8.
    let sum = 0;
    for (let c = 0; c < 10; c++) sum += (2 + 0.1 * c) * w[c]!;
    for (let c = 0; c < 8; c++) sum += Math.abs(-1 + 0.1 * c);
    expect(l.dataSync()[0]).toBeCloseTo(sum / (2 + 1e-4), 5);
    tf.dispose([pred, l]);
  });
});

describe('NMS', () => {
  it('circle NMS suppresses by squared centre distance, best first', () => {
    const xs = [0, 1, 5, 0.5, 5.2], ys = [0, 0, 0, 1.8, 0.5];
    const scores = [0.9, 0.8, 0.7, 0.95, 0.6];
    // order 3, 0, 1, 2, 4: d²(3,0) = 3.49 > 1 → keep 0; d²(0,1) = 1 ≤ 1 → drop 1; d²(2,4) = 0.29 → drop 4.
    expect(circleNms(xs, ys, scores, 1)).toEqual([3, 0, 2]);
    expect(circleNms(xs, ys, scores, 4)).toEqual([3, 2]); // d²(3,0) = 3.49 ≤ 4
    expect(circleNms(xs, ys, scores, 1, 2)).toEqual([3, 0]);
  });

  it('rotated BEV IoU of known rectangles', () => {
    const sq = (x: number, y: number, yaw = 0, w = 1, l = 1) => ({ center: [x, y, 0] as [number, number, number], size: [w, l, 1] as [number, number, number], yaw });
    expect(rotatedIouBev(sq(0, 0), sq(0, 0))).toBeCloseTo(1, 10);
    expect(rotatedIouBev(sq(0, 0), sq(0.5, 0))).toBeCloseTo(1 / 3, 10);
    expect(rotatedIouBev(sq(0, 0, 0, 1, 2), sq(0, 0, Math.PI / 2, 1, 2))).toBeCloseTo(1 / 3, 10);
    // Unit square against itself turned 45°: the overlap is a regular octagon of area 2(√2 − 1).
    const inter = 2 * (Math.SQRT2 - 1);
    expect(rotatedIouBev(sq(0, 0), sq(0, 0, Math.PI / 4))).toBeCloseTo(inter / (2 - inter), 10);
    expect(rotatedIouBev(sq(0, 0), sq(3, 0))).toBe(0);
    expect(rotatedIouBev(sq(0, 0, 0.3), sq(Math.cos(0.3), Math.sin(0.3), 0.3))).toBeCloseTo(0, 10); // touching edges
    expect(rotatedIouBev(sq(0, 0, 0.3), sq(0.5 * Math.cos(0.3), 0.5 * Math.sin(0.3), 0.3))).toBeCloseTo(1 / 3, 10);
  });

  it('rotated NMS keeps a box whose only overlap was suppressed', () => {
    const box = (x: number, yaw = 0) => ({ center: [x, 0, 0] as [number, number, number], size: [1, 1, 1] as [number, number, number], yaw });
    const boxes = [box(0), box(0.5), box(10), box(1.0)];
    // IoU(0, 1) = 1/3 > 0.3 → 1 dropped; IoU(0, 3) = 0 → 3 kept although it overlaps the dropped 1.
    expect(rotatedNms(boxes, [0.9, 0.8, 0.7, 0.6], 0.3)).toEqual([0, 2, 3]);
    expect(rotatedNms(boxes, [0.9, 0.8, 0.7, 0.6], 0.4)).toEqual([0, 1, 2, 3]);
    expect(rotatedNms(boxes, [0.9, 0.8, 0.7, 0.6], 0.3, { preMaxSize: 2 })).toEqual([0]);
    expect(rotatedNms(boxes, [0.9, 0.8, 0.7, 0.6], 0.3, { postMaxSize: 2 })).toEqual([0, 2]);
  });
});

/** Logits and regression maps that reproduce the targets exactly ("perfect" predictions). */
function perfectOutputs(t: CenterHeadTargets): TaskOutput[] {
  const { batch: B, height: H, width: W, maxObjects: M } = t;
  return t.tasks.map((tt) => {
    const logit = tt.heatmap.map((p) => Math.max(-20, Math.min(20, Math.log(p / (1 - p)))));
    const maps: Record<string, Float32Array> = { reg: new Float32Array(B * H * W * 2), height: new Float32Array(B * H * W), dim: new Float32Array(B * H * W * 3), rot: new Float32Array(B * H * W * 2), vel: new Float32Array(B * H * W * 2) };
    const spans: [string, number, number][] = [['reg', 0, 2], ['height', 2, 1], ['dim', 3, 3], ['rot', 6, 2], ['vel', 8, 2]];
    for (let b = 0; b < B; b++) {
      for (let m = 0; m < M; m++) {
        const s = b * M + m;
        if (!tt.mask[s]) continue;
        const cell = b * H * W + tt.ind[s]!;
        for (const [name, off, n] of spans) for (let c = 0; c < n; c++) maps[name]![cell * n + c] = tt.annoBox[s * 10 + off + c]!;
      }
    }
    return {
      heatmap: tf.tensor4d(logit, [B, H, W, tt.numClasses]),
      reg: tf.tensor4d(maps.reg!, [B, H, W, 2]),
      height: tf.tensor4d(maps.height!, [B, H, W, 1]),
      dim: tf.tensor4d(maps.dim!, [B, H, W, 3]),
      rot: tf.tensor4d(maps.rot!, [B, H, W, 2]),
      vel: tf.tensor4d(maps.vel!, [B, H, W, 2]),
    };
  });
}

describe('encode → decode', () => {
  const gt: GtBox[][] = [
    [
      { center: [3.3, -7.1, -0.4], size: [1.9, 4.6, 1.7], yaw: 0.7, velocity: [2.5, -0.3], label: label('car') },
      { center: [-10.2, 6.05, 0.2], size: [2.1, 4.2, 1.5], yaw: -2.9, velocity: [0, 0], label: label('car') },
      { center: [12.7, 12.9, 0.9], size: [2.9, 11.5, 3.4], yaw: 1.4, velocity: [-1, 4], label: label('bus') },
      { center: [-4.4, -13.3, 0], size: [0.7, 0.8, 1.8], yaw: 3.0, velocity: [0.5, 0.1], label: label('pedestrian') },
      { center: [0.9, 3.7, -1.1], size: [0.4, 0.4, 1.0], yaw: 0.1, velocity: [0, 0], label: label('traffic_cone') },
    ],
    [{ center: [-1.0, 1.0, 0.0], size: [2.5, 6.0, 2.5], yaw: -1.2, velocity: [1, 1], label: label('truck') }],
  ];
  const input: CenterHeadConfigInput = { inChannels: 4, grid: { range: [-16, -16, 16, 16], cellSize: [0.5, 0.5], stride: 2 }, decode: { maxPoolNms: true } };

  const check = (dets: DetBox[][]) => {
    expect(dets.map((d) => d.length)).toEqual(gt.map((g) => g.length));
    for (const [b, boxes] of gt.entries()) {
      for (const g of boxes) {
        const d = dets[b]!.find((q) => q.label === g.label && Math.hypot(q.center[0] - g.center[0], q.center[1] - g.center[1]) < 1e-3);
        expect(d, `sample ${b} label ${g.label}`).toBeDefined();
        for (let i = 0; i < 3; i++) {
          expect(d!.center[i]).toBeCloseTo(g.center[i]!, 4);
          expect(d!.size[i]).toBeCloseTo(g.size[i]!, 4);
        }
        expect(d!.yaw).toBeCloseTo(g.yaw, 5);
        expect(d!.velocity[0]).toBeCloseTo(g.velocity![0], 5);
        expect(d!.velocity[1]).toBeCloseTo(g.velocity![1], 5);
        expect(d!.score).toBeGreaterThan(0.999);
      }
    }
  };

  it('perfect logits decode back to the GT boxes (circle NMS and rotated NMS)', async () => {
    const cfg = centerHeadConfig(input);
    const t = buildTargets(gt, cfg);
    expect([t.height, t.width]).toEqual([32, 32]);
    const outs = perfectOutputs(t);
    check(await decodeCenterHead(outs, cfg));
    check(await decodeCenterHead(outs, centerHeadConfig({ ...input, decode: { maxPoolNms: true, nms: { type: 'rotate', iouThreshold: 0.2, preMaxSize: 1000 } } })));
    // Without the max-pool, the Gaussian shoulders (> 0.1) survive as extra boxes unless circle NMS removes them.
    const loose = await decodeCenterHead(outs, centerHeadConfig({ ...input, decode: { nms: { type: 'none' } } }));
    expect(loose[0]!.length).toBeGreaterThan(gt[0]!.length);
    // The perfect predictions have a lower loss than slightly perturbed ones.
    const loss = centerHeadLoss(outs, t, cfg);
    const worse = outs.map((o) => ({ ...o, dim: tf.add(o.dim, 0.1) as tf.Tensor4D }));
    const loss2 = centerHeadLoss(worse, t, cfg);
    // +0.1 on the 3 dim channels of every object: per task 0.25 · 0.3 · n / (n + 1e-4); tasks car (2), truck (1), bus (1), ped+cone (2).
    const per = (n: number) => (0.25 * 0.3 * n) / (n + 1e-4);
    expect(loss2.total.dataSync()[0]! - loss.total.dataSync()[0]!).toBeCloseTo(per(2) + per(1) + per(1) + per(2), 4);
    tf.dispose([loss.total, ...Object.values(loss.parts), loss2.total, ...Object.values(loss2.parts), ...worse.map((w) => w.dim)]);
    disposeTaskOutputs(outs);
  });
});

describe('CenterHead module', () => {
  const tiny: CenterHeadConfigInput = {
    inChannels: 8,
    sharedChannels: 8,
    headChannels: 8,
    tasks: [['car'], ['pedestrian', 'traffic_cone']],
    grid: { range: [-4, -4, 4, 4], cellSize: [1, 1], stride: 1 },
    decode: { nms: { type: 'circle', radii: [4, 0.175] } },
  };

  it('has mmdet3d parameter names, the heatmap bias, and NHWC outputs of the right shapes', () => {
    const head = new CenterHead({ ...tiny, inChannels: 6, sharedChannels: 64, headChannels: 64 }, { rng: createRng(1) });
    const keys = Object.keys(head.stateDict());
    for (const k of [
      'shared_conv.conv.weight', 'shared_conv.bn.weight', 'shared_conv.bn.running_mean', 'task_heads.0.reg.0.conv.weight',
      'task_heads.0.heatmap.0.conv.weight', 'task_heads.0.heatmap.0.bn.num_batches_tracked', 'task_heads.0.heatmap.1.weight',
      'task_heads.0.heatmap.1.bias', 'task_heads.1.vel.1.bias', 'task_heads.1.dim.1.weight',
    ]) expect(keys).toContain(k);
    expect(keys).not.toContain('shared_conv.conv.bias');
    expect(keys).not.toContain('task_heads.0.heatmap.0.conv.bias');
    expect(head.stateDict()['task_heads.1.heatmap.1.weight']!.shape).toEqual([3, 3, 64, 2]);
    expect(Array.from(head.stateDict()['task_heads.1.heatmap.1.bias']!.dataSync())).toEqual([-2.190000057220459, -2.190000057220459]);
    expect(Array.from(head.stateDict()['task_heads.1.reg.1.bias']!.dataSync())).toEqual([0, 0]);
    const x = randn([2, 8, 8, 6], createRng(2)) as tf.Tensor4D;
    head.eval();
    const outs = head.forward(x);
    expect(outs.length).toBe(2);
    expect(outs[1]!.heatmap.shape).toEqual([2, 8, 8, 2]);
    expect(outs[0]!.heatmap.shape).toEqual([2, 8, 8, 1]);
    for (const [name, c] of [['reg', 2], ['height', 1], ['dim', 3], ['rot', 2], ['vel', 2]] as const) expect(outs[0]![name].shape).toEqual([2, 8, 8, c]);
    expect(() => head.forward(tf.zeros([1, 8, 8, 5]) as tf.Tensor4D)).toThrow(/CenterHead.forward: expected \[B, H, W, 6\]/);
    disposeTaskOutputs(outs);
    x.dispose();
    head.dispose();
  });

  it('numConvs sets the convs per branch (mmdet3d num_conv): 1 reads the shared feature, 3 stacks two ConvModules', () => {
    const head = new CenterHead({ ...tiny, numConvs: { vel: 1, dim: 3 } }, { rng: createRng(1) });
    const sd = head.stateDict();
    expect(sd['task_heads.0.vel.0.weight']!.shape).toEqual([3, 3, 8, 2]);
    expect(sd['task_heads.0.vel.0.bias']!.shape).toEqual([2]);
    expect(Object.keys(sd).filter((k) => k.startsWith('task_heads.0.vel.'))).toEqual(['task_heads.0.vel.0.weight', 'task_heads.0.vel.0.bias']);
    expect(sd['task_heads.0.dim.1.conv.weight']!.shape).toEqual([3, 3, 8, 8]);
    expect(sd['task_heads.0.dim.2.weight']!.shape).toEqual([3, 3, 8, 3]);
    expect(sd['task_heads.0.rot.1.weight']!.shape).toEqual([3, 3, 8, 2]);
    const x = randn([1, 8, 8, 8], createRng(2)) as tf.Tensor4D;
    const outs = head.forward(x);
    expect(outs[0]!.vel.shape).toEqual([1, 8, 8, 2]);
    expect(outs[1]!.dim.shape).toEqual([1, 8, 8, 3]);
    disposeTaskOutputs(outs);
    x.dispose();
    head.dispose();
    expect(() => new CenterHead({ ...tiny, numConvs: { vel: 0 } })).toThrow(/numConvs.vel must be a positive integer, found 0/);
    expect(() => new CenterHead({ ...tiny, numConvs: { speed: 1 } as never })).toThrow(/numConvs must be keys from reg, height, dim, rot, vel, heatmap, found "speed"/);
  });

  it('leakyRelu ends a branch\'s hidden ConvModules in LeakyReLU (0 or absent: ReLU)', () => {
    const head = new CenterHead({ ...tiny, leakyRelu: { vel: 0.1, dim: 0 } }, { rng: createRng(1) });
    const first = (name: 'vel' | 'dim' | 'reg') => head.task_heads.get(1).branches.get(name)!.get(0) as ConvModule;
    expect([first('vel').act, first('vel').negativeSlope]).toEqual(['leaky_relu', 0.1]);
    expect(first('dim').act).toBe('relu');
    expect(first('reg').act).toBe('relu');
    // LeakyReLU(0.1) on a known input
    const m = new ConvModule(1, 1, 1, { norm: false, bias: false, act: 'leaky_relu', negativeSlope: 0.1 });
    m.conv.weight.assign(tf.ones([1, 1, 1, 1]));
    const x = tf.tensor4d([-2, 3], [1, 1, 2, 1]);
    const y = m.forward(x);
    expect(Array.from(y.dataSync())).toEqual([expect.closeTo(-0.2, 6), 3]);
    tf.dispose([x, y]);
    m.dispose();
    head.dispose();
    expect(() => new CenterHead({ ...tiny, leakyRelu: { vel: 1.5 } })).toThrow(/leakyRelu.vel must be a negative slope in \[0, 1\), found 1.5/);
  });

  it('the loss goes down over a few AdamW steps (core Trainer) on a tiny fixed input, without leaking tensors', async () => {
    const head = new CenterHead(tiny, { rng: createRng(3) });
    const x = randn([1, 8, 8, 8], createRng(4)) as tf.Tensor4D;
    const t = head.targets([[
      { center: [1.2, -0.7, 0.3], size: [1.9, 4.5, 1.6], yaw: 0.4, velocity: [1, 0], label: label('car') },
      { center: [-2.6, 2.1, -0.2], size: [0.6, 0.7, 1.7], yaw: -1, velocity: [0.2, 0.3], label: label('pedestrian') },
    ]]);
    // Core's trainer (AdamW, clipping) on the head: a TrainableModel as is.
    const model: TrainableModel = head;
    const trainer = new Trainer<null>({
      model,
      lossFn: () => head.loss(head.forward(x), t),
      batches: [null],
      steps: 10,
      optimizer: { lr: 0.01, weightDecay: 0.01 },
      clip: 35,
      progress: false,
    });
    const losses: number[] = [];
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) {
      const rec = trainer.trainStep(null);
      losses.push(rec.loss);
      expect(Object.keys(rec.losses)).toEqual(['task0.loss_heatmap', 'task0.loss_bbox', 'task1.loss_heatmap', 'task1.loss_bbox']);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(losses[0]).toBeGreaterThan(0);
    expect(losses.at(-1)!).toBeLessThan(0.3 * losses[0]!);
    expect(Math.min(...losses.slice(5))).toBeLessThan(Math.min(...losses.slice(0, 5)));
    trainer.dispose();
    const dets = await (async () => {
      head.eval();
      const outs = head.forward(x);
      try {
        return await head.decode(outs);
      } finally {
        disposeTaskOutputs(outs);
      }
    })();
    expect(dets.length).toBe(1);
    x.dispose();
    head.dispose();
  });
});
