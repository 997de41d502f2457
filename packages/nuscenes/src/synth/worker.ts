/**
 * The synthetic generator's piscina task: one scene (its files, and its table records as the result), with a
 * message per keyframe on the MessagePort sent with the task. Built as its own tsup entry (dist/synth/worker.js);
 * from TypeScript sources the generator runs in-process instead.
 */
import type { MessagePort } from 'node:worker_threads';
import { generateScene, type SceneJob, type SceneRecords } from './scene.js';

export interface SceneTask {
  job: SceneJob;
  /** Gets the keyframe index after each keyframe. */
  progress: MessagePort;
}

export default function sceneTask({ job, progress }: SceneTask): SceneRecords {
  return generateScene(job, (k) => progress.postMessage(k));
}
