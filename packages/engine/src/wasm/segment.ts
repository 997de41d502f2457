import * as tf from '@tensorflow/tfjs-core';
import { alloc, sizeOf, values, type TI, type WasmBackend } from './util.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/**
 * UnsortedSegmentSum: out[s, ...] = Σ_{i: ids[i] = s} x[i, ...] in one pass over x (ids outside
 * [0, numSegments) are dropped, as in TensorFlow). The gradient of gather uses it.
 */
export function unsortedSegmentSumKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const { x, segmentIds } = args.inputs as { x: TI; segmentIds: TI };
  const numSegments = (args.attrs as unknown as { numSegments: number }).numSegments;
  const idCount = sizeOf(segmentIds.shape);
  const inner = idCount === 0 ? 0 : sizeOf(x.shape) / idCount;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const dtype = x.dtype === 'int32' ? 'int32' : 'float32';
  const out = alloc(b, outShape, dtype);
  const ov = values(b, out);
  ov.fill(0);
  const xv = values(b, x);
  const ids = values(b, segmentIds);
  for (let i = 0; i < idCount; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const src = i * inner;
    for (let j = 0; j < inner; j++) ov[o + j] += xv[src + j];
  }
  return out;
}
