import * as tf from '@tensorflow/tfjs-core';
import { batchMatMulKernel } from './matmul.js';
import { alloc, free, runStock, transposeInto, values, view, type TI, type WasmBackend } from './util.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Parses 'ij,jk->ik' (one or two operands, explicit output, no repeated index in a term, no '...'). */
export function parseEinsum(equation: string, operands: number): { inputs: string[]; output: string } {
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  if (arrow < 0) throw new Error(`einsum: equation '${equation}' has no '->'; an explicit output is required`);
  if (eq.includes('...')) throw new Error(`einsum: '...' is not supported (equation '${equation}')`);
  const inputs = eq.slice(0, arrow).split(',');
  const output = eq.slice(arrow + 2);
  if (inputs.length !== operands) {
    throw new Error(`einsum: equation '${equation}' names ${inputs.length} operands, ${operands} were given`);
  }
  if (operands < 1 || operands > 2) throw new Error(`einsum: 1 or 2 operands are supported, got ${operands}`);
  for (const term of [...inputs, output]) {
    if (!/^[a-zA-Z]*$/.test(term)) throw new Error(`einsum: bad term '${term}' in '${equation}'`);
    if (new Set(term).size !== term.length) throw new Error(`einsum: repeated index in term '${term}' of '${equation}'`);
  }
  for (const c of output) {
    if (!inputs.some((t) => t.includes(c))) throw new Error(`einsum: output index '${c}' of '${equation}' is in no operand`);
  }
  return { inputs, output };
}

/**
 * Einsum as transposes, sums and one batched matmul: indices are sorted into batch (in both operands
 * and the output), contracted (both operands only), and free (one operand and the output).
 */
export function einsumKernel(args: KernelArgs): TI {
  const b = args.backend as WasmBackend;
  const equation = (args.attrs as unknown as { equation: string }).equation;
  const tensors = Object.values(args.inputs) as TI[];
  const { inputs, output } = parseEinsum(equation, tensors.length);
  const sizes = new Map<string, number>();
  inputs.forEach((term, k) => {
    if (tensors[k].shape.length !== term.length) {
      throw new Error(`einsum: operand ${k} has rank ${tensors[k].shape.length}, term '${term}' needs ${term.length}`);
    }
    [...term].forEach((c, i) => {
      const d = tensors[k].shape[i];
      const prev = sizes.get(c);
      if (prev != null && prev !== d) throw new Error(`einsum: index '${c}' has sizes ${prev} and ${d} in '${equation}'`);
      sizes.set(c, d);
    });
  });
  const temps: TI[] = [];
  // Sum away indices that appear in one operand only and not in the output.
  const reduced = inputs.map((term, k) => {
    const others = inputs.filter((_, j) => j !== k).join('') + output;
    const axes = [...term].map((c, i) => (others.includes(c) ? -1 : i)).filter((i) => i >= 0);
    if (axes.length === 0) return { term, t: tensors[k] };
    const t = runStock('Sum', b, { x: tensors[k] }, { axis: axes, keepDims: false });
    temps.push(t);
    return { term: [...term].filter((_, i) => !axes.includes(i)).join(''), t };
  });
  let result: TI;
  let resultTerm: string;
  if (reduced.length === 1) {
    result = reduced[0].t;
    resultTerm = reduced[0].term;
  } else {
    const [A, B] = reduced;
    const batch = [...A.term].filter((c) => B.term.includes(c) && output.includes(c));
    const contracted = [...A.term].filter((c) => B.term.includes(c) && !output.includes(c));
    const aFree = [...A.term].filter((c) => !B.term.includes(c));
    const bFree = [...B.term].filter((c) => !A.term.includes(c));
    const prod = (cs: string[]) => cs.reduce((acc, c) => acc * sizes.get(c)!, 1);
    const [nb, m, k, n] = [prod(batch), prod(aFree), prod(contracted), prod(bFree)];
    const a3 = permuted(b, A.t, A.term, [...batch, ...aFree, ...contracted].join(''), temps);
    const b3 = permuted(b, B.t, B.term, [...batch, ...contracted, ...bFree].join(''), temps);
    result = batchMatMulKernel({
      inputs: { a: view(a3, [nb, m, k]), b: view(b3, [nb, k, n]) },
      backend: b,
      attrs: { transposeA: false, transposeB: false },
    });
    result.shape = [...batch, ...aFree, ...bFree].map((c) => sizes.get(c)!);
    resultTerm = [...batch, ...aFree, ...bFree].join('');
    temps.push(result);
  }
  const final = permuted(b, result, resultTerm, output, []);
  for (const t of temps) if (t !== final) free(b, t);
  if (final === tensors[0] || final === tensors[1]) {
    // Identity equation: hand back a new reference to the same data.
    b.incRef(final.dataId);
    return { dataId: final.dataId, shape: final.shape, dtype: final.dtype };
  }
  return final;
}

/** `t` (indexed by `from`) with its axes reordered to `to`; a new tensor unless already in order. */
function permuted(b: WasmBackend, t: TI, from: string, to: string, temps: TI[]): TI {
  if (from === to) return t;
  const perm = [...to].map((c) => from.indexOf(c));
  const out = alloc(b, perm.map((p) => t.shape[p]), t.dtype);
  transposeInto(values(b, t), t.shape, perm, values(b, out));
  temps.push(out);
  return out;
}
