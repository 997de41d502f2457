/**
 * Worker-thread entry of the synthetic generator: receives scene jobs, posts progress per keyframe and the
 * scene's table records. Built as its own tsup entry (dist/synth/worker.js); from TypeScript sources the
 * generator runs in-process instead.
 */
import { parentPort } from 'node:worker_threads';
import { generateScene, type SceneJob } from './scene.js';

const port = parentPort;
if (port) {
  port.on('message', (msg: { type: 'job'; job: SceneJob }) => {
    if (msg.type !== 'job') return;
    const scene = msg.job.sceneIndex;
    try {
      const records = generateScene(msg.job, (k) => port.postMessage({ type: 'progress', scene, k }));
      port.postMessage({ type: 'result', scene, records });
    } catch (e) {
      const err = e as Error;
      port.postMessage({ type: 'error', scene, message: err?.message ?? String(e), stack: err?.stack });
    }
  });
}
