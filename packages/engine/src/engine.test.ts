import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { selectBackend, wasmBinaryDir, type ModuleLoader } from './engine.js';
import { EngineError, initEngine, registerWasmTrainingKernels } from './index.js';

/** An error shaped like Node's for a package that is not installed. */
function notFound(name: string): Error {
  return Object.assign(new Error(`Cannot find package '${name}' imported from /somewhere`), { code: 'ERR_MODULE_NOT_FOUND' });
}

describe('initEngine', () => {
  it("'auto' falls through the absent tfjs-node packages to wasm and logs one line saying why", async () => {
    const lines: string[] = [];
    const engine = await initEngine({ log: (l) => lines.push(l) });
    // In this repository tfjs-node is not installed (its install script needs network access).
    expect(engine.backend).toBe('wasm');
    expect(engine.tf.getBackend()).toBe('wasm');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('backend wasm');
    expect(lines[0]).toContain('@tensorflow/tfjs-node-gpu not installed');
    expect(lines[0]).toContain('@tensorflow/tfjs-node not installed');
  });

  it('is idempotent: a second call returns the same engine and re-activates its backend', async () => {
    const a = await initEngine({ backend: 'wasm', log: () => {} });
    await tf.setBackend('cpu');
    const b = await initEngine({ backend: 'wasm', log: () => {} });
    expect(b).toBe(a);
    expect(tf.getBackend()).toBe('wasm');
    expect(registerWasmTrainingKernels()).toEqual(registerWasmTrainingKernels());
  });

  it("re-asserts its gradients, e.g. after someone registered tfjs-core's again", async () => {
    await initEngine({ backend: 'wasm', log: () => {} });
    const ours = tf.getGradient(tf.Cumsum);
    tf.registerGradient({ kernelName: tf.Cumsum, gradFunc: () => ({}) });
    expect(tf.getGradient(tf.Cumsum)).not.toBe(ours);
    await initEngine({ backend: 'wasm', log: () => {} });
    expect(tf.getGradient(tf.Cumsum)).toBe(ours);
  });

  it('registers the kernels the stock wasm backend lacks', async () => {
    await initEngine({ backend: 'wasm', log: () => {} });
    const names = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
    for (const k of ['Conv2DBackpropFilter', 'UnsortedSegmentSum', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'Einsum']) {
      expect(names.has(k)).toBe(true);
    }
  });

  it("asking for 'tensorflow' when @tensorflow/tfjs-node is absent is an EngineError that says how to install it", async () => {
    const err = await initEngine({ backend: 'tensorflow', log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as Error).message).toContain('npm install @tensorflow/tfjs-node');
    expect((err as EngineError).details.found).toContain('not installed');
    await initEngine({ backend: 'wasm', log: () => {} });
  });

  it('finds the .wasm binaries of the installed @tensorflow/tfjs-backend-wasm', () => {
    expect(existsSync(`${wasmBinaryDir()}tfjs-backend-wasm-simd.wasm`)).toBe(true);
  });
});

describe('selectBackend (backend choice with an injected module loader)', () => {
  it('a tfjs-node whose native binary fails to load falls through to wasm, with the reason', async () => {
    const load: ModuleLoader = async (name) => {
      if (name === '@tensorflow/tfjs-node-gpu') throw notFound(name);
      throw new Error('libtensorflow.so.2: cannot open shared object file\nstack...');
    };
    const engine = await selectBackend('auto', load);
    expect(engine.backend).toBe('wasm');
    expect(engine.reason).toContain('@tensorflow/tfjs-node-gpu not installed');
    expect(engine.reason).toContain('@tensorflow/tfjs-node failed to load (libtensorflow.so.2: cannot open shared object file)');
  });

  it("'auto' takes tfjs-node when it loads and registers its 'tensorflow' backend", async () => {
    const { MathBackendCPU } = await import('@tensorflow/tfjs-backend-cpu');
    const load: ModuleLoader = async (name) => {
      if (name === '@tensorflow/tfjs-node-gpu') throw notFound(name);
      // What importing tfjs-node does: register a backend named 'tensorflow'.
      if (tf.findBackendFactory('tensorflow') == null) tf.registerBackend('tensorflow', () => new MathBackendCPU(), 0);
    };
    try {
      const engine = await selectBackend('auto', load);
      expect(engine.backend).toBe('tensorflow');
      expect(tf.getBackend()).toBe('tensorflow');
      expect(engine.reason).toContain('@tensorflow/tfjs-node-gpu not installed');
    } finally {
      tf.removeBackend('tensorflow');
      await tf.setBackend('wasm');
    }
  });

  it('an unknown backend name is an EngineError', async () => {
    await expect(selectBackend('gpu' as never)).rejects.toBeInstanceOf(EngineError);
  });
});
