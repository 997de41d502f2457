import * as tf from '@tensorflow/tfjs-core';
import { EngineError } from '../errors.js';
import { runStock, type TI, type WasmBackend } from './util.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/**
 * The shapes of a NumPy-broadcast elementwise op with adjacent axes merged where both operands treat them alike (each
 * operand either spans all of them or is broadcast along all of them), and unit axes dropped: the same row-major
 * data in the fewest axes. `out.at(-1)` is the length of the innermost run a loop over them gets.
 */
export function collapseBroadcast(aShape: readonly number[], bShape: readonly number[]): { a: number[]; b: number[]; out: number[] } {
  const rank = Math.max(aShape.length, bShape.length);
  const pa = [...Array<number>(rank - aShape.length).fill(1), ...aShape];
  const pb = [...Array<number>(rank - bShape.length).fill(1), ...bShape];
  const r = { a: [] as number[], b: [] as number[], out: [] as number[] };
  let last = '';
  for (let i = 0; i < rank; i++) {
    const d = Math.max(pa[i]!, pb[i]!);
    if (d === 1) continue;
    const kind = `${pa[i] === d ? 1 : 0}${pb[i] === d ? 1 : 0}`;
    if (kind === last) {
      const k = r.out.length - 1;
      r.out[k] = r.out[k]! * d;
      if (pa[i] === d) r.a[k] = r.a[k]! * d;
      if (pb[i] === d) r.b[k] = r.b[k]! * d;
    } else {
      r.out.push(d);
      r.a.push(pa[i]!);
      r.b.push(pb[i]!);
      last = kind;
    }
  }
  if (!r.out.length) return { a: [1], b: [1], out: [1] };
  return r;
}

/** XNNPACK's elementwise operators take at most this many dimensions. */
const XNN_MAX_DIMS = 6;

/**
 * The stock wasm kernels of the broadcasting ops that run on XNNPACK's n-d operators return garbage past 6 dimensions
 * (tfjs-backend-wasm 4.22 logs "XNN status for xnn_setup_*_nd_f32 is not successful" and leaves the output unwritten:
 * BEVFormer's [B·N, queries, heads, levels, points/Z, Z, 2] sampling offsets). These run the stock kernel on the
 * collapsed shapes (collapseBroadcast: the same data in at most as many axes) and give the result the full shape.
 */
function collapsedBinary(name: string, keys: [string, string]) {
  return (args: KernelArgs): TI => {
    const b = args.backend as WasmBackend;
    const x = args.inputs[keys[0]]!, y = args.inputs[keys[1]]!;
    const shape = tf.backend_util.assertAndGetBroadcastShape(x.shape, y.shape);
    if (shape.length <= XNN_MAX_DIMS) return runStock(name, b, args.inputs, args.attrs);
    const d = collapseBroadcast(x.shape, y.shape);
    if (d.out.length > XNN_MAX_DIMS)
      throw new EngineError(`${name}: [${x.shape}] and [${y.shape}] broadcast in ${d.out.length} groups of axes; the wasm kernel takes at most ${XNN_MAX_DIMS}`, { expected: `at most ${XNN_MAX_DIMS} axes after merging`, found: `[${d.out}]`, where: `wasm ${name}` });
    const out = runStock(name, b, { ...args.inputs, [keys[0]]: { ...x, shape: d.a }, [keys[1]]: { ...y, shape: d.b } }, args.attrs);
    return { ...out, shape };
  };
}

/** The stock wasm kernels that fail past 6 dimensions, fixed (register.ts installs them, native.ts falls back to them). */
export const BINARY_KERNELS: [string, (args: KernelArgs) => TI][] = [
  [tf.Add, collapsedBinary(tf.Add, ['a', 'b'])],
  [tf.Sub, collapsedBinary(tf.Sub, ['a', 'b'])],
  [tf.Multiply, collapsedBinary(tf.Multiply, ['a', 'b'])],
  [tf.RealDiv, collapsedBinary(tf.RealDiv, ['a', 'b'])],
  [tf.SquaredDifference, collapsedBinary(tf.SquaredDifference, ['a', 'b'])],
  [tf.Prelu, collapsedBinary(tf.Prelu, ['x', 'alpha'])],
];
