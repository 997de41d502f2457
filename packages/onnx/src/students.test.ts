/**
 * The camera students of the LSS family and the teachers beside CenterPoint (onnx.test.ts) exported to ONNX: images (and the previous keyframe's, the camera vector of
 * BEVDepth's depth net, BEVDet4D's alignment taps) and BEVPool's indices are graph inputs, BEVPool is a Gather +
 * ScatterND(add) with a symbolic number of kept frustum points; onnxruntime-node gives the engine's features and outputs
 * on augmented batches whose camera geometry differs from the traced one. MVP (the CenterPoint-pillar detector on 17-value
 * points): the pillars of the painted and virtual points are the graph inputs.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, runSettings, type CreatedModel, type TaskModel } from '@bevzoo/core';
import type { Batch } from '@bevzoo/nuscenes';
import '@bevzoo/student-bevdet';
import '@bevzoo/student-bevdet4d';
import '@bevzoo/student-bevdepth';
import '@bevzoo/student-flashocc';
import '@bevzoo/student-bevdet-occ';
import '@bevzoo/student-bevformer';
import '@bevzoo/teacher-mvp';
import '@bevzoo/teacher-occ-fusion';
import { captureFeeds, compareOutputs, decodeModel, exportOnnx, OnnxSession, OPSET, type OnnxExport } from './index.js';
import { engineOutputs, expectReferenceCheckerPasses, expectReferenceEvaluatorMatches, syntheticBatchesFor } from './testutil.js';

beforeAll(async () => {
  const { initEngine } = await import('@bevzoo/engine');
  await initEngine({ backend: 'wasm', log: () => {} });
}, 300_000);

const tmp = mkdtempSync(join(tmpdir(), 'bevzoo-onnx-students-'));

const POOL = ['bevpool.point_index', 'bevpool.pixel_index', 'bevpool.segment_ids'];
const HITS = ['bevformer.hits_index', 'bevformer.hits_ref', 'bevformer.hits_count'];
const prev = (names: string[]) => names.map((n) => `prev.${n}`);
/** Student and its graph inputs. */
const STUDENTS: [string, string[]][] = [
  ['bevdet', ['images', ...POOL]],
  ['bevdepth', ['images', ...POOL, 'camera_params']],
  ['bevdet4d', ['images', ...POOL, ...prev(['images', ...POOL]), 'align.index', 'align.weight']],
  ['flashocc', ['images', ...POOL]],
  ['bevdet-occ', ['images', ...POOL]],
  ['bevformer', ['images', ...HITS, ...prev(['images', ...HITS]), 'align.index', 'align.weight']],
  // The multi-modal occupancy teacher: the cameras, and the LiDAR branch's pillars and height histogram.
  ['occ-fusion', ['images', ...POOL, 'pillars.features', 'pillars.num_points', 'pillars.coords', 'lidar.height_histogram']],
];

describe.each(STUDENTS)('student %s (tiny)', (name, inputs) => {
  let created: CreatedModel<TaskModel>;
  let batches: Batch[];
  let ex: OnnxExport;
  beforeAll(async () => {
    created = await createModel<TaskModel>(name, { preset: 'tiny' });
    batches = await syntheticBatchesFor(runSettings(created.config).data, 3);
    ex = exportOnnx(created.model, batches[0], { name: `${name}-tiny` });
    return () => created.model.dispose();
  }, 600_000);

  it('exports with the images, BEVPool\'s indices (a symbolic number of kept points) and the camera data as graph inputs', () => {
    const m = decodeModel(ex.bytes);
    expect(m.opsetImport.map((o) => [o.domain ?? '', o.version])).toEqual([['', OPSET]]);
    expect(ex.inputs.map((i) => i.name).sort()).toEqual([...inputs].sort());
    // BEVPool's indices have a symbolic length (the kept frustum points); everything else is fixed.
    for (const i of ex.inputs) expect(i.dynamicAxes, i.name).toEqual(i.name.includes('bevpool.') ? { 0: i.name.startsWith('prev.') ? 'num_prev_bevpool' : 'num_bevpool' } : i.name.startsWith('pillars.') ? { 0: 'num_pillars' } : {});
    const outs = m.graph.output.map((o) => o.name);
    for (const f of Object.keys(created.features)) expect(outs).toContain(f);
    const ops = new Set(m.graph.node.map((n) => n.opType));
    if (name === 'bevformer') {
      // Deformable attention: bilinear corners by Floor, Gather; the cameras' queries gathered and scatter-added.
      for (const op of ['Floor', 'Gather', 'ScatterND']) expect(ops, op).toContain(op);
    } else {
      expect(outs).toContain('depth');
      // BEVPool in standard ops: a ScatterND with reduction add per lifted frame.
      // (BEVDet4D: the previous frame's too; the occupancy teacher: the pillar scatter too.)
      expect(m.graph.node.filter((n) => n.opType === 'ScatterND')).toHaveLength(name === 'bevdet4d' || name === 'occ-fusion' ? 2 : 1);
    }
    // The weights are initializers named like the state dict.
    for (const prefix of ['img_backbone.', 'img_neck.']) expect(m.graph.initializer.some((t) => t.name.startsWith(prefix)), prefix).toBe(true);
  });

  it('runs on onnxruntime-node with the engine outputs within 1e-4 of each output scale, on batches of other camera geometries', async () => {
    const session = await OnnxSession.create(ex.bytes, { threads: 1, name });
    try {
      const kept = new Set<number | string>();
      for (const batch of batches) {
        const feeds = captureFeeds(created.model, batch, ex.inputs, name);
        // The camera data differ from batch to batch (the augmentation): BEVPool's kept points, BEVFormer's hits.
        const geometry = feeds['bevpool.point_index'] ?? feeds['bevformer.hits_ref']!;
        kept.add(feeds['bevpool.point_index'] ? geometry.dims[0]! : Array.from(geometry.data.slice(0, 64)).join());
        const cmp = compareOutputs(await session.run(feeds), engineOutputs(created.model, batch));
        expect(cmp.length).toBe(ex.outputs.length);
        for (const c of cmp) expect(c.relative, `${name} ${c.name}: max |Δ| ${c.maxAbs} at scale ${c.scale}`).toBeLessThan(1e-4);
      }
      // The feeds are host work only: every input is reported before any layer runs (no convolution on the engine).
      const profile = await tf.profile(() => void captureFeeds(created.model, batches[1]!, ex.inputs, name));
      expect(profile.kernelNames.filter((k) => /Conv/.test(k)), 'kernels run by captureFeeds').toEqual([]);
      // The augmentation changes which frustum points fall in the grid (one file takes every number of them), and
      // where BEVFormer's queries project.
      expect(kept.size).toBeGreaterThan(1);
    } finally {
      await session.release();
    }
  });

  it('passes the reference ONNX checker (python3-onnx) with full shape inference', async (ctx) => {
    expectReferenceCheckerPasses(ex, join(tmp, `${name}-tiny.onnx`), (why) => ctx.skip(why));
  });

  it('runs on a second runtime, onnx\'s reference evaluator, with the engine outputs within 1e-4 on a batch of another camera geometry', (ctx) => {
    expectReferenceEvaluatorMatches(created.model, ex, batches[2]!, name, join(tmp, `${name}-reference`), (why) => ctx.skip(why));
  }, 600_000);
});

describe('teacher mvp (tiny)', () => {
  let created: CreatedModel<TaskModel>;
  let batches: Batch[];
  let ex: OnnxExport;
  beforeAll(async () => {
    created = await createModel<TaskModel>('mvp', { preset: 'tiny' });
    const data = runSettings(created.config).data;
    expect(data.virtualPoints).toBe(true);
    batches = await syntheticBatchesFor(data, 3); // masks and the virtual-point cache made there
    ex = exportOnnx(created.model, batches[0], { name: 'mvp-tiny' });
    return () => created.model.dispose();
  }, 600_000);

  it('exports with the pillars of the 17-value points as graph inputs (a symbolic number of pillars)', () => {
    expect(batches.every((b) => b.pointFeatures === 17)).toBe(true);
    const m = decodeModel(ex.bytes);
    expect(m.opsetImport.map((o) => [o.domain ?? '', o.version])).toEqual([['', OPSET]]);
    expect(ex.inputs.map((i) => i.name).sort()).toEqual(['pillars.coords', 'pillars.features', 'pillars.num_points']);
    for (const i of ex.inputs) expect(i.dynamicAxes, i.name).toEqual({ 0: 'num_pillars' });
    expect(ex.inputs.find((i) => i.name === 'pillars.features')!.shape.slice(1)).toEqual([8, 17]); // maxPoints × 17 values
    const outs = m.graph.output.map((o) => o.name);
    for (const f of Object.keys(created.features)) expect(outs).toContain(f);
    expect(outs).toContain('task0.heatmap');
    expect(m.graph.node.filter((n) => n.opType === 'ScatterND')).toHaveLength(1); // the pillar scatter
    expect(m.graph.initializer.some((t) => t.name === 'pts_voxel_encoder.pfn_layers.0.linear.weight')).toBe(true);
  });

  it('runs on onnxruntime-node with the engine outputs within 1e-4 of each output scale, on batches of other pillar counts', async () => {
    const session = await OnnxSession.create(ex.bytes, { threads: 1, name: 'mvp' });
    try {
      const seen = new Set<number>();
      for (const batch of batches) {
        const feeds = captureFeeds(created.model, batch, ex.inputs, 'mvp');
        seen.add(feeds['pillars.features']!.dims[0]!);
        const cmp = compareOutputs(await session.run(feeds), engineOutputs(created.model, batch));
        expect(cmp.length).toBe(ex.outputs.length);
        for (const c of cmp) expect(c.relative, `mvp ${c.name}: max |Δ| ${c.maxAbs} at scale ${c.scale}`).toBeLessThan(1e-4);
      }
      expect(seen.size).toBeGreaterThan(1);
    } finally {
      await session.release();
    }
  });

  it('passes the reference ONNX checker (python3-onnx) with full shape inference', async (ctx) => {
    expectReferenceCheckerPasses(ex, join(tmp, 'mvp-tiny.onnx'), (why) => ctx.skip(why));
  });

  it('runs on a second runtime, onnx\'s reference evaluator, with the engine outputs within 1e-4 on a batch of other pillars', (ctx) => {
    expectReferenceEvaluatorMatches(created.model, ex, batches[2]!, 'mvp', join(tmp, 'mvp-reference'), (why) => ctx.skip(why));
  }, 600_000);
});
