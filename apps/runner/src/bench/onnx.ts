/**
 * `pnpm bench:onnx`: milliseconds per forward (evaluation mode, outputs read back) of each model on the default
 * engine against onnxruntime-node (CPU execution provider, the same threads), measured in one run on the same real
 * batches of the synthetic dataset. A model's ONNX forward includes what the engine's does on the host (CenterPoint:
 * cutting the pillars, `captureFeeds`), so that both columns are what a frozen teacher costs a training step.
 *
 *   node apps/runner/dist/bench-onnx.js [--models centerpoint] [--preset small] [--steps 5] [--warmup 2]
 *     [--threads n] [--data-preset tiny] [--data-dir .bevzoo/data] [--plugin <pkg or path>]
 *
 * Models without packaged weights for the preset run with their initial weights (timing does not depend on them).
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createModel, runSettings, type ForwardOutput, type TaskModel } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import { createLoader, type Batch } from '@bevzoo/nuscenes';
import { captureFeeds, compareOutputs, exportOnnx, OnnxSession } from '@bevzoo/onnx';
import { loadPlugins } from '../discover.js';
import { prepareDataset, prepareVirtualPointsFor } from '../pipeline/dataset.js';

const USAGE = `usage: node apps/runner/dist/bench-onnx.js [options]   (pnpm bench:onnx [options])
  --models a,b        models to time (default centerpoint)
  --preset <p>        preset of each model (default small); packaged weights where the model ships them
  --steps <n>         timed forwards per column (default 5); medians are reported
  --warmup <n>        untimed forwards first (default 2)
  --threads <n>       engine threads and onnxruntime's intra-op threads (default: the engine's)
  --data-preset <p>   synthetic dataset preset of the batches (default tiny)
  --data-dir <dir>    where the synthetic dataset is kept (default .bevzoo/data)
  --plugin <p>        extra plugin package or path (repeatable)
`;

function parse() {
  try {
    return parseArgs({
      options: {
        models: { type: 'string', default: 'centerpoint' },
        preset: { type: 'string', default: 'small' },
        steps: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '2' },
        threads: { type: 'string' },
        'data-preset': { type: 'string', default: 'tiny' },
        'data-dir': { type: 'string' },
        plugin: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`bench:onnx: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const v = parse();
if (v.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<string[][]> {
  const engine = await initEngine({ backend: 'auto', threads: v.threads ? Number(v.threads) : 'auto', log: () => {} });
  const tf = engine.tf;
  await loadPlugins(v.plugin ?? []);
  const data = await prepareDataset({ synthPreset: v['data-preset'], dataDir: v['data-dir'] }, log);
  const steps = Number(v.steps), warmup = Number(v.warmup);
  const rows: string[][] = [];
  log(`bench:onnx — engine ${engine.backend}${engine.kernels ? ` (${engine.kernels} kernels)` : ''}, ${engine.threads} thread(s); onnxruntime-node CPU EP, ${engine.threads} intra-op thread(s); load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (const name of v.models!.split(',').map((s) => s.trim()).filter(Boolean)) {
    const created = await createModel<TaskModel<Batch, unknown>>(name, { preset: v.preset }).catch((e: Error) => {
      throw new Error(`bench:onnx ${name}: ${e.message}`);
    });
    const packaged = created.plugin.checkpoints?.find((c) => c.preset === created.preset);
    created.model.dispose();
    const { model } = await createModel<TaskModel<Batch, unknown>>(name, { preset: v.preset, pretrained: packaged ? true : undefined });
    const d = runSettings(created.config).data;
    if (d.virtualPoints) await prepareVirtualPointsFor(data, data.val, d.sweeps, log);
    const loader = createLoader({
      nusc: data.nusc, sampleTokens: data.val, batchSize: runSettings(created.config).train.batchSize, imageSize: d.imageSize, sweeps: d.sweeps, points: d.points,
      withPrev: d.withPrev, virtualPoints: d.virtualPoints, augment: false, shuffle: false,
    });
    const batches: Batch[] = [];
    for (let i = 0; i < Math.min(loader.numBatches, warmup + steps); i++) batches.push(await loader.batch(0, i));
    const ex = exportOnnx(model, batches[0], { name });
    const session = await OnnxSession.create(ex.bytes, { threads: engine.threads, name });
    const engineRun = (b: Batch) => tf.tidy(() => {
      const out = model.forward(b, { training: false }) as ForwardOutput;
      for (const t of [...Object.values(out.features), ...Object.values(out.outputs)]) t.dataSync();
    });
    const ortRun = async (b: Batch) => session.run(captureFeeds(model, b, ex.inputs, name));
    const te: number[] = [], to: number[] = [];
    for (let i = 0; i < warmup + steps; i++) {
      const b = batches[i % batches.length]!;
      let t0 = performance.now();
      engineRun(b);
      const e = performance.now() - t0;
      t0 = performance.now();
      await ortRun(b);
      const o = performance.now() - t0;
      if (i >= warmup) te.push(e), to.push(o);
    }
    const worst = Math.max(...compareOutputs(await session.run(ex.feeds), ex.expected).map((c) => c.relative));
    await session.release();
    model.dispose();
    const [me, mo] = [median(te), median(to)];
    rows.push([name, created.preset, packaged ? 'packaged' : 'initial', me.toFixed(1), mo.toFixed(1), (me / mo).toFixed(2), worst.toExponential(1)]);
  }
  return rows;
}

function print(rows: string[][]): void {
  const head = ['model', 'preset', 'weights', 'engine ms', 'onnxruntime ms', 'engine / ort', 'max rel. diff'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(w[i]!)).join('  ');
  process.stdout.write(`${[line(head), ...rows.map(line)].join('\n')}\n`);
}

main().then(print, (e: Error) => {
  log(`bench:onnx: ${e.message}`);
  process.exit(1);
});
