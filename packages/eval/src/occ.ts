/**
 * Occ3D-nuScenes mIoU, as the Occ3D metric computes it (Metric_mIoU with use_image_mask): an 18×18 confusion
 * matrix (rows = GT, columns = prediction) summed over frames on voxels with mask_camera = 1;
 * IoU_c = TP / (row_c + col_c − TP); mIoU = nanmean of IoU over classes 0–16 (free, 17, stays in the matrix, so
 * free predicted on an occupied voxel is a false negative of that class).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOccLabels, OCC_CLASSES, OCC_GRID, readNpz, type NpyArray } from '@bevzoo/nuscenes';
import type { DetectionDb } from './evaluate.js';
import { splitSampleTokens } from './evaluate.js';
import { OccupancyInputError } from './errors.js';
import { npNanMean } from './numpy.js';

export const OCC_NUM_CLASSES = OCC_CLASSES.length; // 18
const VOXELS = OCC_GRID.size[0] * OCC_GRID.size[1] * OCC_GRID.size[2];

/** Confusion counts accumulated frame by frame; memory is constant in the number of frames. */
export class OccConfusion {
  /** counts[gt·18 + pred], float64 (exact up to 2^53 voxels). */
  readonly counts = new Float64Array(OCC_NUM_CLASSES * OCC_NUM_CLASSES);
  frames = 0;

  /**
   * Add one frame. `gt`, `pred` hold labels 0–17 and `maskCamera` 0/1, all in the same voxel order and length.
   * `where` names the frame in errors.
   */
  add(gt: ArrayLike<number>, pred: ArrayLike<number>, maskCamera: ArrayLike<number>, where = 'frame'): void {
    const n = gt.length;
    if (pred.length !== n || maskCamera.length !== n) {
      throw new OccupancyInputError(`gt, prediction and mask of ${n} voxels each`, `${n}, ${pred.length}, ${maskCamera.length}`, { field: where });
    }
    const K = OCC_NUM_CLASSES;
    const c = this.counts;
    for (let i = 0; i < n; i++) {
      const p = pred[i]!;
      if (!(p >= 0 && p < K && Number.isInteger(p))) {
        throw new OccupancyInputError(`a prediction label in 0..${K - 1}`, String(p), { field: `${where} semantics[${i}]` });
      }
      const g = gt[i]!;
      if (!(g >= 0 && g < K && Number.isInteger(g))) throw new OccupancyInputError(`a GT label in 0..${K - 1}`, String(g), { field: `${where} gt[${i}]` });
      if (maskCamera[i]) c[g * K + p]! += 1;
    }
    this.frames++;
  }

  /** Per-class IoU (18 values; NaN for a class absent from both GT and predictions). */
  iou(): Float64Array {
    const K = OCC_NUM_CLASSES;
    const out = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      let row = 0, col = 0;
      for (let j = 0; j < K; j++) {
        row += this.counts[k * K + j]!;
        col += this.counts[j * K + k]!;
      }
      const tp = this.counts[k * K + k]!;
      out[k] = tp / (row + col - tp);
    }
    return out;
  }

  /** nanmean of IoU over classes 0–16. */
  miou(): number {
    return npNanMean(this.iou().subarray(0, OCC_NUM_CLASSES - 1));
  }

  /** Merge another matrix (e.g. from a parallel worker). */
  merge(other: OccConfusion): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.frames += other.frames;
  }
}

export interface OccupancyResult {
  frames: number;
  /** IoU per class name (18, including free). */
  iou: Record<string, number>;
  /** Mean over the 17 semantic classes (free excluded). */
  miou: number;
  confusion: OccConfusion;
}

function toLabels(arr: NpyArray, file: string, token: string): Uint8Array {
  const [X, Y, Z] = OCC_GRID.size;
  if (arr.shape.length !== 3 || arr.shape[0] !== X || arr.shape[1] !== Y || arr.shape[2] !== Z) {
    throw new OccupancyInputError(`semantics of shape (${X}, ${Y}, ${Z})`, `(${arr.shape.join(', ')})`, { file, sampleToken: token, field: 'semantics' });
  }
  const d = arr.data;
  if (d instanceof Float32Array || d instanceof Float64Array) {
    throw new OccupancyInputError('an integer semantics array (uint8)', `dtype ${arr.dtype ?? 'float'}`, { file, sampleToken: token, field: 'semantics' });
  }
  const out = new Uint8Array(VOXELS);
  for (let x = 0; x < X; x++) {
    for (let y = 0; y < Y; y++) {
      for (let z = 0; z < Z; z++) {
        const ci = (x * Y + y) * Z + z;
        const v = Number(d[arr.fortranOrder ? x + X * (y + Y * z) : ci]!);
        if (!(v >= 0 && v < OCC_NUM_CLASSES)) {
          throw new OccupancyInputError(`labels in 0..${OCC_NUM_CLASSES - 1}`, `${v} at [${x}, ${y}, ${z}]`, { file, sampleToken: token, field: 'semantics' });
        }
        out[ci] = v;
      }
    }
  }
  return out;
}

/** Read `<predictions>/<sample_token>.npz` (array `semantics`, 200×200×16). */
export function readOccPrediction(predictions: string, sampleToken: string): Uint8Array {
  const file = join(predictions, `${sampleToken}.npz`);
  if (!existsSync(file)) {
    throw new OccupancyInputError(`a prediction file for sample ${sampleToken}`, `no file at ${file}`, { file, sampleToken });
  }
  let npz: Record<string, NpyArray>;
  try {
    npz = readNpz(readFileSync(file), file);
  } catch (e) {
    throw new OccupancyInputError('an .npz archive', (e as Error).message, { file, sampleToken });
  }
  const sem = npz.semantics;
  if (!sem) throw new OccupancyInputError('an array "semantics"', `arrays: ${Object.keys(npz).join(', ') || 'none'}`, { file, sampleToken, field: 'semantics' });
  return toLabels(sem, file, sampleToken);
}

export interface EvaluateOccupancyOptions {
  nusc: DetectionDb;
  split?: string;
  sampleTokens?: readonly string[];
  /** Occ3D GT folder: `<gts>/<scene_name>/<sample_token>/labels.npz`. */
  gts: string;
  /** Prediction folder: `<predictions>/<sample_token>.npz`. */
  predictions: string;
  verbose?: boolean;
  log?: (line: string) => void;
}

/** mIoU over a split's samples (frames read one at a time). */
export async function evaluateOccupancy(opts: EvaluateOccupancyOptions): Promise<OccupancyResult> {
  const { nusc } = opts;
  const tokens = opts.sampleTokens ? [...opts.sampleTokens] : opts.split ? splitSampleTokens(nusc, opts.split) : null;
  if (!tokens) throw new OccupancyInputError('a split or sampleTokens', 'neither', { field: 'split' });
  const conf = new OccConfusion();
  for (const token of tokens) {
    const scene = nusc.get('scene', nusc.get('sample', token).scene_token).name;
    const gtFile = join(opts.gts, scene, token, 'labels.npz');
    const gt = await loadOccLabels(gtFile, token);
    const pred = readOccPrediction(opts.predictions, token);
    conf.add(gt.semantics, pred, gt.maskCamera, `sample ${token}`);
  }
  const iou = conf.iou();
  const result: OccupancyResult = {
    frames: conf.frames,
    iou: Object.fromEntries(OCC_CLASSES.map((n, i) => [n, iou[i]!])),
    miou: conf.miou(),
    confusion: conf,
  };
  if (opts.verbose) (opts.log ?? ((l: string) => console.log(l)))(formatOccupancyTable(result));
  return result;
}

/** Per-class IoU table (percent, 2 decimals, like Occ3D's printout) and the mIoU over classes 0–16. */
export function formatOccupancyTable(r: Pick<OccupancyResult, 'frames' | 'iou' | 'miou'>): string {
  const pct = (v: number) => (Number.isNaN(v) ? 'nan' : (v * 100).toFixed(2));
  const lines = [`===> per class IoU of ${r.frames} samples:`, `${'Class'.padEnd(20)}\tIoU`];
  for (const name of OCC_CLASSES.slice(0, OCC_NUM_CLASSES - 1)) lines.push(`${name.padEnd(20)}\t${pct(r.iou[name]!)}`);
  lines.push(`===> mIoU of ${r.frames} samples: ${pct(r.miou)}`);
  return lines.join('\n');
}
