/**
 * Tests run on the wasm backend with @bevzoo/engine's training kernels: on tfjs's pure-JS cpu backend one tiny
 * training step takes ≈ 30 s (its Conv2DBackpropFilter and its UnsortedSegmentSum, behind the CenterHead loss's
 * gather, are naive loops), on wasm ≈ 0.3 s. The LSS/BEVPool building blocks are tested on cpu in @bevzoo/nn.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, createRng, get, parseSafetensors, resolveConfig, Trainer, type ForwardOutput, type Mat3 } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { groundCloud, gtBoxesOf, rigBatch, sampleBoxes, type BoxSpec, type CenterHeadTargets, type DetBox } from '@bevzoo/nn';
import { applyBevAugToBox, bevAugMatrix, DETECTION_CLASSES, type BevAugParams } from '@bevzoo/nuscenes';
import { beforeAll, describe, expect, it } from 'vitest';
import { BEVDet, BEVDetInputError, bevdetFeatures, bevdetStudent, IMAGE_BRANCH_PREFIXES, type BEVDetConfig } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<BEVDetConfig>(bevdetStudent, { preset, overrides }).config;
const label = (n: string) => DETECTION_CLASSES.indexOf(n as (typeof DETECTION_CLASSES)[number]);

describe('plugin and config', () => {
  it('registers the student, resolves every preset, and rejects grids the encoder cannot halve three times', () => {
    expect(get('student', 'bevdet')).toBe(bevdetStudent);
    expect(bevdetStudent.task).toBe('det');
    for (const p of ['tiny', 'small', 'paper']) expect(() => config(p)).not.toThrow();
    expect(resolveConfig(bevdetStudent).preset).toBe('small');
    expect(() => config('tiny', { data: { imageSize: [60, 176] } })).toThrow(/data\.imageSize: \[H, W\] divisible by the LSS feature stride 16/);
    expect(() => config('tiny', { grid: { cellSize: 5.12 } })).toThrow(/grid: BEV cells must be divisible by 8/);
    expect(() => config('tiny', { grid: { cellSize: 3 } })).toThrow(ConfigError);
    const tiny = config('tiny');
    expect(() => new BEVDet({ ...tiny, grid: { ...tiny.grid, cellSize: 5.12 } })).toThrow(ConfigError);
  });

  it('the paper preset constructs the published configuration', () => {
    const cfg = config('paper');
    const f = bevdetFeatures(cfg);
    expect(Object.fromEntries(Object.entries(f).map(([k, s]) => [k, [s.channels, ...s.grid.cells, s.stage]]))).toEqual({
      stage0: [128, 64, 64, 0], stage1: [256, 32, 32, 1], stage2: [512, 16, 16, 2], pre_head: [256, 128, 128, -1], heatmap: [10, 128, 128, undefined],
    });
    expect(f.pre_head!.grid.cellSize).toEqual([0.8, 0.8]);
    const m = new BEVDet(cfg, { rng: createRng(0) });
    expect(m.layout.featureStride).toBe(16);
    expect(m.layout.featureSize).toEqual([16, 44]);
    expect(m.img_view_transformer.D).toBe(59);
    expect(m.img_view_transformer.depthnet!.weight.shape).toEqual([1, 1, 512, 59 + 64]);
    expect(m.img_neck.lateral_convs.length).toBe(2);
    expect(m.img_bev_encoder_neck.conv.get(0).parameters()[0]!.shape).toEqual([3, 3, 640, 512]);
    const n = m.numParameters();
    expect(n).toBeGreaterThan(45e6);
    expect(n).toBeLessThan(50e6);
    m.dispose();
  }, 60_000);

  it('ships starting weights for small that hold exactly the small model’s image branch, shape for shape', () => {
    const init = bevdetStudent.initWeights!.find((w) => w.preset === 'small')!;
    expect(init.prefixes).toEqual(IMAGE_BRANCH_PREFIXES);
    const { tensors, metadata } = parseSafetensors(readFileSync(init.file), init.file);
    const m = new BEVDet(config('small'), { rng: createRng(0) });
    const expected = Object.entries(m.stateDict()).filter(([k]) => IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p)));
    expect(Object.keys(tensors).sort()).toEqual(expected.map(([k]) => k).sort());
    for (const [k, t] of expected) expect(tensors[k]!.shape, k).toEqual(t.shape);
    // Recorded by the run that made it: depth supervision on, on the default synthetic dataset's train split.
    expect(JSON.parse(metadata.config!).depthSupervision.weight).toBeGreaterThan(0);
    expect(metadata.data).toMatch(/^synthetic small seed 0 .*synth_train$/);
    m.dispose();
  });
});

describe('BEVDet tiny', () => {
  it('forward: every named feature has the shape provides() declares; parameter names follow BEVDet', () => {
    const cfg = config('tiny');
    const m = new BEVDet(cfg, { rng: createRng(1) });
    const batch = rigBatch(cfg.data.imageSize, [sampleBoxes(1), sampleBoxes(2)]);
    const out = m.forward(batch, { training: false });
    const spec = bevdetStudent.provides(cfg);
    expect(Object.keys(out.features).sort()).toEqual(Object.keys(spec).sort());
    for (const [name, s] of Object.entries(spec)) {
      const [X, Y] = s.grid.cells;
      expect(out.features[name]!.shape, name).toEqual([2, Y, X, s.channels]);
    }
    expect(out.features.stage0!.shape).toEqual([2, 16, 16, 16]);
    expect(out.features.stage2!.shape).toEqual([2, 4, 4, 64]);
    expect(out.features.pre_head!.shape).toEqual([2, 32, 32, 16]);
    expect(out.features.heatmap!.shape).toEqual([2, 32, 32, 10]);
    expect(out.outputs.depth!.shape).toEqual([12, 4, 11, 8]);
    expect(out.outputs['task5.heatmap']!.shape).toEqual([2, 32, 32, 2]);
    // The heatmap feature is the tasks' logits concatenated in task order.
    const cat = tf.concat(m.config.head.tasks.map((_, i) => out.outputs[`task${i}.heatmap`]!), 3);
    expect(tf.max(tf.abs(tf.sub(cat, out.features.heatmap!))).dataSync()[0]).toBe(0);
    tf.dispose([cat, ...Object.values(out.features), ...Object.values(out.outputs)]);

    const keys = Object.keys(m.stateDict());
    const prefixes = ['img_backbone.', 'img_neck.', 'img_view_transformer.', 'img_bev_encoder_backbone.', 'img_bev_encoder_neck.', 'head.'];
    expect(keys.filter((k) => !prefixes.some((p) => k.startsWith(p)))).toEqual([]);
    for (const p of prefixes) expect(keys.some((k) => k.startsWith(p)), p).toBe(true);
    for (const k of [
      'img_backbone.conv1.weight', 'img_backbone.bn1.running_mean', 'img_backbone.layer3.0.downsample.0.weight', 'img_backbone.layer4.0.conv2.weight',
      'img_neck.lateral_convs.0.conv.weight', 'img_neck.lateral_convs.1.conv.bias', 'img_neck.fpn_convs.0.conv.weight',
      'img_view_transformer.depthnet.weight', 'img_view_transformer.depthnet.bias',
      'img_bev_encoder_backbone.layers.0.0.conv1.weight', 'img_bev_encoder_backbone.layers.2.0.downsample.weight',
      'img_bev_encoder_neck.conv.0.weight', 'img_bev_encoder_neck.conv.4.running_var', 'img_bev_encoder_neck.up2.1.weight', 'img_bev_encoder_neck.up2.4.bias',
      'head.shared_conv.conv.weight', 'head.task_heads.0.reg.0.conv.weight', 'head.task_heads.5.heatmap.1.bias',
    ]) expect(keys, k).toContain(k);
    expect(m.head.task_heads.get(0).branches.get('heatmap')!.get(1).parameters()[1]!.dataSync()[0]).toBeCloseTo(-2.19, 6);
    // Same seed, same weights.
    const m2 = new BEVDet(cfg, { rng: createRng(1) });
    expect(Array.from(m2.stateDict()['img_backbone.conv1.weight']!.dataSync().slice(0, 5))).toEqual(Array.from(m.stateDict()['img_backbone.conv1.weight']!.dataSync().slice(0, 5)));
    expect(() => m.forward(rigBatch([64, 160], [[]]), { training: false })).toThrow(BEVDetInputError);
    m.dispose();
    m2.dispose();
  });

  it('trains: ten steps on a fixed batch lower the loss; a step leaks no tensor; parts are named per task', async () => {
    const cfg = config('tiny');
    const m = new BEVDet(cfg, { rng: createRng(2) });
    const batch = rigBatch(cfg.data.imageSize, [sampleBoxes(3), sampleBoxes(4)], 5);
    const losses: number[] = [];
    const counts: number[] = [];
    const trainer = new Trainer<typeof batch>({
      model: m, lossFn: (b) => m.loss(m.forward(b, { training: true }), b), batches: [batch], steps: 10,
      optimizer: { lr: cfg.train.lr, weightDecay: 0.01 }, progress: false,
      onStep: (r) => {
        losses.push(r.loss);
        counts.push(tf.memory().numTensors);
        if (r.step === 1) {
          expect(Object.keys(r.losses).sort()).toEqual(cfg.head.tasks.flatMap((_, i) => [`det.task${i}.bbox`, `det.task${i}.heatmap`]).sort());
          const sum = Object.values(r.losses).reduce((a, b) => a + b, 0);
          expect(sum).toBeCloseTo(r.loss, 3);
        }
      },
    });
    await trainer.run();
    trainer.dispose();
    expect(losses).toHaveLength(10);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]); // no tensor left behind per step
    m.dispose();
  });

  it('depth supervision: a depth part from the keyframe points (none from sweeps), and a clear error without points', () => {
    const cfg = config('tiny', { depthSupervision: { weight: 3 }, data: { points: true } });
    const m = new BEVDet(cfg, { rng: createRng(3) });
    const batch = rigBatch(cfg.data.imageSize, [sampleBoxes(1), sampleBoxes(2)]);
    // Points on the ground 4–40 m around the ego (keyframe), and the same points as a sweep (Δt 0.05 s).
    const cloud = (dt: number) => groundCloud(400, dt);
    const out = m.forward(batch, { training: true });
    expect(() => m.loss(out, batch)).toThrow(BEVDetInputError);
    const l = m.loss(out, { ...batch, points: [cloud(0), cloud(0)] });
    expect(Object.keys(l.parts)).toContain('depth');
    const d = l.parts.depth!.dataSync()[0]!;
    expect(d).toBeGreaterThan(0);
    const sweepsOnly = m.loss(out, { ...batch, points: [cloud(0.05), cloud(0.05)] });
    expect(sweepsOnly.parts.depth!.dataSync()[0]).toBe(0);
    // The total is the detection loss plus the depth part.
    expect(l.total.dataSync()[0]).toBeCloseTo(sweepsOnly.total.dataSync()[0]! + d, 3);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs), l.total, ...Object.values(l.parts), sweepsOnly.total, ...Object.values(sweepsOnly.parts)]);
    m.dispose();
  });

  it('predict decodes perfect head outputs back to the boxes in the keyframe ego frame (bda undone)', async () => {
    const cfg = config('tiny', { head: { maxPoolNms: true } });
    const m = new BEVDet(cfg, { rng: createRng(3) });
    // Boxes in the keyframe ego frame, well apart (≥ 3 cells of 3.2 m).
    const ego: BoxSpec[] = [
      { center: [12.3, -7.9, -0.3], size: [1.9, 4.6, 1.7], yaw: 0.7, velocity: [2.5, -0.5], label: label('car') },
      { center: [-20.6, 14.2, 0.4], size: [2.9, 11.5, 3.4], yaw: -2.1, velocity: [-1, 3], label: label('bus') },
      { center: [3.1, 30.4, 0.1], size: [0.7, 0.8, 1.8], yaw: 2.9, velocity: [0.5, 0.2], label: label('pedestrian') },
      { center: [-35.2, -28.8, 0.0], size: [0.5, 2.1, 1.0], yaw: 0.2, velocity: [0, 0], label: label('barrier') },
    ];
    const aug: BevAugParams = { rotate: 17, scale: 1.04, flipX: true, flipY: false };
    const bda = bevAugMatrix(aug);
    const augmented = ego.map((b) => ({ ...b, ...applyBevAugToBox(aug, bda, b.center, b.size, b.yaw, b.velocity!) }));
    const batch = rigBatch(cfg.data.imageSize, [augmented, ego], 0, [bda, [1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3]);
    const targets = m.head.targets(batch.boxes.map(gtBoxesOf));
    const out = perfectOutputs(targets);
    const dets = await m.predict(out, batch);
    expect(dets.map((d) => d.length)).toEqual([4, 4]);
    for (const sample of dets) {
      for (const g of ego) {
        const d = sample.find((q: DetBox) => q.label === g.label);
        expect(d, DETECTION_CLASSES[g.label]).toBeDefined();
        for (let i = 0; i < 3; i++) {
          expect(d!.center[i]).toBeCloseTo(g.center[i]!, 3);
          expect(d!.size[i]).toBeCloseTo(g.size[i]!, 3);
        }
        expect(Math.cos(d!.yaw - g.yaw)).toBeCloseTo(1, 5);
        expect(d!.velocity[0]).toBeCloseTo(g.velocity![0], 3);
        expect(d!.velocity[1]).toBeCloseTo(g.velocity![1], 3);
        expect(d!.score).toBeGreaterThan(0.99);
      }
    }
    tf.dispose(Object.values(out.outputs));
    // A real forward decodes too (random weights: any number of boxes, all finite, labels valid).
    const fwd = m.forward(batch, { training: false });
    const real = await m.predict(fwd, batch);
    expect(real).toHaveLength(2);
    for (const d of real.flat()) expect([...d.center, ...d.size, d.yaw, d.score].every(Number.isFinite) && d.label >= 0 && d.label < 10).toBe(true);
    tf.dispose([...Object.values(fwd.features), ...Object.values(fwd.outputs)]);
    m.dispose();
  });
});

/** Head outputs that reproduce the targets exactly: heatmap logits of the Gaussians, regressions at the centres. */
function perfectOutputs(t: CenterHeadTargets): ForwardOutput {
  const { batch: B, height: H, width: W, maxObjects: M } = t;
  const outputs: Record<string, tf.Tensor> = {};
  t.tasks.forEach((tt, i) => {
    outputs[`task${i}.heatmap`] = tf.tensor4d(tt.heatmap.map((p) => Math.max(-20, Math.min(20, Math.log(p / (1 - p))))), [B, H, W, tt.numClasses]);
    const a = new Float32Array(B * H * W * 10);
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < M; k++) {
        const s = b * M + k;
        if (!tt.mask[s]) continue;
        for (let c = 0; c < 10; c++) a[(b * H * W + tt.ind[s]!) * 10 + c] = tt.annoBox[s * 10 + c]!;
      }
    }
    outputs[`task${i}.box`] = tf.tensor4d(a, [B, H, W, 10]);
  });
  return { features: {}, outputs };
}
