/** Occ3D-nuScenes labels: `gts/<scene_name>/<sample_token>/labels.npz` with semantics, mask_lidar, mask_camera. */
import { NuScenesError } from './errors.js';
import { readDataFile } from './io.js';
import { readNpz, type NpyArray } from './npz.js';
import { OCC_CLASSES, OCC_GRID } from './tables.js';

/** Occ3D arrays, uint8, 200·200·16 in [x, y, z] order: index = (x·200 + y)·16 + z. */
export interface OccLabels {
  semantics: Uint8Array;
  maskLidar: Uint8Array;
  maskCamera: Uint8Array;
}

const ARRAYS = [['semantics', 'semantics'], ['mask_lidar', 'maskLidar'], ['mask_camera', 'maskCamera']] as const;

/** Read and check one labels.npz. */
export async function loadOccLabels(file: string, sampleToken?: string): Promise<OccLabels> {
  const bytes = await readDataFile(file, { table: 'sample', token: sampleToken, field: 'occ labels.npz' });
  let npz: Record<string, NpyArray>;
  try {
    npz = readNpz(bytes, file);
  } catch (e) {
    throw new NuScenesError(`Cannot read Occ3D labels ${file}: ${(e as Error).message}`, { file, token: sampleToken, expected: 'an .npz archive' });
  }
  const [X, Y, Z] = OCC_GRID.size;
  const out = {} as Record<(typeof ARRAYS)[number][1], Uint8Array>;
  for (const [name, key] of ARRAYS) {
    const arr = npz[name];
    if (!arr)
      throw new NuScenesError(`${file} has no array "${name}" (found: ${Object.keys(npz).join(', ') || 'none'})`, {
        file, token: sampleToken, field: name, expected: 'semantics, mask_lidar, mask_camera', found: Object.keys(npz).join(', '),
      });
    if (arr.shape.length !== 3 || arr.shape[0] !== X || arr.shape[1] !== Y || arr.shape[2] !== Z)
      throw new NuScenesError(`${file}: array "${name}" has shape (${arr.shape.join(', ')}), expected (${X}, ${Y}, ${Z})`, {
        file, token: sampleToken, field: name, expected: `(${X}, ${Y}, ${Z})`, found: `(${arr.shape.join(', ')})`,
      });
    if (arr.data instanceof BigInt64Array || arr.data instanceof BigUint64Array || arr.data instanceof Float32Array || arr.data instanceof Float64Array)
      throw new NuScenesError(`${file}: array "${name}" has dtype ${arr.dtype}, expected an 8/16/32-bit integer or bool array`, {
        file, token: sampleToken, field: name, expected: 'uint8', found: String(arr.dtype),
      });
    const src = arr.data;
    const u8 = new Uint8Array(X * Y * Z);
    const max = name === 'semantics' ? OCC_CLASSES.length - 1 : 1;
    for (let x = 0; x < X; x++)
      for (let y = 0; y < Y; y++)
        for (let z = 0; z < Z; z++) {
          const c = (x * Y + y) * Z + z;
          const v = src[arr.fortranOrder ? x + X * (y + Y * z) : c]!;
          if (v < 0 || v > max)
            throw new NuScenesError(`${file}: array "${name}" holds ${v} at [${x}, ${y}, ${z}], expected 0..${max}`, {
              file, token: sampleToken, field: name, expected: `0..${max}`, found: String(v),
            });
          u8[c] = v;
        }
    out[key] = u8;
  }
  return out;
}
