import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers no gradient by itself: this module (bundled into dist) registers them all.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel } from './wasm/conv2d.js';
import { depthwiseBackpropFilterKernel, depthwiseBackpropInputKernel } from './wasm/depthwise.js';

/**
 * Gradients tfjs-core lacks or gets wrong, registered globally (they hold for every backend):
 * - Conv2D, DepthwiseConv2dNative: dilations > 1 (core asserts dilation 1).
 * - Conv3DBackpropInputV2 (conv3dTranspose), GatherNd, ScatterNd, StridedSlice, Einsum, TopK: none in core.
 * - MirrorPad: core's gradient drops the contributions of the mirrored borders.
 * - BatchMatMul: core's gradient does not sum over broadcast batch dimensions.
 * - Cumsum: core's gradient transposes the result when the axis is not the last one.
 * - FusedBatchNorm (tf.batchNorm): core's gradient assumes a rank-4 input.
 * - Comparisons and logical ops (Greater, Less, Equal, ...): zero gradients, so that a mask built
 *   from a trainable tensor (tf.where(tf.greater(x, 0), ...)) does not stop backpropagation.
 */

import { reluGrad } from './fused.js';

type Grad = tf.GradConfig;
type T = tf.Tensor;

function run(kernel: string, inputs: tf.NamedTensorMap, attrs: object): T {
  return tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as T;
}

function pair(v: number | number[] | undefined): [number, number] {
  if (v == null) return [1, 1];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function activeKernelIs(name: string, fn: unknown): boolean {
  const backend = tf.getBackend();
  return backend === 'wasm' && tf.getKernel(name, backend)?.kernelFunc === fn;
}

/** True when the active backend runs our conv kernels, which take a `dilations` attr. */
function dilationAwareBackend(): boolean {
  return (
    activeKernelIs(tf.Conv2DBackpropFilter, conv2DBackpropFilterKernel) &&
    activeKernelIs(tf.Conv2DBackpropInput, conv2DBackpropInputKernel)
  );
}

/** True when the active backend runs our depthwise backprop kernels (which honour dilations). */
function depthwiseKernelsAreOurs(): boolean {
  return (
    activeKernelIs(tf.DepthwiseConv2dNativeBackpropFilter, depthwiseBackpropFilterKernel) &&
    activeKernelIs(tf.DepthwiseConv2dNativeBackpropInput, depthwiseBackpropInputKernel)
  );
}

type ConvAttrs = {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

const conv2dGrad: Grad = {
  kernelName: tf.Conv2D,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const a = attrs as unknown as ConvAttrs;
    const dil = pair(a.dilations);
    const base = { strides: a.strides, pad: a.pad, dataFormat: a.dataFormat, dimRoundingMode: a.dimRoundingMode };
    if (dil[0] === 1 && dil[1] === 1) {
      return {
        x: () => run(tf.Conv2DBackpropInput, { dy: dy as T, filter }, { ...base, inputShape: x.shape }),
        filter: () => run(tf.Conv2DBackpropFilter, { x, dy: dy as T }, { ...base, filterShape: filter.shape }),
      };
    }
    if (dilationAwareBackend()) {
      return {
        x: () => run(tf.Conv2DBackpropInput, { dy: dy as T, filter }, { ...base, dilations: dil, inputShape: x.shape }),
        filter: () => run(tf.Conv2DBackpropFilter, { x, dy: dy as T }, { ...base, dilations: dil, filterShape: filter.shape }),
      };
    }
    return {
      x: () => dilatedInputGrad(x.shape, dy as tf.Tensor4D, filter, a, dil),
      filter: () => dilatedFilterGrad(x, dy as tf.Tensor4D, filter.shape, a, dil),
    };
  },
};

const toNHWC = (t: tf.Tensor4D, f: 'NHWC' | 'NCHW') => (f === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t);

/** dx of a dilated (stride-1) conv on any backend: conv of dy with the flipped, in/out-swapped filter. */
function dilatedInputGrad(xShape: number[], dy: tf.Tensor4D, filter: tf.Tensor4D, a: ConvAttrs, dil: [number, number]): T {
  const nhwc = a.dataFormat === 'NCHW' ? [xShape[0], xShape[2], xShape[3], xShape[1]] : xShape;
  const info = tf.backend_util.computeConv2DInfo(
    nhwc as [number, number, number, number],
    filter.shape,
    a.strides,
    dil,
    a.pad,
    a.dimRoundingMode,
  );
  const pads = [
    info.effectiveFilterHeight - 1 - info.padInfo.top,
    info.effectiveFilterHeight - 1 - info.padInfo.bottom,
    info.effectiveFilterWidth - 1 - info.padInfo.left,
    info.effectiveFilterWidth - 1 - info.padInfo.right,
  ];
  let g = toNHWC(dy, a.dataFormat);
  // A negative pad crops dy instead.
  const [oh, ow] = [g.shape[1], g.shape[2]];
  const crop = pads.map((p) => Math.max(0, -p));
  if (crop.some((c) => c > 0)) {
    g = tf.slice(g, [0, crop[0], crop[2], 0], [-1, oh - crop[0] - crop[1], ow - crop[2] - crop[3], -1]);
  }
  const p = pads.map((v) => Math.max(0, v));
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  const dx = tf.conv2d(
    g,
    flipped,
    1,
    [
      [0, 0],
      [p[0], p[1]],
      [p[2], p[3]],
      [0, 0],
    ],
    'NHWC',
    dil,
  );
  return a.dataFormat === 'NCHW' ? tf.transpose(dx, [0, 3, 1, 2]) : dx;
}

/** dW of a dilated (stride-1) conv on any backend: the gradient of the zero-dilated filter, subsampled. */
function dilatedFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], a: ConvAttrs, dil: [number, number]): T {
  const [kh, kw, ci, co] = filterShape;
  const eh = (kh - 1) * dil[0] + 1;
  const ew = (kw - 1) * dil[1] + 1;
  const full = run(
    tf.Conv2DBackpropFilter,
    { x, dy },
    { strides: a.strides, pad: a.pad, dataFormat: a.dataFormat, dimRoundingMode: a.dimRoundingMode, filterShape: [eh, ew, ci, co] },
  );
  return tf.stridedSlice(full, [0, 0, 0, 0], [eh, ew, ci, co], [dil[0], dil[1], 1, 1]);
}

/** The filter with dilation − 1 zeros between taps: [(kh−1)·dh+1, (kw−1)·dw+1, ...]. */
function dilateFilter(filter: T, dil: [number, number]): T {
  const [kh, kw] = filter.shape;
  const rows = placeAlongAxis(filter, 0, 0, dil[0], (kh - 1) * dil[0] + 1);
  return placeAlongAxis(rows, 1, 0, dil[1], (kw - 1) * dil[1] + 1);
}

const depthwiseGrad: Grad = {
  kernelName: tf.DepthwiseConv2dNative,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const a = attrs as unknown as ConvAttrs;
    const dil = pair(a.dilations);
    const st = pair(a.strides);
    if (!((dil[0] === 1 && dil[1] === 1) || (st[0] === 1 && st[1] === 1))) {
      throw new Error(`Error in gradient of depthwiseConv2d: either strides or dilations must be 1, got strides ${st} and dilations ${dil}`);
    }
    const base = { strides: a.strides, pad: a.pad, dimRoundingMode: a.dimRoundingMode };
    if ((dil[0] === 1 && dil[1] === 1) || depthwiseKernelsAreOurs()) {
      return {
        x: () => run(tf.DepthwiseConv2dNativeBackpropInput, { dy: dy as T, filter }, { ...base, dilations: dil, inputShape: x.shape }),
        filter: () =>
          run(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy: dy as T }, { ...base, dilations: dil, filterShape: filter.shape }),
      };
    }
    // Other backends' depthwise backprop kernels ignore dilations: use the zero-dilated filter.
    return {
      x: () =>
        run(
          tf.DepthwiseConv2dNativeBackpropInput,
          { dy: dy as T, filter: dilateFilter(filter, dil) },
          { ...base, dilations: [1, 1], inputShape: x.shape },
        ),
      filter: () => {
        const [kh, kw, c, m] = filter.shape;
        const full = [(kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1, c, m];
        const g = run(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy: dy as T }, { ...base, dilations: [1, 1], filterShape: full });
        return tf.stridedSlice(g, [0, 0, 0, 0], full, [dil[0], dil[1], 1, 1]);
      },
    };
  },
};

/** Gradient of conv3dTranspose (kernel Conv3DBackpropInputV2), absent from tfjs-core. */
const conv3dBackpropInputGrad: Grad = {
  kernelName: tf.Conv3DBackpropInputV2,
  inputsToSave: ['dy', 'filter'],
  gradFunc: (ddx, saved, attrs) => {
    const [dy, filter] = saved as [tf.Tensor5D, tf.Tensor5D];
    const a = attrs as unknown as { strides: [number, number, number]; pad: 'valid' | 'same' };
    return {
      dy: () => tf.conv3d(ddx as tf.Tensor5D, filter, a.strides, a.pad),
      filter: () =>
        run(tf.Conv3DBackpropFilterV2, { x: ddx as T, dy }, { strides: a.strides, pad: a.pad, filterShape: filter.shape }),
    };
  },
};

const gatherNdGrad: Grad = {
  kernelName: tf.GatherNd,
  inputsToSave: ['params', 'indices'],
  gradFunc: (dy, saved) => {
    const [params, indices] = saved;
    return {
      params: () => tf.scatterND(indices, dy as T, params.shape),
      indices: () => tf.zerosLike(indices),
    };
  },
};

const scatterNdGrad: Grad = {
  kernelName: tf.ScatterNd,
  inputsToSave: ['indices'],
  gradFunc: (dy, saved) => {
    const [indices] = saved;
    return {
      indices: () => tf.zerosLike(indices),
      updates: () => tf.gatherND(dy as T, indices),
    };
  },
};

/** Places `t` along `axis` at positions start + k·step (k < t.shape[axis]) of a zero axis of length `size`. */
function placeAlongAxis(t: T, axis: number, start: number, step: number, size: number): T {
  const count = t.shape[axis];
  let g = t;
  let first = start;
  if (step < 0) {
    g = tf.reverse(g, axis);
    first = start + (count - 1) * step;
    step = -step;
  }
  if (step > 1 && count > 1) {
    // Interleave step − 1 zeros after each element, then drop the trailing ones.
    const expanded = tf.expandDims(g, axis + 1);
    const pads = expanded.shape.map((_, i) => (i === axis + 1 ? [0, step - 1] : [0, 0])) as [number, number][];
    const padded = tf.pad(expanded, pads);
    const shape = g.shape.slice();
    shape[axis] = count * step;
    const merged = tf.reshape(padded, shape);
    const keep = shape.slice();
    keep[axis] = (count - 1) * step + 1;
    g = tf.slice(merged, new Array<number>(shape.length).fill(0), keep);
  }
  const len = g.shape[axis];
  const pads = g.shape.map((_, i) => (i === axis ? [first, size - first - len] : [0, 0])) as [number, number][];
  return tf.pad(g, pads);
}

const stridedSliceGrad: Grad = {
  kernelName: tf.StridedSlice,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const a = attrs as unknown as {
      begin: number[];
      end: number[];
      strides: number[];
      beginMask: number;
      endMask: number;
      ellipsisMask: number;
      newAxisMask: number;
      shrinkAxisMask: number;
    };
    return {
      x: () => {
        const info = tf.slice_util.sliceInfo(
          x.shape,
          a.begin,
          a.end,
          a.strides,
          a.beginMask,
          a.endMask,
          a.ellipsisMask,
          a.newAxisMask,
          a.shrinkAxisMask,
        );
        // Extent of the slice along every axis of x (shrunk axes count 1, new axes are dropped).
        const counts = x.shape.map((_, i) => {
          const interval = info.end[i] - info.begin[i];
          const s = info.strides[i];
          if (interval === 0 || interval < 0 !== s < 0) return 0;
          return Math.trunc(interval / s) + (interval % s !== 0 ? 1 : 0);
        });
        if (counts.some((c) => c === 0)) return tf.zerosLike(x);
        let g = tf.reshape(dy as T, counts);
        for (let i = 0; i < x.shape.length; i++) {
          if (counts[i] === x.shape[i] && info.strides[i] === 1 && info.begin[i] === 0) continue;
          g = placeAlongAxis(g, i, info.begin[i], info.strides[i], x.shape[i]);
        }
        return g;
      },
    };
  },
};

/** Same parsing rules as our Einsum kernel. */
function einsumTerms(equation: string): { inputs: string[]; output: string } {
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  return { inputs: eq.slice(0, arrow).split(','), output: eq.slice(arrow + 2) };
}

const einsumGrad: Grad = {
  kernelName: tf.Einsum,
  saveAllInputs: true,
  gradFunc: (dy, saved, attrs) => {
    const { inputs, output } = einsumTerms((attrs as unknown as { equation: string }).equation);
    const grads: Record<string, () => T> = {};
    inputs.forEach((term, k) => {
      grads[String(k)] = () => {
        const others = inputs.filter((_, j) => j !== k);
        const otherTensors = saved.filter((_, j) => j !== k);
        const visible = [...term].filter((c) => output.includes(c) || others.some((o) => o.includes(c))).join('');
        // ∂/∂operand_k = einsum(output, others → visible indices of k); a scalar dy multiplies instead.
        const terms = output === '' ? others : [output, ...others];
        const operands = output === '' ? otherTensors : [dy as T, ...otherTensors];
        let g: T;
        if (operands.length === 0) g = dy as T;
        else if (operands.length === 1 && terms[0] === visible) g = operands[0];
        else g = tf.einsum(`${terms.join(',')}->${visible}`, ...operands);
        if (output === '' && operands.length > 0) g = tf.mul(g, dy as T);
        if (visible === term) return g;
        // Indices summed in the forward pass within this operand alone: broadcast back.
        const shape = [...term].map((c, i) => (visible.includes(c) ? saved[k].shape[i] : 1));
        return tf.broadcastTo(tf.reshape(g, shape), saved[k].shape);
      };
    });
    return grads;
  },
};

const topkGrad: Grad = {
  kernelName: tf.TopK,
  inputsToSave: ['x'],
  outputsToSave: [false, true],
  gradFunc: (dys, saved) => {
    const [x, indices] = saved;
    const dValues = (Array.isArray(dys) ? dys[0] : dys) as T;
    return {
      x: () => {
        const n = x.shape[x.shape.length - 1];
        const k = indices.shape[indices.shape.length - 1];
        const rows = x.size / Math.max(n, 1);
        const offsets = tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(n, 'int32'));
        const flat = tf.add(tf.reshape(indices, [rows, k]), tf.reshape(offsets, [rows, 1]));
        const scattered = tf.scatterND(tf.reshape(flat, [rows * k, 1]), tf.reshape(dValues, [rows * k]), [rows * n]);
        return tf.reshape(scattered, x.shape);
      },
    };
  },
};

const mirrorPadGrad: Grad = {
  kernelName: tf.MirrorPad,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const { paddings, mode } = attrs as unknown as { paddings: [number, number][]; mode: 'reflect' | 'symmetric' };
    return {
      x: () => {
        const off = mode === 'reflect' ? 1 : 0;
        let g = dy as T;
        x.shape.forEach((n, axis) => {
          const [before, after] = paddings[axis];
          if (before === 0 && after === 0) return;
          const at = (start: number, len: number) => {
            const begin = g.shape.map((_, i) => (i === axis ? start : 0));
            const size = g.shape.map((d, i) => (i === axis ? len : d));
            return tf.slice(g, begin, size);
          };
          const padAxis = (t: T, lo: number, hi: number) =>
            tf.pad(t, t.shape.map((_, i) => (i === axis ? [lo, hi] : [0, 0])) as [number, number][]);
          let acc = at(before, n);
          if (before > 0) acc = tf.add(acc, padAxis(tf.reverse(at(0, before), axis), off, n - off - before));
          if (after > 0) acc = tf.add(acc, padAxis(tf.reverse(at(before + n, after), axis), n - off - after, off));
          g = acc;
        });
        return g;
      },
    };
  },
};

/** Sums `g` over the axes along which `shape` was broadcast to g's shape, then reshapes to `shape`. */
function reduceTo(g: T, shape: number[]): T {
  const axes = tf.broadcast_util.getReductionAxes(shape, g.shape);
  const summed = axes.length > 0 ? tf.sum(g, axes) : g;
  return tf.reshape(summed, shape);
}

const batchMatMulGrad: Grad = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved;
    const { transposeA: ta, transposeB: tb } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const g = dy as T;
    // Gradients in a's and b's own layouts, with the broadcast batch of dy; then summed down to their shapes.
    const da = () =>
      !ta ? tf.matMul(g, b, false, !tb) : tf.matMul(b, g, tb, true);
    const db = () =>
      !tb ? tf.matMul(a, g, !ta, false) : tf.matMul(g, a, true, ta);
    const batched = (t: T, target: T) => (t.rank > target.rank || t.shape.some((d, i) => d !== target.shape[i]) ? reduceTo(t, target.shape) : t);
    return { a: () => batched(da(), a), b: () => batched(db(), b) };
  },
};

const cumsumGrad: Grad = {
  kernelName: tf.Cumsum,
  gradFunc: (dy, _saved, attrs) => {
    const { axis, exclusive, reverse } = attrs as unknown as { axis: number; exclusive: boolean; reverse: boolean };
    return { x: () => tf.cumsum(dy as T, axis, exclusive, !reverse) };
  },
};

const fusedBatchNormGrad: Grad = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
    const g = dy as T;
    const inv = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
    const gs = scale == null ? g : tf.mul(g, scale);
    const xc = tf.sub(x, mean);
    return {
      x: () => reduceTo(tf.mul(gs, inv), x.shape),
      mean: () => reduceTo(tf.neg(tf.mul(gs, inv)), mean.shape),
      variance: () => reduceTo(tf.mul(tf.mul(gs, xc), tf.mul(tf.pow(inv, tf.scalar(3)), tf.scalar(-0.5))), variance.shape),
      scale: () => reduceTo(tf.mul(g, tf.mul(xc, inv)), scale.shape),
      offset: () => reduceTo(g, mean.shape),
    };
  },
};

/** Ops whose outputs are piecewise constant (bool): their inputs get zero gradients. */
const ZERO_GRAD_KERNELS = [
  tf.Greater,
  tf.Less,
  tf.LessEqual,
  tf.Equal,
  tf.NotEqual,
  tf.LogicalAnd,
  tf.LogicalOr,
  tf.LogicalNot,
  tf.LogicalXor,
];

function zeroGrad(kernelName: string): Grad {
  const unary = kernelName === tf.LogicalNot;
  return {
    kernelName,
    inputsToSave: unary ? ['x'] : ['a', 'b'],
    gradFunc: (_dy, saved): Record<string, () => T> =>
      unary
        ? { x: () => tf.zerosLike(saved[0]) }
        : { a: () => tf.zerosLike(saved[0]), b: () => tf.zerosLike(saved[1]) },
  };
}

/**
 * Registers tfjs-core's gradients (by importing them) plus ours. Idempotent; it re-asserts ours, so
 * a later import of tfjs-core's register_all_gradients is undone by the next initEngine().
 */
export function registerTrainingGradients(): void {
  for (const g of [
    conv2dGrad,
    depthwiseGrad,
    conv3dBackpropInputGrad,
    gatherNdGrad,
    scatterNdGrad,
    stridedSliceGrad,
    einsumGrad,
    topkGrad,
    mirrorPadGrad,
    batchMatMulGrad,
    cumsumGrad,
    fusedBatchNormGrad,
    reluGrad,
  ]) {
    tf.registerGradient(g);
  }
  for (const name of ZERO_GRAD_KERNELS) tf.registerGradient(zeroGrad(name));
}
