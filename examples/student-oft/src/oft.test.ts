/**
 * Runs on the wasm backend with @bevzoo/engine's training kernels (tfjs's cpu backend is too slow to train).
 * Everything here goes through the public APIs of @bevzoo/core, @bevzoo/nn and @bevzoo/nuscenes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assemble, ConfigError, createRng, get, resolveConfig, Trainer, type Mat3 } from '@bevzoo/core';
import { bevAugMatrix, projectToImage } from '@bevzoo/nuscenes';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOftPlan, cameraProjection, OftInputError, OftLite, oftStudent, orthographicTransform, project, type OftConfig, type OftPlanSpec } from './index.js';
import { cameraToEgo, makeBatch, sampleBoxes } from './testutil.js';

beforeAll(async () => {
  await (await import('@bevzoo/engine')).initEngine({ backend: 'wasm', log: () => {} });
});

const config = (preset: string, overrides: Record<string, unknown> = {}) => resolveConfig<OftConfig>(oftStudent, { preset, overrides }).config;
const liveTensors = () => tf.memory().numTensors;

describe('plugin', () => {
  it('registers on import, provides the bevdet grids, and assembles as a baseline', () => {
    expect(get('student', 'oft')).toBe(oftStudent);
    const small = oftStudent.provides(config('small'));
    expect(small.pre_head).toMatchObject({ kind: 'bev', channels: 32, grid: { cells: [64, 64], cellSize: [1.6, 1.6], range: [-51.2, -51.2, 51.2, 51.2] } });
    expect(small.heatmap).toMatchObject({ kind: 'heatmap', channels: 10, grid: small.pre_head!.grid });
    expect(oftStudent.provides(config('tiny')).pre_head!.grid.cells).toEqual([32, 32]);
    const a = assemble({ student: { plugin: oftStudent } });
    expect(a.student.preset).toBe('small');
    expect(a.student.features).toEqual(small);
    expect(assemble({ student: { plugin: 'oft', preset: 'tiny' } }).task).toBe('det');
    expect(() => config('tiny', { data: { imageSize: [60, 176] } })).toThrow(/data\.imageSize: \[H, W\] divisible by the feature stride 8/);
    expect(() => config('tiny', { grid: { cellSize: 3 } })).toThrow(ConfigError);
  });

  it('forward: features have the shapes provides() declares; heatmap = task heatmaps concatenated; parameter names', () => {
    const cfg = config('tiny');
    const m = new OftLite(cfg, { rng: createRng(1) });
    const batch = makeBatch(cfg.data.imageSize, [sampleBoxes(1), sampleBoxes(2)]);
    const out = m.forward(batch, { training: false });
    const spec = oftStudent.provides(cfg);
    expect(Object.keys(out.features).sort()).toEqual(Object.keys(spec).sort());
    for (const [name, s] of Object.entries(spec)) expect(out.features[name]!.shape, name).toEqual([2, s.grid.cells[1], s.grid.cells[0], s.channels]);
    expect(out.outputs.bev!.shape).toEqual([2, 32, 32, 3 * 16]);
    const cat = tf.concat(cfg.head.tasks.map((_, i) => out.outputs[`task${i}.heatmap`]!), 3);
    expect(tf.max(tf.abs(tf.sub(cat, out.features.heatmap!))).dataSync()[0]).toBe(0);
    tf.dispose([cat, ...Object.values(out.features), ...Object.values(out.outputs)]);
    const keys = Object.keys(m.stateDict());
    for (const k of ['img_backbone.conv1.weight', 'img_backbone.layer2.0.downsample.0.weight', 'img_neck.conv.weight', 'img_neck.bn.running_mean',
      'bev_encoder.0.conv1.weight', 'bev_encoder.0.downsample.0.weight', 'head.shared_conv.conv.weight', 'head.task_heads.5.heatmap.1.bias']) expect(keys, k).toContain(k);
    expect(() => m.forward(makeBatch([64, 160], [[]]), { training: false })).toThrow(OftInputError);
    m.dispose();
  });
});

describe('orthographic feature transform', () => {
  // One camera 1.5 m above the ego origin looking along +x; f = 100 px, principal point (87.5, 31.5) of a 64×176 image.
  const K = [100, 0, 87.5, 0, 100, 31.5, 0, 0, 1];
  const rot90: Mat3 = [0, -1, 0, 1, 0, 0, 0, 0, 1]; // bda: ego (x, y) → augmented (−y, x)
  const half: Mat3 = [0.5, 0, -10, 0, 0.5, -3, 0, 0, 1]; // postAug: resize ×½, then crop 10 px left and 3 px top
  const geom = { intrinsics: Float32Array.from(K), sensor2ego: Float32Array.from(cameraToEgo(0, [0, 0, 1.5])), postAug: Float32Array.from(half), bda: Float32Array.from(rot90) };

  it('projects a point through bda⁻¹, ego → camera, intrinsics and postAug to the hand-computed pixel', () => {
    // Ego point (20, −4, 0.5) is at (4, 20, 0.5) after bda. Camera frame: x = 4 (right), y = 1 (down), z = 20.
    // Pixel: u = 100·4/20 + 87.5 = 107.5, v = 100·1/20 + 31.5 = 36.5; after postAug (53.75 − 10, 18.25 − 3).
    const [u, v, d] = project(cameraProjection(geom, 0, 0, 1), [4, 20, 0.5]);
    expect(u).toBeCloseTo(43.75, 9);
    expect(v).toBeCloseTo(15.25, 9);
    expect(d).toBeCloseTo(20, 9);
    // The same as @bevzoo/nuscenes' projectToImage on a 6-camera rig with image and BEV augmentation.
    const bda = bevAugMatrix({ rotate: 23, scale: 1.05, flipX: true, flipY: false });
    const batch = makeBatch([64, 176], [[], []], { bda: [bda, rot90], postAug: half });
    const rng = createRng(4);
    for (let i = 0; i < 20; i++) {
      const p = [rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-2, 3)];
      const b = i % 2, n = i % 6;
      const ours = project(cameraProjection(batch, b, n, 6), p), ref = projectToImage(batch, b, n, p);
      if (ref[2] > 0.5) for (let j = 0; j < 3; j++) expect(ours[j]).toBeCloseTo(ref[j]!, 2);
    }
  });

  it('the plan reads that pixel bilinearly; unseen cells stay zero; cameras seeing a cell are averaged', () => {
    // Cells of 4 m over x ∈ [2, 14], y ∈ [18, 26]: cell (x 0, y 0) is centred on (4, 20); at z = 40 m nothing sees it.
    const spec: OftPlanSpec = { numCameras: 1, imageSize: [64, 176], featureStride: 8, featureSize: [8, 22], range: [2, 18, 14, 26], cells: [3, 2], heights: [0.5, 40], minDepth: 0.5 };
    const plan = buildOftPlan(geom, spec);
    const taps = [...plan.segment.keys()].filter((k) => plan.segment[k] === 0); // segment ((b·Y + y)·X + x)·Z + z = 0
    const sum = (f: (k: number) => number) => taps.reduce((s, k) => s + plan.weight[k]! * f(k), 0);
    expect(sum(() => 1)).toBeCloseTo(1, 6);
    expect(sum((k) => plan.pixel[k]! % 22)).toBeCloseTo((43.75 + 0.5) / 8 - 0.5, 5); // feature column
    expect(sum((k) => Math.floor(plan.pixel[k]! / 22))).toBeCloseTo((15.25 + 0.5) / 8 - 0.5, 5); // feature row
    expect(plan.seenBy[1]).toBe(0);
    expect(plan.segment.includes(1)).toBe(false);
    // Behind the camera (augmented y < 0 is ego x < 0): nothing is seen, the transform gives zeros.
    const behind = buildOftPlan(geom, { ...spec, range: [2, -26, 14, -18] });
    expect(behind.pixel.length).toBe(0);
    const f1 = tf.ones([1, 8, 22, 2]) as tf.Tensor4D;
    const zeros = orthographicTransform(f1, behind, [3, 2]);
    expect(zeros.shape).toEqual([1, 2, 3, 4]);
    expect(tf.sum(tf.abs(zeros)).dataSync()[0]).toBe(0);
    // On the 6-camera rig a feature map of ones gives 1 exactly where some camera sees the cell (an average), else 0.
    const rig = makeBatch([64, 176], [[]]);
    const rigPlan = buildOftPlan(rig, { ...spec, numCameras: 6, range: [-51.2, -51.2, 51.2, 51.2], cells: [32, 32], heights: [-1, 0.5, 2, 30] });
    const bev = orthographicTransform(tf.ones([6, 8, 22, 1]) as tf.Tensor4D, rigPlan, [32, 32]);
    const values = bev.dataSync();
    rigPlan.seenBy.forEach((n, s) => expect(values[s]).toBeCloseTo(n > 0 ? 1 : 0, 5));
    expect(Math.max(...rigPlan.seenBy)).toBeGreaterThan(1); // neighbouring cameras overlap
    expect(rigPlan.seenBy.filter((n) => n > 0).length).toBeGreaterThan(0.6 * rigPlan.numSegments);
    // Values and gradients equal the plain tfjs formulation (gather the taps, weight them, segment-sum into cells).
    const feats = tf.randomNormal([6, 8, 22, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const probe = tf.randomNormal([1, 32, 32, 12], 0, 1, 'float32', 8);
    const reference = (x: tf.Tensor) => tf.reshape(tf.unsortedSegmentSum(tf.mul(tf.gather(tf.reshape(x, [-1, 3]), tf.tensor1d(rigPlan.pixel, 'int32')), tf.tensor2d(rigPlan.weight, [rigPlan.weight.length, 1])), tf.tensor1d(rigPlan.segment, 'int32'), rigPlan.numSegments), [1, 32, 32, 12]);
    const ours = (x: tf.Tensor) => orthographicTransform(x as tf.Tensor4D, rigPlan, [32, 32]);
    tf.tidy(() => {
      expect(tf.max(tf.abs(tf.sub(ours(feats), reference(feats)))).dataSync()[0]).toBeLessThan(1e-5);
      const [ga, gb] = [ours, reference].map((fn) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(fn(x), probe)))(feats));
      expect(tf.max(tf.abs(tf.sub(ga!, gb!))).dataSync()[0]).toBeLessThan(1e-5);
      expect(tf.max(tf.abs(ga!)).dataSync()[0]).toBeGreaterThan(0);
    });
    tf.dispose([f1, zeros, bev, feats, probe]);
  });

  it('plans are cached by geometry', () => {
    const cfg = config('tiny');
    const m = new OftLite(cfg, { rng: createRng(0) });
    const a = makeBatch(cfg.data.imageSize, [[]], { seed: 1 }), b = makeBatch(cfg.data.imageSize, [[]], { seed: 2 });
    const c = makeBatch(cfg.data.imageSize, [[]], { bda: [rot90] });
    for (const batch of [a, b, c, a]) tf.dispose(Object.values(m.forward(batch, { training: false }).features));
    expect([m.plans.misses, m.plans.hits]).toEqual([2, 2]);
    m.dispose();
  });
});

describe('training and prediction', () => {
  it('ten steps on a fixed batch lower the loss; a step leaks no tensor; dispose frees everything', async () => {
    const before = liveTensors();
    const cfg = config('tiny');
    const m = new OftLite(cfg, { rng: createRng(2) });
    const batch = makeBatch(cfg.data.imageSize, [sampleBoxes(3), sampleBoxes(4)], { seed: 5 });
    const losses: number[] = [], counts: number[] = [];
    const trainer = new Trainer<typeof batch>({
      model: m, lossFn: (b) => m.loss(m.forward(b, { training: true }), b), batches: [batch], steps: 10,
      optimizer: { lr: cfg.train.lr, weightDecay: 0.01 }, progress: false,
      onStep: (r) => {
        losses.push(r.loss);
        counts.push(liveTensors());
        if (r.step === 1) expect(Object.keys(r.losses).sort()).toEqual(cfg.head.tasks.flatMap((_, i) => [`det.task${i}.bbox`, `det.task${i}.heatmap`]).sort());
      },
    });
    await trainer.run();
    trainer.dispose();
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]!).toBeLessThan(0.7 * losses[0]!);
    expect(counts[9]).toBe(counts[1]);
    const out = m.forward(batch, { training: false });
    const dets = await m.predict(out, batch);
    expect(dets).toHaveLength(2);
    for (const d of dets.flat()) expect([...d.center, ...d.size, d.yaw, d.score].every(Number.isFinite) && d.label >= 0 && d.label < 10).toBe(true);
    tf.dispose([...Object.values(out.features), ...Object.values(out.outputs)]);
    m.dispose();
    expect(liveTensors()).toBe(before);
  });
});
