// Makes checkpoints/bevformer-small-image-synth.safetensors: the img_backbone.* tensors of @bevzoo/student-bevdet's
// starting weights for `small` (the same ResNet as BEVFormer small's), with their metadata and where they came from.
// Run from the repository root after a build: node packages/students/bevformer/scripts/image-branch.mjs
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, writeSafetensors } from '@bevzoo/core';

const src = fileURLToPath(new URL('../../bevdet/checkpoints/bevdet-small-image-synth.safetensors', import.meta.url));
const out = fileURLToPath(new URL('../checkpoints/bevformer-small-image-synth.safetensors', import.meta.url));
const { tensors, metadata } = parseSafetensors(readFileSync(src), src);
const kept = Object.fromEntries(Object.entries(tensors).filter(([k]) => k.startsWith('img_backbone.')));
await writeSafetensors(out, kept, { ...metadata, derived_from: 'bevdet-small-image-synth.safetensors (@bevzoo/student-bevdet): its img_backbone.* tensors' });
console.log(`${out}: ${Object.keys(kept).length} tensors of ${Object.keys(tensors).length}`);
