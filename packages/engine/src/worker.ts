/**
 * The intra-op worker (see threads.ts): its own @tensorflow/tfjs-core + wasm backend instance that
 * claims and runs chunks of split kernels. Built as dist/worker.js and dist/worker.cjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { REQ, serveJob, type JobMessage } from './wasm/parts.js';
import type { WasmBackend } from './wasm/util.js';

/** How long the worker polls for the next job before it sleeps (Atomics.wait). */
const SPIN_MS = 10;

const { ctrl: ctrlBuffer, port, wasmDir } = workerData as { ctrl: SharedArrayBuffer; port: MessagePort; wasmDir: string };

async function main(): Promise<void> {
  setWasmPaths(wasmDir);
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise in the worker');
  const b = tf.backend() as unknown as WasmBackend;
  const ctrl = new Int32Array(ctrlBuffer);
  const claim = new BigInt64Array(ctrlBuffer);
  let data: Float32Array = new Float32Array(0);
  let seen = Atomics.load(ctrl, REQ);
  const onError = (err: unknown) => port.postMessage({ error: String((err as Error)?.stack ?? err) });
  parentPort!.postMessage({ ready: true });
  for (;;) {
    // Poll a little before sleeping: a core left idle for a few ms can take milliseconds to wake
    // (measured on the 2-core VM: 2–4 ms for the first split op of a training step).
    const until = performance.now() + SPIN_MS;
    while (Atomics.load(ctrl, REQ) === seen && performance.now() < until);
    Atomics.wait(ctrl, REQ, seen);
    seen = Atomics.load(ctrl, REQ);
    // Every job posted since the last wake-up, in order (those already finished by others claim nothing).
    for (let m = receiveMessageOnPort(port); m != null; m = receiveMessageOnPort(port)) {
      const msg = m.message as JobMessage | { exit: true };
      if ('exit' in msg) {
        port.close();
        return;
      }
      if (msg.sab != null) data = new Float32Array(msg.sab);
      serveJob(b, msg, data, ctrl, claim, onError);
    }
  }
}

main().catch((err: unknown) => parentPort!.postMessage({ error: String((err as Error)?.message ?? err) }));
