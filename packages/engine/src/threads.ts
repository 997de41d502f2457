/**
 * The intra-op thread pool of the wasm backend. tfjs-backend-wasm runs on one thread in Node, so
 * heavy kernels (conv2d forward and backprops, large matmuls) split their work into chunks that the
 * calling thread and worker threads (each with its own tfjs-core + wasm backend instance, a separate
 * isolate and heap) claim one at a time from a shared counter, so that a worker slowed down by other
 * processes on its core simply takes fewer chunks.
 *
 * Hand-off: the calling thread copies the op's inputs into a SharedArrayBuffer, posts the list of
 * chunks (shapes and offsets) on each worker's MessagePort and wakes the workers with Atomics.notify;
 * a worker reads the job with receiveMessageOnPort, claims chunks with Atomics.compareExchange, writes
 * each output to its slot in the shared buffer and counts it done; the calling thread claims chunks
 * too, then waits (Atomics.wait, allowed on Node's main thread) for the chunks the workers took, and
 * assembles. No event-loop turn is involved, so kernels stay synchronous.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { EngineError } from './errors.js';
import {
  CLAIM,
  CTRL_BYTES,
  FIN,
  REQ,
  STATUS,
  claimChunk,
  gather,
  isWhole,
  partOutShape,
  runPart,
  serveJob,
  type Chunk,
  type JobMessage,
} from './wasm/parts.js';
import { alloc, f32, free, sizeOf, view, type TI, type WasmBackend } from './wasm/util.js';

/** How many threads the wasm kernels may use: 'auto' or a count (1 = no worker). */
export type ThreadsRequest = 'auto' | number;

/**
 * Chunks smaller than this many FLOPs are not worth handing out. Measured on the 2-core development
 * machine: a split op costs ≈ 30–50 µs of hand-off (wake-up, job message, copies); a 3×3 conv or a
 * matmul split in two breaks even at ≈ 10 MFLOP and gains 1.2× at 20 MFLOP, 1.5–1.7× from 40 MFLOP.
 * Override with the environment variable BEVZOO_THREADS_MIN_FLOPS.
 */
const DEFAULT_MIN_CHUNK_FLOPS = 1e7;
/**
 * Chunks per thread of a large op. More than one, so that a thread slowed down by other processes
 * takes fewer (with one CPU-bound process beside the 2-thread bench: 66–70 ms/step, vs 80 for an
 * even split in two); few, because each costs halo rows and a kernel call.
 */
const CHUNKS_PER_THREAD = 2;
let minChunkFlops = envMinFlops() ?? DEFAULT_MIN_CHUNK_FLOPS;

function envMinFlops(): number | null {
  const v = process.env.BEVZOO_THREADS_MIN_FLOPS;
  if (v == null || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/** Test / bench seam: the smallest chunk worth handing out, in FLOPs (returns the previous value). */
export function setMinChunkFlops(flops: number): number {
  const prev = minChunkFlops;
  minChunkFlops = flops;
  return prev;
}

/** A started worker thread. */
interface WorkerHandle {
  post(msg: JobMessage | { exit: true }): void;
  /** The first error message the worker posted since the last call, if any. */
  error(): string | null;
  stop(): Promise<void>;
}

/** The pool: workers, in-process stand-ins (test seam), and the shared control and data buffers. */
const pool = {
  workers: [] as WorkerHandle[],
  inProcess: 0,
  ctrlBuffer: new SharedArrayBuffer(CTRL_BYTES),
  data: new Float32Array(0) as Float32Array,
  seq: 0,
};
const stats = { splits: 0, chunks: 0, workerChunks: 0, waitMs: 0 };

const ctrl = () => new Int32Array(pool.ctrlBuffer);
const claim = () => new BigInt64Array(pool.ctrlBuffer);

/** Threads the wasm kernels use now (1 + workers). */
export function activeThreads(): number {
  return 1 + pool.workers.length + pool.inProcess;
}

/**
 * Counters since the pool was configured: ops split, their chunks, how many of them the workers ran,
 * and ms the calling thread waited for workers after it found no chunk left.
 */
export function threadStats(): { threads: number; splitOps: number; chunks: number; workerChunks: number; waitMs: number } {
  return { threads: activeThreads(), splitOps: stats.splits, chunks: stats.chunks, workerChunks: stats.workerChunks, waitMs: stats.waitMs };
}

/**
 * Resolves a threads request: a count as given; 'auto' is BEVZOO_THREADS when set, else 2 on a
 * machine with ≥ 2 cores, else 1.
 */
export function resolveThreads(
  request: ThreadsRequest,
  env: NodeJS.ProcessEnv = process.env,
  cores: number = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length,
): { threads: number; why: string } {
  if (request === 'auto') {
    const v = env.BEVZOO_THREADS;
    if (v != null && v.trim() !== '') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) {
        throw new EngineError(`BEVZOO_THREADS must be a positive integer, found '${v}'`, {
          expected: 'a positive integer',
          found: v,
          where: 'environment variable BEVZOO_THREADS',
        });
      }
      return { threads: n, why: `BEVZOO_THREADS=${n}` };
    }
    return { threads: cores >= 2 ? 2 : 1, why: `auto, ${cores} core${cores === 1 ? '' : 's'}` };
  }
  if (typeof request !== 'number' || !Number.isInteger(request) || request < 1) {
    throw new EngineError(`threads must be 'auto' or a positive integer, found ${String(request)}`, {
      expected: "'auto' or a positive integer",
      found: String(request),
      where: 'initEngine({ threads })',
    });
  }
  return { threads: request, why: 'requested' };
}

/**
 * The built worker beside this module (dist/worker.js or .cjs), or why there is none: running from
 * the TypeScript sources (vitest), or from a bundle that did not copy the worker file.
 */
export function workerFile(): { url: URL } | { why: string } {
  let here: string;
  try {
    here = fileURLToPath(import.meta.url);
  } catch {
    return { why: `this module is not a file (${import.meta.url})` };
  }
  const ext = extname(here);
  if (ext !== '.js' && ext !== '.cjs' && ext !== '.mjs') {
    return { why: 'the intra-op worker runs from the built package only (this is the TypeScript source)' };
  }
  const file = join(dirname(here), `worker${ext}`);
  return existsSync(file) ? { url: pathToFileURL(file) } : { why: `the worker file ${file} is missing` };
}

let configuring: Promise<unknown> = Promise.resolve();

/**
 * Makes the pool `threads − 1` workers (stopping or starting them). Resolves to the thread count
 * in use and a note on why it differs from the request (e.g. running from sources), if it does.
 */
export function configureThreads(threads: number, wasmDir: string): Promise<{ threads: number; note: string | null }> {
  const next = configuring.then(async () => {
    if (threads === activeThreads() && pool.inProcess === 0) return { threads, note: null };
    await stopThreads();
    if (threads <= 1) return { threads: 1, note: null };
    const file = workerFile();
    if ('why' in file) return { threads: 1, note: file.why };
    const started = await Promise.allSettled(Array.from({ length: threads - 1 }, () => startWorker(file.url, wasmDir)));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed != null) {
      await Promise.all(ok.map((w) => w.stop()));
      return { threads: 1, note: `the intra-op worker failed to start (${String((failed.reason as Error)?.message ?? failed.reason)})` };
    }
    pool.workers = ok;
    return { threads, note: null };
  });
  configuring = next.catch(() => undefined);
  return next;
}

/** Stops the workers (the kernels run on one thread afterwards). */
export async function stopThreads(): Promise<void> {
  const old = pool.workers;
  pool.workers = [];
  pool.inProcess = 0;
  pool.data = new Float32Array(0); // new workers get the next job's buffer with its message
  Object.assign(stats, { splits: 0, chunks: 0, workerChunks: 0, waitMs: 0 });
  await Promise.all(old.map((w) => w.stop()));
}

function startWorker(file: URL, wasmDir: string): Promise<WorkerHandle> {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(file, { workerData: { ctrl: pool.ctrlBuffer, port: port2, wasmDir }, transferList: [port2] });
  let dead: string | null = null;
  const handle: WorkerHandle = {
    post: (msg) => port1.postMessage(msg),
    error() {
      let first: string | null = null;
      for (let m = receiveMessageOnPort(port1); m != null; m = receiveMessageOnPort(port1)) first ??= (m.message as { error?: string }).error ?? null;
      return first;
    },
    async stop() {
      if (dead == null) {
        dead = 'stopped';
        port1.postMessage({ exit: true });
        Atomics.add(ctrl(), REQ, 1);
        Atomics.notify(ctrl(), REQ);
      }
      port1.close();
      await worker.terminate();
    },
  };
  const leave = (why: string) => {
    dead ??= why;
    pool.workers = pool.workers.filter((w) => w !== handle);
  };
  return new Promise<WorkerHandle>((resolve, reject) => {
    const fail = (why: string) => {
      dead = why;
      void worker.terminate();
      reject(new Error(why));
    };
    worker.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve(handle) : fail(m.error ?? 'no ready message')));
    worker.once('error', (err) => fail(String(err?.message ?? err)));
    worker.once('exit', (code) => fail(`exited with code ${code}`));
  }).then((h) => {
    worker.removeAllListeners();
    // Never keep the process alive; a worker that dies only takes itself out of the pool.
    worker.on('error', (err) => leave(String(err?.message ?? err)));
    worker.on('exit', () => leave('exited'));
    worker.unref();
    port1.unref();
    return h;
  });
}

/**
 * Test seam: `threads − 1` in-process stand-ins for workers. Each split op first runs the worker's
 * side of the job (the same job message, shared buffer and claiming) on this thread for its share of
 * the chunks, then this thread takes the rest, so that the split kernels can be checked where no
 * worker can start (under vitest, from the TypeScript sources).
 */
export async function useInProcessThreads(threads: number): Promise<void> {
  await stopThreads();
  pool.inProcess = Math.max(0, threads - 1);
}

/** How many chunks an op of `flops` should be split into (1: run it as is), at most `maxChunks`. */
export function chunksFor(flops: number, maxChunks: number): number {
  const threads = activeThreads();
  if (threads === 1) return 1;
  const byWork = minChunkFlops > 0 ? Math.floor(flops / minChunkFlops) : Infinity;
  return Math.max(1, Math.min(CHUNKS_PER_THREAD * threads, maxChunks, byWork));
}

/** Even split of [0, n) into k ranges: boundaries[0] = 0 … boundaries[k] = n. */
export function splitRange(n: number, k: number): number[] {
  return Array.from({ length: k + 1 }, (_, i) => Math.round((i * n) / k));
}

/** An op split into chunks: its inputs, its output shape, and the chunks (see wasm/parts.ts). */
export interface SplitOp {
  inputs: TI[];
  outShape: number[];
  chunks: Chunk[];
}

/** Runs a chunk on this thread, its inputs gathered from the op's tensors on the heap. */
function runHere(b: WasmBackend, op: SplitOp, c: number): TI {
  const own: TI[] = [];
  try {
    const ins = op.chunks[c].inputs.map(({ shape, from }) => {
      const src = op.inputs[from.src];
      if (isWhole(from, sizeOf(src.shape))) return view(src, shape);
      const t = alloc(b, shape);
      own.push(t);
      gather(f32(b, src), 0, from, f32(b, t), 0);
      return t;
    });
    return runPart(b, op.chunks[c].part, ins);
  } finally {
    free(b, ...own);
  }
}

/**
 * Runs a split op on this thread and the workers; returns its output (a new tensor). Chunk outputs
 * are placed where their `out` says, or summed in chunk order (so the result does not depend on which
 * thread ran which chunk).
 */
export function runSplit(b: WasmBackend, op: SplitOp): TI {
  const n = op.chunks.length;
  let at = 0;
  const inputs = op.inputs.map((t) => {
    const size = sizeOf(t.shape);
    at += size;
    return { offset: at - size, size };
  });
  const outSizes = op.chunks.map((ch) => sizeOf(partOutShape(ch.part, ch.inputs.map((i) => i.shape))));
  const outs = outSizes.map((size) => (at += size) - size);
  pool.seq = (pool.seq + 1) & 0x7fffffff;
  const seq = pool.seq;
  const msg: JobMessage = { seq, chunks: op.chunks, inputs, outs };
  if (pool.data.length < at) {
    pool.data = new Float32Array(new SharedArrayBuffer(Math.ceil((at * 1.25) / 1024) * 4096));
    msg.sab = pool.data.buffer as SharedArrayBuffer;
  }
  const data = pool.data;
  op.inputs.forEach((t, i) => data.set(f32(b, t), inputs[i].offset));
  const cv = ctrl();
  const cl = claim();
  Atomics.store(cv, FIN, 0);
  Atomics.store(cv, STATUS, 0);
  Atomics.store(cl, CLAIM, BigInt(seq) << 32n);
  const workers = pool.workers;
  for (const w of workers) w.post(msg);
  Atomics.add(cv, REQ, 1);
  Atomics.notify(cv, REQ);
  stats.splits++;
  stats.chunks += n;

  const results: (TI | null)[] = new Array<TI | null>(n).fill(null);
  let inProcessError: unknown = null;
  let mine = 0; // chunks this thread claimed for itself (FIN counts all others)
  let claimed = n;
  let failure: unknown = null;
  try {
    for (let i = 0; i < pool.inProcess; i++) {
      serveJob(b, msg, data, cv, cl, (err) => (inProcessError ??= err), Math.floor(n / activeThreads()));
    }
    for (let c = claimChunk(cl, seq, n); c >= 0; c = claimChunk(cl, seq, n)) {
      mine++;
      results[c] = runHere(b, op, c);
    }
  } catch (err) {
    failure = err;
    // Take what is left, so that only chunks the workers already hold are waited for.
    claimed = Math.min(n, Number(Atomics.exchange(cl, CLAIM, (BigInt(seq) << 32n) | BigInt(n)) & 0xffffffffn));
  }
  const t0 = performance.now();
  waitFor(cv, claimed - mine, workers);
  stats.waitMs += performance.now() - t0;
  stats.workerChunks += claimed - mine;
  if (failure == null && Atomics.load(cv, STATUS) !== 0) {
    const why = inProcessError ?? workers.map((w) => w.error()).find((e) => e != null) ?? 'unknown error';
    failure = new EngineError(`an intra-op worker failed: ${String((why as Error)?.stack ?? why)}`, { where: 'threads (worker)' });
  }
  if (failure != null) {
    free(b, ...results);
    throw failure;
  }
  const out = alloc(b, op.outShape);
  const ov = f32(b, out);
  op.chunks.forEach((chunk, c) => {
    const r = results[c];
    const src = r != null ? f32(b, r) : data.subarray(outs[c], outs[c] + outSizes[c]);
    const place = chunk.out;
    if (place != null) {
      for (let i = 0; i < place.count; i++) ov.set(src.subarray(i * place.len, (i + 1) * place.len), place.start + i * place.stride);
    } else if (c === 0) {
      ov.set(src);
    } else {
      for (let i = 0; i < ov.length; i++) ov[i] += src[i];
    }
  });
  free(b, ...results);
  return out;
}

/**
 * Waits until the workers have finished `count` chunks of the current job: polls briefly (they are
 * usually about done), then sleeps. A worker that gives no sign for a long time is taken for dead.
 */
function waitFor(cv: Int32Array, count: number, workers: WorkerHandle[]): void {
  const t0 = performance.now();
  while (Atomics.load(cv, FIN) < count && performance.now() - t0 < 1);
  for (;;) {
    const fin = Atomics.load(cv, FIN);
    if (fin >= count) return;
    if (Atomics.wait(cv, FIN, fin, 1000) === 'timed-out' && performance.now() - t0 > WORKER_TIMEOUT_MS) {
      for (const w of workers) void w.stop();
      pool.workers = pool.workers.filter((w) => !workers.includes(w));
      throw new EngineError(`the intra-op workers did not finish their chunks within ${WORKER_TIMEOUT_MS / 1000} s; stopped them`, {
        expected: `${count} chunks finished`,
        found: `${fin}`,
        where: 'threads',
      });
    }
  }
}

/** How long the calling thread waits for a worker's chunk before it gives the worker up. */
const WORKER_TIMEOUT_MS = 120_000;
