import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@bevzoo/core';
import { gradCheck, leakDelta, randn, useCpu } from '../testutil.js';
import { ConfigurationError, ShapeError } from '../errors.js';
import { rigBatch, withOccLabels } from '../detectors/rig-batch.js';
import {
  bdaFlips, ChannelToHeightHead, flipOccVolume, inverseLogWeights, LSSOcc2D, LSSOcc3D, lssOcc2DFeatures, lssOcc2DSchema, lssOcc3DFeatures,
  lssOcc3DSchema, OCC3D, OCC3D_NUSCENES_CLASS_FREQUENCIES, occClassWeights, occCrossEntropy, occGrid, poolOccLabels, upsampleOccLabels,
  VoxelOccHead, type LSSOccBatch,
} from './index.js';

beforeAll(useCpu);
const rng = createRng(21);
const [FX, FY, FZ] = OCC3D.cells;
const FINE = FX * FY * FZ;
const at = (x: number, y: number, z: number, b = 0) => b * FINE + (x * FY + y) * FZ + z;

describe('Occ3D grid', () => {
  it('coarse grids are whole multiples of 0.4 m dividing 200 × 200 × 16; others are named errors', () => {
    expect(occGrid(0.4, 0.4)).toEqual({ cells: [200, 200, 16], factor: [1, 1, 1], cellSize: [0.4, 0.4, 0.4] });
    const g = occGrid(0.8, 0.4);
    expect(g.cells).toEqual([100, 100, 16]);
    expect(g.factor).toEqual([2, 2, 1]);
    expect(occGrid(2.0, 1.6).cells).toEqual([40, 40, 4]);
    expect(() => occGrid(0.6, 0.4)).toThrow(ConfigurationError);
    expect(() => occGrid(1.2, 0.4)).toThrow(/cellSize: a multiple of Occ3D's 0.4 m that divides its 200 voxels \(0.4, 0.8, 1.6, 2, 3.2/);
    expect(() => occGrid(0.8, 1.2)).toThrow(/zCellSize/);
  });
});

describe('label pooling and upsampling', () => {
  it('factor 1 copies the labels and the camera mask', () => {
    const sem = new Uint8Array(FINE).fill(17), mask = new Uint8Array(FINE);
    sem[at(3, 4, 5)] = 4;
    mask[at(3, 4, 5)] = 1;
    const t = poolOccLabels(sem, mask, occGrid(0.4, 0.4));
    expect(t.cells).toEqual([200, 200, 16]);
    expect(t.labels[at(3, 4, 5)]).toBe(4);
    expect(t.mask[at(3, 4, 5)]).toBe(1);
    expect(t.mask.reduce((a, v) => a + v, 0)).toBe(1);
  });

  it("'visible' votes among the camera-visible fine voxels (free counted); 'occupied' is occupied if any fine voxel is", () => {
    const g = occGrid(0.8, 0.8); // 2 × 2 × 2 fine voxels per coarse voxel
    const sem = new Uint8Array(2 * FINE).fill(17), mask = new Uint8Array(2 * FINE);
    // coarse (0, 0, 0): one visible car among seven visible free voxels, and an invisible truck
    for (const [x, y, z] of [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1], [1, 1, 0]] as const) mask[at(x, y, z)] = 1;
    sem[at(0, 0, 0)] = 4;
    sem[at(1, 1, 1)] = 10;
    // coarse (5, 5, 2): two visible sidewalk, two visible driveable, rest free and invisible → tie, lower index
    for (const [x, y, z, c] of [[10, 10, 4, 13], [10, 11, 4, 13], [11, 10, 4, 11], [11, 11, 4, 11]] as const) {
      sem[at(x, y, z)] = c;
      mask[at(x, y, z)] = 1;
    }
    // coarse (7, 7, 7): all invisible, one barrier; sample 1, coarse (0, 0, 0): three visible cars, one visible free
    sem[at(14, 15, 15)] = 1;
    for (const [x, y, z, c] of [[0, 0, 0, 4], [0, 1, 0, 4], [1, 0, 0, 4], [1, 1, 0, 17]] as const) {
      sem[at(x, y, z, 1)] = c;
      mask[at(x, y, z, 1)] = 1;
    }
    const M = 100 * 100 * 8;
    const c = (x: number, y: number, z: number, b = 0) => b * M + (x * 100 + y) * 8 + z;
    const vis = poolOccLabels(sem, mask, g, 'visible');
    const occ = poolOccLabels(sem, mask, g, 'occupied');
    expect(vis.batch).toBe(2);
    expect([vis.labels[c(0, 0, 0)], occ.labels[c(0, 0, 0)]]).toEqual([17, 4]); // 1 car vs 6 free visible; 'occupied': car and truck tie → car
    expect([vis.labels[c(5, 5, 2)], occ.labels[c(5, 5, 2)]]).toEqual([11, 11]);
    expect([vis.labels[c(7, 7, 7)], occ.labels[c(7, 7, 7)]]).toEqual([1, 1]); // nothing visible: 'visible' falls back to 'occupied'
    expect([vis.labels[c(0, 0, 0, 1)], occ.labels[c(0, 0, 0, 1)]]).toEqual([4, 4]);
    expect([vis.mask[c(0, 0, 0)], vis.mask[c(5, 5, 2)], vis.mask[c(7, 7, 7)], vis.mask[c(0, 0, 0, 1)]]).toEqual([1, 1, 0, 1]);
    expect(vis.mask).toEqual(occ.mask);
    expect(vis.mask.reduce((a, v) => a + v, 0)).toBe(3);
    expect(vis.labels[c(50, 50, 3)]).toBe(17);
  });

  it('upsampling a pooled block-constant volume gives it back; flips are their own inverse; bda flips are read', () => {
    const g = occGrid(0.8, 0.4);
    const coarse = new Int32Array(100 * 100 * 16);
    for (let i = 0; i < coarse.length; i++) coarse[i] = (i * 7) % 18;
    const [fine] = upsampleOccLabels(coarse, g);
    expect(fine!.length).toBe(FINE);
    expect(fine![at(5, 7, 3)]).toBe(coarse[(2 * 100 + 3) * 16 + 3]);
    const back = poolOccLabels(fine!, new Uint8Array(FINE).fill(1), g, 'occupied');
    expect(back.labels).toEqual(coarse);
    expect(() => upsampleOccLabels(new Int32Array(5), g)).toThrow(ShapeError);
    const f = flipOccVolume(coarse, g.cells, true, false);
    expect(f[(99 * 100 + 3) * 16 + 2]).toBe(coarse[(0 * 100 + 3) * 16 + 2]);
    expect(flipOccVolume(flipOccVolume(coarse, g.cells, true, true), g.cells, true, true)).toEqual(coarse);
    expect(bdaFlips([-1, 0, 0, 0, 1, 0, 0, 0, 1])).toEqual({ flipX: true, flipY: false });
    expect(bdaFlips([1, 0, 0, 0, -1, 0, 0, 0, 1])).toEqual({ flipX: false, flipY: true });
    expect(bdaFlips([0, -1, 0, 1, 0, 0, 0, 0, 1])).toBeNull();
    expect(bdaFlips([1.1, 0, 0, 0, 1.1, 0, 0, 0, 1.1])).toBeNull();
  });
});

describe('occupancy cross-entropy', () => {
  const n = 40, K = 18;
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 5) % K);
  const mask = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 1));
  const naive = (x: tf.Tensor, w: Float32Array | null) => tf.tidy(() => {
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(tf.reshape(x, [n, K])), tf.oneHot(tf.tensor1d(labels, 'int32'), K)), 1));
    const c = tf.mul(tf.tensor1d(mask), w ? tf.gather(tf.tensor1d(w), tf.tensor1d(labels, 'int32')) : 1);
    return tf.div(tf.sum(tf.mul(nll, c)), tf.sum(c)) as tf.Scalar;
  });

  it('is the masked, class-weighted mean of −log p(label) (mmdet avg_factor), with the hand-written gradient', () => {
    const x = tf.variable(randn([2, 4, 5, K], rng, 2));
    for (const w of [null, occClassWeights('reference')]) {
      const a = occCrossEntropy(x, { labels, mask }, w), b = naive(x, w);
      expect(a.dataSync()[0]).toBeCloseTo(b.dataSync()[0]!, 4);
      const ga = tf.grad((v: tf.Tensor) => occCrossEntropy(v, { labels, mask }, w))(x);
      const gb = tf.grad((v: tf.Tensor) => naive(v, w))(x);
      expect(tf.max(tf.abs(tf.sub(ga, gb))).dataSync()[0]).toBeLessThan(1e-6);
      gradCheck(() => occCrossEntropy(x, { labels, mask }, w), [x], { samples: 12 });
      tf.dispose([a, b, ga, gb]);
    }
    // no visible voxel: zero, and still a gradient (of zeros)
    const z = occCrossEntropy(x, { labels, mask: new Float32Array(n) });
    expect(Math.abs(z.dataSync()[0]!)).toBe(0);
    expect(() => occCrossEntropy(x, { labels: labels.subarray(1), mask: mask.subarray(1) })).toThrow(ShapeError);
    expect(() => occCrossEntropy(x, { labels: Int32Array.from(labels, () => 18), mask })).toThrow(/labels in 0..17/);
    expect(leakDelta([x], () => occCrossEntropy(x, { labels, mask }))).toBe(0);
    tf.dispose([x, z]);
  });

  it("class weights: none by default (the reference configs), 'reference' = 1 / ln(nuScenes count + 0.001), 'inverse-sqrt', or 18 numbers", () => {
    expect(occClassWeights('none')).toBeNull();
    const w = occClassWeights('reference')!;
    expect(w.length).toBe(18);
    expect(w[17]).toBeCloseTo(1 / Math.log(1892500630.001), 8);
    expect(w[2]).toBeCloseTo(1 / Math.log(152386.001), 8);
    expect(inverseLogWeights(OCC3D_NUSCENES_CLASS_FREQUENCIES)).toEqual(w);
    const s = occClassWeights('inverse-sqrt')!;
    expect(s[17]).toBe(1);
    expect(s[4]).toBeCloseTo(Math.sqrt(1892500630 / 16957802), 4); // car ≈ 10.6
    expect(s[2]).toBeCloseTo(111.44, 2);
    expect(Array.from(occClassWeights(Array.from({ length: 18 }, (_, i) => i))!)).toEqual(Array.from({ length: 18 }, (_, i) => i));
    expect(() => occClassWeights([1, 2, 3])).toThrow(ShapeError);
  });
});

describe('occupancy heads', () => {
  it('VoxelOccHead: Conv3d + MLP per voxel with the reference names; sub-voxels land in their place', () => {
    const h = new VoxelOccHead(3, { channels: 4, rng });
    expect(h.namedParameters().map(([k, v]) => `${k} [${v.shape}]`)).toEqual([
      'final_conv.conv.weight [3,3,3,3,4]', 'final_conv.conv.bias [4]', 'predicter.0.weight [4,8]', 'predicter.0.bias [8]', 'predicter.2.weight [8,18]', 'predicter.2.bias [18]',
    ]);
    const x = tf.variable(randn([2, 4, 3, 2, 3], rng));
    const y = h.forward(x);
    expect(y.shape).toEqual([2, 4, 3, 2, 18]);
    gradCheck(() => tf.sum(tf.mul(h.forward(x), 0.1)) as tf.Scalar, [x, h.final_conv.conv.weight], { samples: 4 });
    expect(leakDelta(h.parameters(), () => h.forward(x))).toBe(0);
    // Sub-voxels: make the output the channel index (last Linear: zero weight, bias = index) and read it back.
    const s = new VoxelOccHead(3, { channels: 4, numClasses: 2, subvoxels: [2, 3, 2], rng });
    const last = s.predicter.get(2) as unknown as { weight: tf.Variable; bias: tf.Variable };
    last.weight.assign(tf.zerosLike(last.weight));
    last.bias.assign(tf.range(0, 24, 1, 'float32'));
    const o = s.forward(x).arraySync() as number[][][][][];
    expect([o.length, o[0]!.length, o[0]![0]!.length, o[0]![0]![0]!.length]).toEqual([2, 8, 9, 4]);
    for (const [X, Y, Z] of [[0, 0, 0], [1, 2, 1], [5, 4, 3], [7, 8, 2]] as const) {
      const [i, j, k] = [X % 2, Y % 3, Z % 2];
      expect(o[1]![X]![Y]![Z]).toEqual([((i * 3 + j) * 2 + k) * 2, ((i * 3 + j) * 2 + k) * 2 + 1]);
    }
    tf.dispose([x, y]);
    h.dispose();
    s.dispose();
  });

  it('ChannelToHeightHead: BEV [B, Y, X, C] → [B, X, Y, Z, K], channel z·K + k is class k at height z', () => {
    const h = new ChannelToHeightHead(3, 4, { channels: 5, numClasses: 3, rng });
    expect(Object.keys(h.stateDict())).toEqual(['final_conv.conv.weight', 'final_conv.conv.bias', 'predicter.0.weight', 'predicter.0.bias', 'predicter.2.weight', 'predicter.2.bias']);
    expect(h.predicter.get(2).parameters()[0]!.shape).toEqual([10, 12]);
    const x = tf.variable(randn([2, 6, 7, 3], rng)); // Y 6, X 7
    const y = h.forward(x);
    expect(y.shape).toEqual([2, 7, 6, 4, 3]);
    // rows are y, columns x: a feature at BEV row 1, column 5 shows up at [x 5, y 1]
    const last = h.predicter.get(2) as unknown as { weight: tf.Variable; bias: tf.Variable };
    last.weight.assign(tf.zerosLike(last.weight));
    last.bias.assign(tf.range(0, 12, 1, 'float32'));
    expect((h.forward(x).arraySync() as number[][][][][])[0]![5]![1]).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]);
    gradCheck(() => tf.sum(tf.mul(h.forward(x), 0.1)) as tf.Scalar, [x, h.final_conv.conv.weight], { samples: 4 });
    expect(leakDelta(h.parameters(), () => h.forward(x))).toBe(0);
    tf.dispose([x, y]);
    h.dispose();
  });
});

const occBatch = (imageSize: [number, number]): LSSOccBatch => withOccLabels(rigBatch(imageSize, [[], []]));

const micro = {
  backbone: { block: 'basic', layers: [1, 1, 1], widths: [4, 8, 8], stemWidth: 4, outIndices: [1, 2] },
  neck: { outChannels: 8 },
  viewTransform: { contextChannels: 4, depthBins: [2, 50, 8] },
  grid: { cellSize: 2, zCellSize: 1.6 },
  data: { imageSize: [32, 88], occ: true },
};

describe('the LSS occupancy models (micro configs, cpu)', () => {
  it('config checks name the field', () => {
    // the schema's issues as "path: message" lines (what resolveConfig's ConfigError prints)
    const issues = (schema: typeof lssOcc3DSchema | typeof lssOcc2DSchema, o: object) => {
      const r = schema.safeParse({ ...micro, ...o });
      return r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    };
    expect(issues(lssOcc3DSchema, {})).toBe('');
    expect(issues(lssOcc3DSchema, { grid: { cellSize: 0.6, zCellSize: 0.4 } })).toMatch(/^grid\.cellSize: a multiple of Occ3D's 0.4 m/);
    expect(issues(lssOcc3DSchema, { data: { imageSize: [32, 88], occ: false } })).toMatch(/^data\.occ: true/);
    expect(issues(lssOcc3DSchema, { depthSupervision: { weight: 1 } })).toMatch(/^data\.points: true with depthSupervision/);
    expect(issues(lssOcc3DSchema, { head: { subvoxels: [3, 3, 1] } })).toMatch(/^head\.subvoxels:/);
    expect(issues(lssOcc3DSchema, { grid: { cellSize: 0.4, zCellSize: 3.2 } })).toMatch(/^grid: a volume divisible by 4 along x, y and z/); // 2 z cells, 3 stages
    expect(issues(lssOcc3DSchema, { voxelEncoder: { numLayers: [1, 1], channels: [4] } })).toMatch(/^voxelEncoder\.channels: one per stage \(2\)/);
    expect(issues(lssOcc2DSchema, { grid: { cellSize: 3.2, zCellSize: 1.6 } })).toMatch(/^grid\.cellSize: BEV cells divisible by 8/);
    expect(issues(lssOcc2DSchema, { grid: { cellSize: 3.2, zCellSize: 1.6 }, bevEncoder: { firstStride: 1 } })).toMatch(/^grid\.cellSize: BEV cells divisible by 4/); // 25 cells
    expect(issues(lssOcc2DSchema, { loss: { classWeights: [1, 2] } })).toMatch(/^loss\.classWeights/);
    // the defaults are the reference configurations
    const d3 = lssOcc3DSchema.parse({});
    expect([d3.viewTransform.contextChannels, d3.viewTransform.depthBins, d3.neck.outChannels, d3.voxelEncoder.numLayers, d3.head.channels, d3.grid.cellSize]).toEqual([32, [1, 45, 0.5], 256, [1, 2, 4], 32, 0.4]);
    expect(lssOcc3DFeatures(d3).voxel).toMatchObject({ kind: 'voxel', channels: 32, grid: { cells: [200, 200, 16] } });
    const d2 = lssOcc2DSchema.parse({});
    expect([d2.viewTransform.contextChannels, d2.bevEncoder.firstStride, d2.bevEncoder.neckChannels, d2.head.channels, d2.loss.classWeights, d2.data.occ]).toEqual([64, 2, 256, 256, 'none', true]);
    expect(lssOcc2DFeatures(d2).pre_head).toMatchObject({ kind: 'bev', channels: 256, grid: { cells: [200, 200] } });
  });

  for (const kind of ['3d', '2d'] as const) {
    it(`${kind}: features as declared, logits on the grid, loss part occ.ce, predictions on the Occ3D grid with flips undone; no leak`, async () => {
      const m = kind === '3d'
        ? new LSSOcc3D(lssOcc3DSchema.parse({ ...micro, voxelEncoder: { numLayers: [1, 1], channels: [4, 8], neckChannels: 4 }, head: { channels: 4, subvoxels: [1, 1, 2] } }), { rng: createRng(3) })
        : new LSSOcc2D(lssOcc2DSchema.parse({ ...micro, bevEncoder: { numLayers: [1, 1, 1], channels: [4, 8, 8], firstStride: 1, neckChannels: 4 }, head: { channels: 4 } }), { rng: createRng(3) });
      const spec = kind === '3d' ? lssOcc3DFeatures(m.config as never) : lssOcc2DFeatures(m.config as never);
      const batch = occBatch([32, 88]);
      const out = m.forward(batch, { training: false });
      expect(Object.keys(out.features).sort()).toEqual(Object.keys(spec).sort());
      for (const [name, s] of Object.entries(spec)) {
        const shape = s.kind === 'voxel' ? [2, ...s.grid.cells, s.channels] : [2, s.grid.cells[1], s.grid.cells[0], s.channels];
        expect(out.features[name]!.shape, name).toEqual(shape);
      }
      expect(out.outputs.occ!.shape).toEqual([2, 40, 40, 4, 18]);
      const keys = Object.keys(m.stateDict());
      for (const p of ['img_backbone.', 'img_neck.', 'img_view_transformer.depthnet.', 'img_bev_encoder_backbone.layers.0.0.', 'img_bev_encoder_neck.', 'occ_head.final_conv.conv.weight', 'occ_head.predicter.2.bias'])
        expect(keys.some((k) => k.startsWith(p)), p).toBe(true);
      const l = m.loss(out, batch);
      expect(Object.keys(l.parts)).toEqual(['occ.ce']);
      expect(l.total.dataSync()[0]).toBeGreaterThan(0);
      expect(l.total.dataSync()[0]).toBeCloseTo(l.parts['occ.ce']!.dataSync()[0]!, 6);
      const preds = await m.predict(out, batch);
      expect(preds.map((p) => p.semantics.length)).toEqual([FINE, FINE]);
      expect(preds[0]!.semantics.every((v) => v < 18)).toBe(true);
      // predictions are in the un-augmented frame: an x-flipped sample's prediction is the flip of its coarse arg-max
      const flipped = { ...batch, bda: Float32Array.from([-1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1]) };
      const pf = await m.predict(out, flipped);
      expect(pf[0]!.semantics[at(199, 3, 2)]).toBe(preds[0]!.semantics[at(0, 3, 2)]);
      expect(pf[1]!.semantics).toEqual(preds[1]!.semantics);
      const rotated = { ...batch, bda: Float32Array.from([0, -1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1]) };
      expect(() => m.loss(out, rotated)).toThrow(/bda: expected flips only/);
      expect(() => m.loss(out, { ...batch, occ: undefined })).toThrow(/batch\.occ: expected the Occ3D labels/);
      tf.dispose([...Object.values(out.features), ...Object.values(out.outputs), l.total, ...Object.values(l.parts)]);
      // a training step leaks no tensor
      const step = () => {
        const { value, grads } = tf.variableGrads(() => m.loss(m.forward(batch, { training: true }), batch).total, m.parameters());
        value.dispose();
        tf.dispose(grads);
      };
      step();
      const before = tf.memory().numTensors;
      step();
      expect(tf.memory().numTensors).toBe(before);
      m.dispose();
    }, 120_000);
  }
});
