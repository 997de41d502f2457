import * as tf from '@tensorflow/tfjs-core';
// The stock kernels must be registered before we replace some of them.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { FUSED_KERNELS, registerFusedKernels } from './fused.js';
import { registerTrainingGradients } from './gradients.js';
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel, conv2DKernel } from './wasm/conv2d.js';
import { conv3dBackpropFilterKernel, conv3dBackpropInputKernel, conv3dKernel } from './wasm/conv3d.js';
import { depthwiseBackpropFilterKernel, depthwiseBackpropInputKernel } from './wasm/depthwise.js';
import { einsumKernel } from './wasm/einsum.js';
import { batchMatMulKernel, transposeKernel } from './wasm/matmul.js';
import { avgPoolGradKernel, maxPoolGradKernel, resizeBilinearGradKernel } from './wasm/portable.js';
import { unsortedSegmentSumKernel } from './wasm/segment.js';
import { BINARY_KERNELS } from './wasm/binary.js';
import { rememberStock, runStock, type WasmBackend } from './wasm/util.js';

type Fn = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | tf.TensorInfo[];

/** What we register for the wasm backend, and why. */
export const WASM_KERNELS: { name: string; fn: Fn; why: 'missing' | 'wrong' | 'slow' | 'threads' }[] = [
  { name: tf.Conv2D, fn: conv2DKernel, why: 'threads' },
  { name: tf.Conv2DBackpropFilter, fn: conv2DBackpropFilterKernel, why: 'missing' },
  { name: tf.Conv2DBackpropInput, fn: conv2DBackpropInputKernel, why: 'slow' },
  { name: tf.DepthwiseConv2dNativeBackpropFilter, fn: depthwiseBackpropFilterKernel, why: 'missing' },
  { name: tf.DepthwiseConv2dNativeBackpropInput, fn: depthwiseBackpropInputKernel, why: 'missing' },
  { name: tf.UnsortedSegmentSum, fn: unsortedSegmentSumKernel, why: 'missing' },
  { name: tf.Einsum, fn: einsumKernel, why: 'missing' },
  { name: tf.Conv3D, fn: conv3dKernel, why: 'slow' },
  { name: tf.Conv3DBackpropFilterV2, fn: conv3dBackpropFilterKernel, why: 'wrong' },
  { name: tf.Conv3DBackpropInputV2, fn: conv3dBackpropInputKernel, why: 'wrong' },
  { name: tf.MaxPoolGrad, fn: maxPoolGradKernel, why: 'wrong' },
  { name: tf.AvgPoolGrad, fn: avgPoolGradKernel, why: 'wrong' },
  { name: tf.ResizeBilinearGrad, fn: resizeBilinearGradKernel, why: 'wrong' },
  { name: tf.BatchMatMul, fn: batchMatMulKernel, why: 'slow' },
  { name: tf.Transpose, fn: transposeKernel, why: 'slow' },
  // The stock kernel, through runStock's guard of XNNPACK's packed-weight cache (keyed by b's data, not its shape).
  { name: tf._FusedMatMul, fn: (args) => runStock(tf._FusedMatMul, args.backend as WasmBackend, args.inputs, args.attrs), why: 'wrong' },
  // Past 6 dimensions the stock kernels return garbage (wasm/binary.ts).
  ...BINARY_KERNELS.map(([name, fn]) => ({ name, fn, why: 'wrong' as const })),
];

/** Stock cpu kernels whose results disagree with their forward op; the same JS kernels fix them. */
export const CPU_KERNELS: { name: string; fn: Fn }[] = [
  { name: tf.AvgPoolGrad, fn: avgPoolGradKernel },
  { name: tf.ResizeBilinearGrad, fn: resizeBilinearGradKernel },
];

/** Puts `fn` in place of the kernel `name` of a backend, keeping the setup and dispose functions registered there. */
export function install(name: string, backendName: string, fn: Fn): void {
  const current = tf.getKernel(name, backendName);
  if (current?.kernelFunc === (fn as unknown)) return;
  // Keep the stock setupFunc: it binds the wasm functions that the stock kernelFunc (still called by
  // ours as a fallback or building block) needs when the backend initialises later.
  const setupFunc = current?.setupFunc;
  const disposeFunc = current?.disposeFunc;
  if (current != null) tf.unregisterKernel(name, backendName);
  tf.registerKernel({ kernelName: name, backendName, kernelFunc: fn as unknown as tf.KernelFunc, setupFunc, disposeFunc });
}

/**
 * Registers, for the wasm backend, the training kernels it lacks or gets wrong, plus the gradient
 * functions (tfjs-core's and ours). Idempotent; call before or after the backend is initialised.
 * Returns the names of the wasm kernels now provided by this package.
 */
export function registerWasmTrainingKernels(): string[] {
  registerTrainingGradients();
  // Remember every stock kernel we replace or call before touching the registry.
  for (const k of WASM_KERNELS) rememberStock(k.name);
  for (const name of ['Conv2D', 'DepthwiseConv2dNative', 'Sum', 'Reshape']) rememberStock(name);
  for (const k of WASM_KERNELS) install(k.name, 'wasm', k.fn);
  registerFusedKernels('wasm');
  return [...WASM_KERNELS.map((k) => k.name), ...FUSED_KERNELS.map(([name]) => name)];
}

/** Registers the corrected cpu kernels (AvgPoolGrad, ResizeBilinearGrad) and the fused ones (fused.ts). Idempotent. */
export function registerCpuKernelFixes(): void {
  registerTrainingGradients();
  for (const k of CPU_KERNELS) install(k.name, 'cpu', k.fn);
  registerFusedKernels('cpu');
}
