/**
 * Why the generator keeps its own JPEG encoder (jpeg.ts) instead of jpeg-js's: encodes one rendered synthetic
 * camera image (CAM_FRONT of scene 0, seed 0; 704×256 RGBA by default) at quality 90 with both, and prints
 * time per image (best of the runs), bytes, and PSNR of the decoded image against the input. `--noise` encodes
 * uniform noise of the same size instead (the worst case for both).
 *
 *   npx tsx packages/nuscenes/src/synth/bench-jpeg.ts [--width 704] [--height 256] [--quality 90] [--runs 20] [--noise]
 */
import { composeTransforms, createRng, yawToQuat } from '@bevzoo/core';
import { decode, encode } from 'jpeg-js';
import { renderCamera } from './camera.js';
import { encodeJpeg } from './jpeg.js';
import { makeRig } from './rig.js';
import { egoPose, generateWorld, objectPrimsAt } from './world.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const W = arg('width', 704), H = arg('height', 256), quality = arg('quality', 90), runs = arg('runs', 20);

const rng = createRng(0).fork(0);
const world = generateWorld(rng.fork('world'), { duration: 2, keyTimes: [1], annotationRange: 60, density: 1 });
const cam = makeRig(W, H, rng.fork('rig')).cameras[0]!;
const e = egoPose(world, 1);
const pose = composeTransforms({ translation: [e.x, e.y, 0], rotation: yawToQuat(e.yaw) }, { rotation: cam.rotation, translation: cam.translation });
const prims = world.staticPrims.filter((p) => Math.hypot(p.cx - e.x, p.cy - e.y) - p.radius < 400).concat(objectPrimsAt(world, 1));
const view = { width: W, height: H, fx: cam.K[0]![0]!, fy: cam.K[1]![1]!, cx: cam.K[0]![2]!, cy: cam.K[1]![2]!, rotation: pose.rotation, origin: pose.translation };
const noise = process.argv.includes('--noise');
const rgba = noise
  ? new Uint8Array(W * H * 4).map((_, i) => (i % 4 === 3 ? 255 : rng.int(256)))
  : renderCamera(view, world.env, world.ground, prims, world.objects.length, 1).rgba;

function psnr(jpg: Uint8Array): number {
  const d = decode(jpg, { useTArray: true, formatAsRGBA: true });
  let se = 0;
  for (let i = 0; i < W * H * 4; i++) if (i % 4 !== 3) se += (d.data[i]! - rgba[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (se / (W * H * 3)));
}

function bench(name: string, enc: () => Uint8Array): number {
  let best = Infinity, out = enc();
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    out = enc();
    best = Math.min(best, performance.now() - t);
  }
  console.log(`${name.padEnd(26)} ${best.toFixed(1).padStart(6)} ms  ${(out.length / 1000).toFixed(1).padStart(6)} KB  PSNR ${psnr(out).toFixed(1)} dB`);
  return best;
}

console.log(`${W}×${H} RGBA (${noise ? 'uniform noise' : 'rendered CAM_FRONT'}), quality ${quality}, best of ${runs} runs`);
const ours = bench('ours (jpeg.ts, 4:2:0)', () => encodeJpeg(rgba, W, H, quality));
const theirs = bench('jpeg-js encode (4:4:4)', () => encode({ data: rgba, width: W, height: H }, quality).data);
console.log(`jpeg-js / ours: ${(theirs / ours).toFixed(1)}× the time`);
