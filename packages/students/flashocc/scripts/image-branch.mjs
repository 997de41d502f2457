// Makes checkpoints/flashocc-small-image-synth.safetensors: @bevzoo/student-bevdet's starting weights for `small`
// (its image branch: img_backbone.*, img_neck.*, img_view_transformer.*), which fit FlashOcc small tensor for tensor,
// with their metadata and where they came from. Run from the repository root after a build:
//   node packages/students/flashocc/scripts/image-branch.mjs
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, writeSafetensors } from '@bevzoo/core';

const src = fileURLToPath(new URL('../../bevdet/checkpoints/bevdet-small-image-synth.safetensors', import.meta.url));
const out = fileURLToPath(new URL('../checkpoints/flashocc-small-image-synth.safetensors', import.meta.url));
const prefixes = ['img_backbone.', 'img_neck.', 'img_view_transformer.'];
const { tensors, metadata } = parseSafetensors(readFileSync(src), src);
const kept = Object.fromEntries(Object.entries(tensors).filter(([k]) => prefixes.some((p) => k.startsWith(p))));
await writeSafetensors(out, kept, { ...metadata, derived_from: 'bevdet-small-image-synth.safetensors (@bevzoo/student-bevdet): its image branch, unchanged' });
console.log(`${out}: ${Object.keys(kept).length} tensors of ${Object.keys(tensors).length}`);
