/**
 * @bevzoo/engine — tfjs backend selection and the training kernels the wasm backend lacks.
 *
 * Importing this module registers tfjs-core's gradient functions plus ours (tfjs-core alone registers
 * none); `initEngine()` also registers the wasm training kernels and activates a backend.
 */
import { registerTrainingGradients } from './gradients.js';

export { initEngine, type Engine, type EngineBackend, type EngineOptions } from './engine.js';
export { registerWasmTrainingKernels } from './register.js';
export { EngineError } from './errors.js';
export { threadStats, type ThreadsRequest } from './threads.js';

registerTrainingGradients();
