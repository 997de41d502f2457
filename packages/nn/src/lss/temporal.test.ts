import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gradCheck, randn, useCpu } from '../testutil.js';
import { alignPrevBev, alignTaps, applyAlignTaps } from './temporal.js';
import { CAMERA_VECTOR_SIZE, CameraAwareDepthNet, cameraVector } from './depth-net.js';

beforeAll(useCpu);

const I4 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
/** current ego ← previous ego for an ego that drove (dx, dy) metres and turned by yaw (in the previous frame). */
const motion = (dx: number, dy: number, yaw = 0) => {
  // prev ego = current ego moved: a static point p_prev maps to p_cur = Rᵀ (p_prev − t)
  const c = Math.cos(yaw), s = Math.sin(yaw);
  return [c, s, 0, -(c * dx + s * dy), -s, c, 0, -(-s * dx + c * dy), 0, 0, 1, 0, 0, 0, 0, 1];
};
const grid = { range: [-8, -8, 8, 8] as [number, number, number, number], cells: [8, 8] as [number, number] }; // 2 m cells

describe('BEVDet4D temporal alignment', () => {
  it('is the identity without ego motion, and moves a static object by the ego motion (cells, rows = y)', () => {
    const prev = randn([1, 8, 8, 3], createRng(1)) as tf.Tensor4D;
    const same = alignPrevBev(prev, I4, grid);
    expect(Math.max(...tf.abs(tf.sub(same, prev)).dataSync())).toBeLessThan(1e-6);
    // The ego drove 2 m (one cell) forward: what was at previous cell x+1 is now at current cell x.
    const moved = alignPrevBev(prev, motion(2, 0), grid).arraySync()[0]!;
    const p = prev.arraySync()[0]!;
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 7; x++) expect(moved[y]![x]!).toEqual(p[y]![x + 1]!.map((v) => expect.closeTo(v, 5)) as unknown as number[]);
      expect(moved[y]![7]).toEqual([0, 0, 0]); // outside the previous map: zero
    }
    // 2 m to the left (+y): rows shift.
    const left = alignPrevBev(prev, motion(0, 2), grid).arraySync()[0]!;
    for (let y = 0; y < 7; y++) for (let x = 0; x < 8; x++) expect(left[y]![x]![0]).toBeCloseTo(p[y + 1]![x]![0]!, 5);
    // Half a cell: the mean of two neighbours.
    const half = alignPrevBev(prev, motion(1, 0), grid).arraySync()[0]!;
    expect(half[3]![3]![1]).toBeCloseTo((p[3]![3]![1]! + p[3]![4]![1]!) / 2, 5);
    tf.dispose([prev, same]);
  });

  it('turns with the ego: a 90° turn maps the previous map by a quarter rotation about the ego', () => {
    const prev = randn([1, 8, 8, 1], createRng(2)) as tf.Tensor4D;
    const p = prev.arraySync()[0]!;
    const turned = alignPrevBev(prev, motion(0, 0, Math.PI / 2), grid).arraySync()[0]!;
    // Current point (x, y) = previous point Rᵀ(p): previous (x', y') = R (x, y) = (−y, x).
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) {
        const cx = -8 + (x + 0.5) * 2, cy = -8 + (y + 0.5) * 2;
        const px = Math.round((-cy + 8) / 2 - 0.5), py = Math.round((cx + 8) / 2 - 0.5);
        expect(turned[y]![x]![0]).toBeCloseTo(p[py]![px]![0]!, 4);
      }
    prev.dispose();
  });

  it('aligns in the frame of the BEV augmentation: bda-flipped maps align to the flipped aligned map', () => {
    const prev = randn([1, 8, 8, 2], createRng(3)) as tf.Tensor4D;
    const flipY = [1, 0, 0, 0, -1, 0, 0, 0, 1]; // mirror across the x axis
    const flipRows = (t: tf.Tensor4D) => tf.reverse(t, 1) as tf.Tensor4D;
    const m = motion(2, 2);
    // Align(flip(prev)) under bda = flip(Align(prev)) without bda.
    const a = alignPrevBev(flipRows(prev), m, grid, flipY);
    const b = flipRows(alignPrevBev(prev, m, grid));
    expect(Math.max(...tf.abs(tf.sub(a, b)).dataSync())).toBeLessThan(1e-5);
    tf.dispose([prev, a, b]);
  });

  it('is differentiable in the previous map (finite differences), per sample of a batch', () => {
    const prev = tf.variable(randn([2, 8, 8, 3], createRng(4)));
    const taps = alignTaps([...motion(1.3, -0.7, 0.2), ...motion(-2.1, 0.4, -0.5)], grid);
    const w = randn([2, 8, 8, 3], createRng(5));
    const r = gradCheck(() => tf.sum(tf.mul(applyAlignTaps(prev as unknown as tf.Tensor4D, taps), w)) as tf.Scalar, [prev], { samples: 24 });
    expect(r.checked).toBe(24);
    expect(() => applyAlignTaps(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D, taps)).toThrow(/taps of 1×8×8 cells/);
    tf.dispose([prev, w]);
  });
});

describe("BEVDepth's camera-aware DepthNet", () => {
  const geom = (fx: number) => ({
    intrinsics: Float32Array.from([fx, 0, 80, 0, fx, 30, 0, 0, 1, fx, 0, 80, 0, fx, 30, 0, 0, 1]),
    sensor2ego: Float32Array.from([...[0, 0, 1, 1.5, -1, 0, 0, 0, 0, -1, 0, 1.6, 0, 0, 0, 1], ...[0, 0, -1, -1, 1, 0, 0, 0, 0, -1, 0, 1.6, 0, 0, 0, 1]]),
    postAug: Float32Array.from([0.5, 0, -4, 0, 0.5, -2, 0, 0, 1, 0.5, 0, -4, 0, 0.5, -2, 0, 0, 1]),
    bda: Float32Array.from([-1, 0, 0, 0, 1, 0, 0, 0, 1]),
  });

  it("packs each camera as BEVDet's get_mlp_input: intrinsics, image aug, bda, camera → ego", () => {
    const v = cameraVector(geom(100), 2);
    expect(v.length).toBe(2 * CAMERA_VECTOR_SIZE);
    expect([...v.subarray(0, 15)]).toEqual([100, 100, 80, 30, 0.5, 0, -4, 0, 0.5, -2, -1, 0, 0, 1, 1]);
    expect([...v.subarray(15, 27)]).toEqual([...Float32Array.from([0, 0, 1, 1.5, -1, 0, 0, 0, 0, -1, 0, 1.6])]);
    expect([...v.subarray(27 + 15, 27 + 27)]).toEqual([...Float32Array.from([0, 0, -1, -1, 1, 0, 0, 0, 0, -1, 0, 1.6])]);
  });

  it("has the reference's modules, depth then context channels, gates that read the camera, and gradients everywhere", () => {
    const net = new CameraAwareDepthNet({ inChannels: 6, midChannels: 8, contextChannels: 5, depthBins: 7, blocks: 1, aspp: true, rng: createRng(6) });
    const keys = Object.keys(net.stateDict());
    for (const k of ['reduce_conv.0.weight', 'reduce_conv.1.running_mean', 'context_conv.weight', 'bn.running_var', 'depth_mlp.fc1.weight', 'depth_mlp.fc2.bias',
      'depth_se.conv_reduce.weight', 'depth_se.conv_expand.bias', 'context_mlp.fc1.weight', 'context_se.conv_expand.weight',
      'depth_conv.0.conv1.weight', 'depth_conv.1.aspp2.atrous_conv.weight', 'depth_conv.1.global_avg_pool.1.weight', 'depth_conv.1.conv1.weight', 'depth_conv.2.weight'])
      expect(keys).toContain(k);
    const x = randn([2, 3, 5, 6], createRng(7)) as tf.Tensor4D;
    net.train(false);
    const a = net.forward(x, cameraVector(geom(100), 2));
    const b = net.forward(x, cameraVector(geom(300), 2));
    expect(a.shape).toEqual([2, 3, 5, 12]);
    expect(Math.max(...tf.abs(tf.sub(a, b)).dataSync())).toBeGreaterThan(1e-4); // the camera changes the output
    expect(() => net.forward(x, new Float32Array(27))).toThrow(/\[2, 27\]/);
    net.train(true);
    const vars = net.parameters();
    const { grads, value } = tf.variableGrads(() => tf.sum(tf.square(net.forward(x, cameraVector(geom(120), 2)))) as tf.Scalar, vars);
    for (const v of vars) expect(Math.max(...tf.abs(grads[v.name]!).dataSync()), v.name).toBeGreaterThan(0);
    tf.dispose([x, a, b, value, ...Object.values(grads)]);
    net.dispose();
  });
});
