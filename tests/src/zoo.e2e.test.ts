/**
 * The model zoo: the packaged CenterPoint weights, created by name as a user would (`createModel`, like timm's
 * create_model), evaluated on the synthetic val split with the nuScenes metrics, reproduce the metrics their
 * package declares; `listModels` shows them.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModel, disposeForward, listModels, tidyForward, type DetPrediction, type TaskModel } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { egoDetectionsToResults, evaluateDetection, type EvalBox } from '@bevzoo/eval';
import { createLoader, type Batch } from '@bevzoo/nuscenes';
import { datasetId, loadPlugins, prepareDataset, zooMarkdown, zooRows } from '@bevzoo/runner';
import '@bevzoo/teacher-centerpoint';

describe('packaged weights through createModel', () => {
  it("createModel('centerpoint', { preset: 'small', pretrained: true }) reproduces the packaged metrics on synth_val", async () => {
    await initEngine({ log: () => {} });
    const entry = listModels().find((m) => m.name === 'centerpoint')!;
    const declared = entry.checkpoints.find((c) => c.preset === 'small')!;
    expect(declared.metrics.mean_ap).toBeGreaterThan(0.4);

    const data = await prepareDataset({ synthPreset: 'small', dataDir: mkdtempSync(join(tmpdir(), 'bevzoo-zoo-')) });
    expect(datasetId(data)).toBe(declared.data);
    const created = await createModel<TaskModel<Batch, DetPrediction[]>>('centerpoint', { preset: 'small', pretrained: true });
    expect(created.weights).toMatchObject([{ source: 'packaged', file: declared.file }]);
    const { model, config } = created;
    model.train(false);
    const loader = createLoader({ nusc: data.nusc, sampleTokens: data.val, batchSize: 2, imageSize: [32, 88], points: true, sweeps: config.data.sweeps, augment: false, shuffle: false });
    const results = new Map<string, EvalBox[]>();
    for await (const batch of loader.epoch(0)) {
      const out = tidyForward(model, batch, false);
      const dets = await model.predict(out, batch);
      disposeForward(out);
      batch.sampleTokens.forEach((t, i) => results.set(t, egoDetectionsToResults(data.nusc, t, dets[i]!)));
    }
    model.dispose();
    const meta = { use_camera: false, use_lidar: true, use_radar: false, use_map: false, use_external: false };
    const s = evaluateDetection({ nusc: data.nusc, sampleTokens: data.val, results: { meta, results }, config: data.evalConfig, log: () => {} }).summary;
    // The packaged figures were measured on the wasm kernels. On the native kernels (libtorch; the default where it
    // is installed) the same weights give the same detections up to float32 rounding, which moves NDS in its 8th digit.
    const wasm = (await initEngine({ log: () => {} })).kernels !== 'native';
    const same = (got: number, want: number) => (wasm ? expect(got).toBe(want) : expect(Math.abs(got - want)).toBeLessThan(1e-6));
    same(s.mean_ap, declared.metrics.mean_ap);
    same(s.nd_score, declared.metrics.nd_score);
  }, 600_000); // generates the small dataset (≈ 30 s on an idle machine) and runs the teacher over 48 samples
});

describe('bevzoo zoo', () => {
  it("the root README's model zoo table is the one the registry gives (bevzoo zoo --markdown)", async () => {
    await initEngine({ log: () => {} });
    // The runner's plugins, as the CLI loads them (this file imported CenterPoint's sources already: its built copy is refused as a duplicate).
    const { failed } = await loadPlugins([]);
    expect(failed.map((f) => `${f.name}: ${f.error}`).filter((f) => !f.startsWith('@bevzoo/teacher-centerpoint: register: teacher:centerpoint is already registered'))).toEqual([]);
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const table = /<!-- zoo:start -->\n([\s\S]*?)<!-- zoo:end -->/.exec(readme)?.[1];
    expect(table, 'README.md has the zoo markers').toBeDefined();
    const rows = await zooRows();
    expect(rows.map((r) => r.model)).toEqual(expect.arrayContaining(['centerpoint', 'bevdet', 'bevdet4d', 'bevdepth', 'bevformer']));
    expect(table, 'README.md is stale: regenerate its table with pnpm bevzoo zoo --markdown').toBe(zooMarkdown(rows));
  }, 180_000);
});
