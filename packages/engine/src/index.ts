/**
 * @bevzoo/engine — tfjs backend selection and the training kernels the wasm backend lacks.
 *
 * Importing this module registers tfjs-core's gradient functions plus ours (tfjs-core alone registers
 * none); `initEngine()` also registers the wasm training kernels and activates a backend.
 */
import { registerTrainingGradients } from './gradients.js';

export { initEngine, KERNELS, type Engine, type EngineBackend, type EngineOptions, type KernelsRequest } from './engine.js';
export { ADAMW, BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD, BEV_POOL, BEV_POOL_GRAD, MS_DEFORM_ATTN, MS_DEFORM_ATTN_GRAD, RELU_GRAD, type AdamWAttrs } from './fused.js';
export { loadNative, nativeAddonPath, useNativeKernels, NATIVE_KERNEL_NAMES } from './native.js';
export { registerWasmTrainingKernels } from './register.js';
export { EngineError } from './errors.js';
export { threadStats, type ThreadsRequest } from './threads.js';
export { findTorchPython, TORCH_ALLOCATORS, torchEnv, type TorchAllocator } from './torch.js';

registerTrainingGradients();
