import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
import { EngineError } from './errors.js';
import { registerTrainingGradients } from './gradients.js';
import { registerCpuKernelFixes, registerWasmTrainingKernels } from './register.js';
import { loadNative, useNativeKernels } from './native.js';
import { configureThreads, resolveThreads, type ThreadsRequest } from './threads.js';

/** A backend to ask for: 'auto' takes the fastest one that loads. */
export type EngineBackend = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu';

/** The engine in use: the tfjs-core namespace (its active backend set) and which backend was taken. */
export interface Engine {
  tf: typeof tf;
  backend: Exclude<EngineBackend, 'auto'>;
  /** Why this backend was taken (also the text of the log line). */
  reason: string;
  /** Threads the kernels use (wasm: 1 + intra-op workers; native: libtorch's intra-op threads); 1 on other backends. */
  threads: number;
  /** Which kernels the wasm backend runs ('native': libtorch through the addon; 'wasm': ours in JS/XNNPACK); null on other backends. */
  kernels: Exclude<KernelsRequest, 'auto'> | null;
  /** Why these kernels (the addon loaded, or why not). */
  kernelsReason: string;
}

/** The kernel path of the wasm backend: 'auto' = native where the addon loads, else wasm. */
export type KernelsRequest = 'auto' | 'native' | 'wasm';
export const KERNELS: readonly KernelsRequest[] = ['auto', 'native', 'wasm'];

export interface EngineOptions {
  backend?: EngineBackend;
  /** Receives one line saying which backend was taken and why. Default: console.error. */
  log?: (line: string) => void;
  /**
   * Threads for the wasm kernels (README, "Threads"): 1 = one thread, no worker; n = n − 1 intra-op
   * workers; 'auto' (default) = the environment variable BEVZOO_THREADS if set, else 2 on a machine
   * with ≥ 2 cores. Ignored by the other backends.
   */
  threads?: ThreadsRequest;
  /**
   * Kernel path of the wasm backend (README, "Native kernels"): 'auto' (default) = the environment variable
   * BEVZOO_KERNELS if set, else native where the addon loads, else wasm. 'native' throws when the addon is missing.
   */
  kernels?: KernelsRequest;
}

/** Loads a package by name (dynamic import); injectable so that the selection logic can be tested. */
export type ModuleLoader = (name: string) => Promise<unknown>;

const NATIVE: Record<'tensorflow' | 'tensorflow-gpu', string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
};

const defaultLoader: ModuleLoader = (name) => import(/* @vite-ignore */ name);

/** Whether `err` says that `pkg` itself is not installed (Node's resolver or a bundler's). */
function isMissing(err: unknown, pkg: string): boolean {
  const msg = String((err as Error)?.message ?? '');
  const namesPkg = msg.includes(`'${pkg}'`) || msg.includes(`"${pkg}"`);
  return namesPkg && /Cannot find (package|module)|Could not resolve|Failed to (resolve|load)/.test(msg);
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].slice(0, 200);
}

function installHint(pkg: string): string {
  return (
    `install it with \`npm install ${pkg}\` (or pnpm add / yarn add); its install script downloads ` +
    `libtensorflow from storage.googleapis.com, so it needs network access and a matching prebuilt binary`
  );
}

/** Tries a tfjs-node flavour; returns null when it works, else why not. */
async function tryNative(kind: 'tensorflow' | 'tensorflow-gpu', load: ModuleLoader): Promise<string | null> {
  const pkg = NATIVE[kind];
  try {
    await load(pkg);
  } catch (err) {
    return isMissing(err, pkg) ? `${pkg} not installed` : `${pkg} failed to load (${firstLine(err)})`;
  }
  try {
    if (await tf.setBackend('tensorflow')) return null;
    return `${pkg} loaded but its 'tensorflow' backend did not initialise`;
  } catch (err) {
    return `${pkg} loaded but its 'tensorflow' backend failed (${firstLine(err)})`;
  }
}

let wasmPathSet = false;

/** Directory of the installed @tensorflow/tfjs-backend-wasm .wasm files (works from sources, ESM and CJS builds). */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkgJson), 'dist') + path.sep;
}

async function tryWasm(): Promise<string | null> {
  registerWasmTrainingKernels();
  if (!wasmPathSet && tf.findBackend('wasm') == null) {
    setWasmPaths(wasmBinaryDir());
    wasmPathSet = true;
  }
  try {
    if (await tf.setBackend('wasm')) return null;
    return 'the wasm backend did not initialise';
  } catch (err) {
    return `the wasm backend failed (${firstLine(err)})`;
  }
}

async function useCpu(): Promise<void> {
  registerCpuKernelFixes();
  await tf.setBackend('cpu');
  // The cpu backend prints a banner recommending tfjs-node on first use; our log line already says why.
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu != null) cpu.firstUse = false;
}

/**
 * The backend selection behind initEngine, with the module loader injectable.
 * 'auto': @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node, then wasm (+ our kernels), then cpu.
 */
export async function selectBackend(request: EngineBackend, load: ModuleLoader = defaultLoader): Promise<Selected> {
  registerCpuKernelFixes();
  if (request === 'tensorflow' || request === 'tensorflow-gpu') {
    const why = await tryNative(request, load);
    if (why != null) {
      const pkg = NATIVE[request];
      throw new EngineError(`backend '${request}' was requested but ${why}: ${installHint(pkg)}; or use backend 'auto' or 'wasm'`, {
        expected: `${pkg} installed with its native libtensorflow`,
        found: why,
        where: 'initEngine({ backend })',
      });
    }
    return { tf, backend: request, reason: `${NATIVE[request]} (requested)` };
  }
  if (request === 'wasm') {
    const why = await tryWasm();
    if (why != null) {
      throw new EngineError(`backend 'wasm' was requested but ${why}`, {
        expected: `tfjs-backend-wasm binaries in ${wasmBinaryDir()}`,
        found: why,
        where: 'initEngine({ backend })',
      });
    }
    return { tf, backend: 'wasm', reason: 'wasm (requested) with the bevzoo training kernels' };
  }
  if (request === 'cpu') {
    await useCpu();
    return { tf, backend: 'cpu', reason: 'cpu (requested): the pure-JS reference backend, slow for training' };
  }
  if (request !== 'auto') {
    throw new EngineError(`unknown backend '${String(request)}'`, {
      expected: "'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'tensorflow-gpu'",
      found: String(request),
      where: 'initEngine({ backend })',
    });
  }
  const skipped: string[] = [];
  for (const kind of ['tensorflow-gpu', 'tensorflow'] as const) {
    const why = await tryNative(kind, load);
    if (why == null) return { tf, backend: kind, reason: `${NATIVE[kind]} (auto${skipped.length ? `; ${skipped.join('; ')}` : ''})` };
    skipped.push(why);
  }
  const wasmWhy = await tryWasm();
  if (wasmWhy == null) {
    return { tf, backend: 'wasm', reason: `wasm with the bevzoo training kernels (auto: ${skipped.join('; ')})` };
  }
  skipped.push(wasmWhy);
  await useCpu();
  return { tf, backend: 'cpu', reason: `cpu, slow for training (auto: ${skipped.join('; ')})` };
}

/** An engine before its thread count and kernels are settled. */
type Selected = Omit<Engine, 'threads' | 'kernels' | 'kernelsReason'>;

function resolveKernels(request: KernelsRequest | undefined): { want: KernelsRequest; why: string } {
  const env = process.env.BEVZOO_KERNELS;
  const [want, why] = request != null && request !== 'auto' ? [request, 'requested'] : env ? [env, 'BEVZOO_KERNELS'] : ['auto', 'auto'];
  if (!KERNELS.includes(want as KernelsRequest)) {
    throw new EngineError(`unknown kernels '${want}'${why === 'BEVZOO_KERNELS' ? ' in BEVZOO_KERNELS' : ''}`, {
      expected: KERNELS.join(' | '),
      found: String(want),
      where: why === 'BEVZOO_KERNELS' ? 'environment variable BEVZOO_KERNELS' : 'initEngine({ kernels })',
    });
  }
  return { want: want as KernelsRequest, why };
}

/** Puts the requested kernel path in place for wasm; returns which one runs and why. */
function settleKernels(request: KernelsRequest | undefined): { kernels: 'native' | 'wasm'; reason: string } {
  const { want, why } = resolveKernels(request);
  if (want === 'wasm') {
    useNativeKernels(false);
    return { kernels: 'wasm', reason: `wasm kernels (${why})` };
  }
  const native = loadNative();
  if (native.addon == null) {
    if (want === 'native') {
      throw new EngineError(`native kernels were requested (${why}) but ${native.why}`, {
        expected: 'the native addon built against libtorch',
        found: native.why,
        where: why === 'BEVZOO_KERNELS' ? 'environment variable BEVZOO_KERNELS' : 'initEngine({ kernels })',
      });
    }
    useNativeKernels(false);
    return { kernels: 'wasm', reason: `wasm kernels (auto: ${native.why})` };
  }
  useNativeKernels(true);
  return { kernels: 'native', reason: `native kernels (${why}: ${native.why})` };
}

const selected = new Map<EngineBackend, Promise<Selected>>();
const engines = new Map<string, Engine>();

/**
 * Sets up tfjs for training: registers the gradients and the wasm training kernels, picks a backend
 * and makes it active, and (wasm) starts or stops the intra-op workers. Logs one line saying which
 * backend it took, why, and how many threads. Calling it again with the same request returns the same
 * engine (re-activating its backend if something switched it).
 */
export async function initEngine(options: EngineOptions = {}): Promise<Engine> {
  const request = options.backend ?? 'auto';
  const log = options.log ?? ((line: string) => console.error(line));
  let pending = selected.get(request);
  const first = pending == null;
  if (pending == null) {
    pending = selectBackend(request);
    selected.set(request, pending);
    pending.catch(() => selected.delete(request));
  }
  const base = await pending;
  if (!first) {
    registerTrainingGradients();
    const name = base.backend === 'tensorflow-gpu' ? 'tensorflow' : base.backend;
    if (tf.getBackend() !== name) await tf.setBackend(name);
  }
  let threads = 1;
  let threadNote = '';
  let kernels: Engine['kernels'] = null;
  let kernelsReason = `no kernel choice on backend ${base.backend}`;
  if (base.backend === 'wasm') {
    const want = resolveThreads(options.threads ?? 'auto');
    const k = settleKernels(options.kernels);
    [kernels, kernelsReason] = [k.kernels, k.reason];
    if (k.kernels === 'native') {
      // libtorch's OpenMP threads do the parallel work; the wasm intra-op workers would only compete with them.
      await configureThreads(1, wasmBinaryDir());
      threads = loadNative().addon!.setThreads(want.threads);
      threadNote = `${threads} thread${threads === 1 ? '' : 's'} (${want.why}; libtorch intra-op)`;
    } else {
      const got = await configureThreads(want.threads, wasmBinaryDir());
      threads = got.threads;
      threadNote = `${threads} thread${threads === 1 ? '' : 's'} (${want.why}${got.note != null ? `; 1 because ${got.note}` : ''})`;
    }
  }
  const key = `${request}/${threads}/${kernels}`;
  let engine = engines.get(key);
  if (engine == null) {
    engine = { ...base, threads, kernels, kernelsReason };
    engines.set(key, engine);
    log(`@bevzoo/engine: backend ${base.backend} — ${base.reason}${kernels ? `; ${kernelsReason}` : ''}${threadNote ? `; ${threadNote}` : ''}`);
  }
  return engine;
}
