/**
 * `bevzoo export <model> [--preset p] [--checkpoint f] [--batch-size n] --out model.onnx`: a teacher or student with
 * its weights as an ONNX model (opset 17, @bevzoo/onnx), traced on the first batch of the val split; named inputs (the
 * batch data the model reads, e.g. CenterPoint's pillars, whose number varies) and outputs (the model's features and
 * head outputs). The file is then run once on onnxruntime-node and compared with the engine on that batch.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { getModelPlugin, runSettings } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { createLoader } from '@bevzoo/nuscenes';
import { type ParsedArgs, int, optStr, str, UsageError } from '../args.js';
import { describeDataset, prepareDataset, prepareVirtualPointsFor } from '../pipeline/dataset.js';
import { datasetChoice } from '../pipeline/options.js';
import { requireOnnx } from '../pipeline/onnx.js';
import { createTrainedModel } from './predict.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

export async function exportCommand(args: ParsedArgs): Promise<void> {
  const name = args.positionals[1];
  if (!name) throw new UsageError('usage: bevzoo export <model> [--preset p] [--checkpoint f] [--batch-size n] --out model.onnx');
  const plugin = getModelPlugin(name);
  const out = resolve(str(args, 'out'));
  const { compareOutputs, exportOnnx, OnnxSession } = await requireOnnx('bevzoo export');
  const engine = await initEngine({ log: () => {} });
  const ckpt = optStr(args, 'checkpoint');
  const created = await createTrainedModel(args, name);
  try {
    const data = await prepareDataset(datasetChoice(args, created.preset), log);
    const settings = runSettings(created.config);
    const d = settings.data;
    const batchSize = args.flags['batch-size'] !== undefined ? int(args, 'batch-size', 1) : settings.train.batchSize;
    if (d.virtualPoints) await prepareVirtualPointsFor(data, data.val.slice(0, batchSize), d.sweeps, log); // the traced batch
    const loader = createLoader({
      nusc: data.nusc, sampleTokens: data.val, batchSize, imageSize: d.imageSize, sweeps: d.sweeps, points: d.points, withPrev: d.withPrev,
      virtualPoints: d.virtualPoints, augment: false, shuffle: false,
    });
    const batch = await loader.batch(0, 0);
    const ex = exportOnnx(created.model, batch, {
      name: plugin.name,
      metadata: { preset: created.preset, weights: ckpt ?? 'packaged', batch_size: String(batchSize), package: plugin.package ?? '', version: plugin.version },
      doc: `${plugin.kind} ${plugin.name} (${created.preset}), exported by bevzoo from a trace on ${describeDataset(data)}`,
    });
    const tmp = `${out}.tmp-${process.pid}`;
    writeFileSync(tmp, ex.bytes);
    renameSync(tmp, out);
    const session = await OnnxSession.create(out, { threads: engine.threads, name: plugin.name });
    const cmp = compareOutputs(await session.run(ex.feeds), ex.expected);
    await session.release();
    const worst = cmp.reduce((a, b) => (b.relative > a.relative ? b : a));
    const inputs = ex.inputs.map((i) => `${i.name} [${i.shape.map((n, a) => i.dynamicAxes[a] ?? n).join(', ')}] ${i.dtype}`);
    log(`bevzoo export: ${plugin.kind} ${plugin.name} (${created.preset}, ${ckpt ?? 'packaged weights'}), batch ${batchSize}, traced on ${describeDataset(data)}, backend ${engine.backend}`);
    log(`  inputs: ${inputs.join('; ')}`);
    log(`  outputs: ${ex.outputs.map((o) => o.name).join(', ')}`);
    log(`  ${ex.nodes} nodes, ${ex.initializers} initializers, ${(ex.bytes.length / 1e6).toFixed(2)} MB`);
    log(`  onnxruntime-node vs engine on the traced batch: max |Δ| / scale ${worst.relative.toExponential(2)} (${worst.name})`);
    if (!(worst.relative < 1e-4)) throw new Error(`${plugin.name}: onnxruntime-node's ${worst.name} differs from the engine's by ${worst.relative.toExponential(2)} of its scale (expected < 1e-4); the file is at ${out}`);
    process.stdout.write(`${out}\n`);
  } finally {
    created.model.dispose?.();
  }
}
