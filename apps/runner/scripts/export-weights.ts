/**
 * Cut the tensors under some name prefixes out of a trained checkpoint into a starting-weights file, as the student
 * packages ship them (`initWeights`): BEVDet's image branch (ResNet, FPN, LSS depth net), BEVDepth's (ResNet, FPN,
 * camera-aware depth net). The trained run's metadata (config, data, steps, seconds, losses) is kept; `source` names
 * the checkpoint it came from and `prefixes` what was kept.
 *
 *   node apps/runner/dist/cli.js train student bevdet --preset small --steps 4000 \
 *     --set depthSupervision.weight=3 --set data.points=true --set train.evalEvery=1000 --out /tmp/pre
 *   npx tsx apps/runner/scripts/export-weights.ts /tmp/pre/model.safetensors \
 *     packages/students/bevdet/checkpoints/bevdet-small-image-synth.safetensors img_backbone. img_neck. img_view_transformer.
 */
import { readFileSync } from 'node:fs';
import { parseSafetensors, writeSafetensors, type RawTensor } from '@bevzoo/core';

const [from, to, ...prefixes] = process.argv.slice(2);
if (!from || !to || !prefixes.length) {
  process.stderr.write('usage: export-weights.ts <trained model.safetensors> <out.safetensors> <name prefix>...\n');
  process.exit(2);
}
const { tensors, metadata } = parseSafetensors(readFileSync(from), from);
const kept: Record<string, RawTensor> = {};
for (const [k, t] of Object.entries(tensors)) if (prefixes.some((p) => k.startsWith(p))) kept[k] = t;
if (Object.keys(kept).length === 0) throw new Error(`${from}: no tensor starts with ${prefixes.join(', ')}`);
await writeSafetensors(to, kept, { ...metadata, source: from, prefixes: prefixes.join(',') });
process.stdout.write(`${to}: ${Object.keys(kept).length} of ${Object.keys(tensors).length} tensors (${prefixes.join(', ')})\n`);
