/**
 * Cut the image branch (ResNet, FPN, LSS depth net) out of a trained BEVDet checkpoint into the starting-weights file
 * the `small` preset ships (`checkpoints/bevdet-small-image-synth.safetensors`, see the README). The trained run's
 * metadata (config, data, steps, seconds, losses) is kept, and `source` names the checkpoint it came from.
 *
 *   node apps/runner/dist/cli.js train student bevdet --preset small --steps 4000 \
 *     --set depthSupervision.weight=3 --set data.points=true --set train.evalEvery=1000 --out /tmp/pre
 *   npx tsx packages/students/bevdet/scripts/export-image-branch.ts /tmp/pre/model.safetensors \
 *     packages/students/bevdet/checkpoints/bevdet-small-image-synth.safetensors
 */
import { readFileSync } from 'node:fs';
import { parseSafetensors, writeSafetensors, type RawTensor } from '@bevzoo/core';
import { IMAGE_BRANCH_PREFIXES } from '../src/plugin.js';

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  process.stderr.write('usage: export-image-branch.ts <trained model.safetensors> <out.safetensors>\n');
  process.exit(2);
}
const { tensors, metadata } = parseSafetensors(readFileSync(from), from);
const kept: Record<string, RawTensor> = {};
for (const [k, t] of Object.entries(tensors)) if (IMAGE_BRANCH_PREFIXES.some((p) => k.startsWith(p))) kept[k] = t;
if (Object.keys(kept).length === 0) throw new Error(`${from}: no tensor starts with ${IMAGE_BRANCH_PREFIXES.join(', ')}; is it a BEVDet checkpoint?`);
await writeSafetensors(to, kept, { ...metadata, source: from, prefixes: IMAGE_BRANCH_PREFIXES.join(',') });
process.stdout.write(`${to}: ${Object.keys(kept).length} of ${Object.keys(tensors).length} tensors (${IMAGE_BRANCH_PREFIXES.join(', ')})\n`);
