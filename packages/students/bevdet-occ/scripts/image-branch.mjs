// Makes checkpoints/bevdet-occ-small-image-synth.safetensors from @bevzoo/student-bevdet's starting weights for `small`
// (its image branch, trained with LiDAR depth supervision): img_backbone.* and img_neck.* unchanged, and the LSS
// depth net (a 1×1 conv to 49 depth bins, then 32 context channels) cut to the 49 depth outputs and the first 16
// context outputs, the 16 channels BEVDet-Occ small lifts into its volume. Run from the repository root after a build:
//   node packages/students/bevdet-occ/scripts/image-branch.mjs
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, writeSafetensors } from '@bevzoo/core';

const DEPTH_BINS = 49, CONTEXT = 16;
const src = fileURLToPath(new URL('../../bevdet/checkpoints/bevdet-small-image-synth.safetensors', import.meta.url));
const out = fileURLToPath(new URL('../checkpoints/bevdet-occ-small-image-synth.safetensors', import.meta.url));
const { tensors, metadata } = parseSafetensors(readFileSync(src), src);
const kept = {};
for (const [k, t] of Object.entries(tensors)) {
  if (k.startsWith('img_backbone.') || k.startsWith('img_neck.')) kept[k] = t;
  else if (k === 'img_view_transformer.depthnet.weight' || k === 'img_view_transformer.depthnet.bias') {
    const cout = t.shape.at(-1), rows = t.data.length / cout, keep = DEPTH_BINS + CONTEXT; // [1, 1, in, out] or [out]
    if (cout < keep) throw new Error(`${k}: ${cout} outputs, expected at least ${keep}`);
    const data = new Float32Array(rows * keep);
    for (let r = 0; r < rows; r++) data.set(t.data.subarray(r * cout, r * cout + keep), r * keep);
    kept[k] = { dtype: 'float32', shape: [...t.shape.slice(0, -1), keep], data };
  }
}
await writeSafetensors(out, kept, {
  ...metadata,
  derived_from: `bevdet-small-image-synth.safetensors (@bevzoo/student-bevdet): img_backbone.*, img_neck.*, and the depth net's ${DEPTH_BINS} depth and first ${CONTEXT} context outputs`,
});
console.log(`${out}: ${Object.keys(kept).length} tensors of ${Object.keys(tensors).length}`);
