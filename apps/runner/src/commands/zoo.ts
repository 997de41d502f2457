/**
 * `bevzoo zoo [--markdown]`: the model zoo, generated from the registry: each registered teacher and student, its
 * task and presets, its parameters per preset (counted on a model built at that preset), the weights its package
 * ships (trained weights with their validation metrics, training steps and time; starting weights) — the table the
 * root README holds (between `<!-- zoo:start -->` and `<!-- zoo:end -->`, checked by a test).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createModel, listModels, parseSafetensors, type ModelInfo } from '@bevzoo/core';
import { initEngine } from '@bevzoo/engine';
import type { ParsedArgs } from '../args.js';

/** Parameters (trainable elements; buffers such as BatchNorm statistics left out) of `name` built at `preset`. */
async function parameters(m: ModelInfo, preset: string): Promise<number> {
  const { model } = await createModel(m.name, { kind: m.kind, preset });
  try {
    const withCount = model as unknown as { numParameters?: () => number; stateDict?: () => Record<string, { size: number }> };
    return withCount.numParameters?.() ?? Object.values(withCount.stateDict?.() ?? {}).reduce((a, t) => a + t.size, 0);
  } finally {
    (model as unknown as { dispose?: () => void }).dispose?.();
  }
}

const millions = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`);
const pct = (v: number | undefined) => (v === undefined ? '—' : (100 * v).toFixed(1));
const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The metrics of a packaged checkpoint as its task reads them: mAP / NDS for detection, mIoU for occupancy. */
function metricsText(task: string, m: Readonly<Record<string, number>>): string {
  return task === 'occ' ? `mIoU ${pct(m.miou)}` : `mAP ${pct(m.mean_ap)} / NDS ${pct(m.nd_score)}`;
}

export interface ZooRow {
  model: string;
  kind: string;
  task: string;
  package: string;
  presets: string;
  parameters: string;
  weights: string;
}

/** One row per registered teacher and student (teachers first, then by task and name). */
export async function zooRows(): Promise<ZooRow[]> {
  const models = listModels().sort((a, b) => (a.kind === b.kind ? a.task.localeCompare(b.task) || a.name.localeCompare(b.name) : a.kind === 'teacher' ? -1 : 1));
  const rows: ZooRow[] = [];
  for (const m of models) {
    const counts: string[] = [];
    for (const p of m.presets) counts.push(`${p} ${millions(await parameters(m, p))}`);
    const weights = [
      ...m.checkpoints.map((c) => {
        const md = parseSafetensors(readFileSync(c.file), c.file).metadata;
        const time = md.train_seconds ? `, ${md.train_steps} steps in ${(Number(md.train_seconds) / 60).toFixed(0)} min` : '';
        return `${c.preset}: trained, ${metricsText(m.task, c.metrics)} on ${c.data}${time} (${basename(c.file)})`;
      }),
      ...m.initWeights.map((w) => `${w.preset}: starting weights — ${w.description} (${basename(w.file)})`),
    ];
    rows.push({
      model: m.name, kind: m.kind, task: m.task, package: `${m.package}@${m.version}`,
      presets: m.presets.map((p) => (p === m.defaultPreset ? `${p}*` : p)).join(', '),
      parameters: counts.join(' · '),
      weights: weights.join('; ') || '—',
    });
  }
  return rows;
}

/** The zoo as a markdown table (what the README holds). */
export function zooMarkdown(rows: readonly ZooRow[]): string {
  const head = '| model | kind | task | package | presets (* default) | parameters | packaged weights |\n|---|---|---|---|---|---|---|';
  return [head, ...rows.map((r) => `| ${[r.model, r.kind, r.task, r.package, r.presets, r.parameters, r.weights].map(cell).join(' | ')} |`)].join('\n') + '\n';
}

export async function zooCommand(args: ParsedArgs): Promise<void> {
  await initEngine({ log: () => {} });
  const rows = await zooRows();
  if (!rows.length) {
    process.stdout.write('No teacher or student is registered. Add plugin packages to your project\'s dependencies, or pass --plugin <package or path>.\n');
    return;
  }
  if (args.flags.markdown) {
    process.stdout.write(zooMarkdown(rows));
    return;
  }
  for (const r of rows) {
    process.stdout.write(`${r.model} (${r.kind}, ${r.task}) ${r.package}\n  presets: ${r.presets}\n  parameters: ${r.parameters}\n  weights: ${r.weights.split('; ').join('\n           ')}\n`);
  }
}
