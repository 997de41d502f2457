/**
 * A Frame: everything a model needs from one keyframe sample — six decoded camera images with calibration, the
 * multi-sweep LiDAR cloud, GT boxes in the keyframe ego frame, the previous keyframe and Occ3D labels.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LIDAR_POINT_FEATURES, MVP_POINT_FEATURES, composeTransforms, hashString, invertTransform, quatInverse, quatMultiply, quatNormalize, quatRotate, quatYaw,
  transformToMatrix4, type Mat3, type Quat, type RigidTransform, type Vec3,
} from '@bevzoo/core';
import { FrameCache, type CacheCodec } from './cache.js';
import { NuScenesError } from './errors.js';
import { decodeImage, parsePcdBin, readDataFile, resizeRgb, resizeTransform, warpAffineNearest, type ResizeMode } from './io.js';
import { segmentPathFor } from './synth/meta.js';
import { decodePng } from './synth/png.js';
import { loadOccLabels, type OccLabels } from './occ.js';
import { DEFAULT_NUM_VIRTUAL, PAINT_FEATURES, VIRTUAL_POINT_VALUES, type SweepVirtualPoints } from './mvp/virtual.js';
import { readVirtualPoints, virtualPointsFile, virtualPointsKey } from './mvp/virtual-cache.js';
import type { NuScenes } from './reader.js';
import {
  CAMERA_CHANNELS, DETECTION_CLASSES, LIDAR_CHANNEL, categoryToDetectionName,
  type CameraChannel, type DetectionClass,
} from './tables.js';

export interface LoadFrameOptions {
  /** Output image size [H, W]; default: each image's own size (no resize). */
  imageSize?: readonly [number, number];
  /** 'crop' (default; BEVDet's test-time resize: scale to cover, crop width centred, keep the bottom rows) or 'stretch'. */
  resizeMode?: ResizeMode;
  /** Previous LiDAR sweeps to add to the keyframe (default 9, i.e. 10 clouds in all). */
  sweeps?: number;
  /** Drop points with |x| < r and |y| < r in their own sensor frame, as the devkit's remove_close (default 1.0; 0 keeps all). */
  minDistance?: number;
  /** An Occ3D `gts` folder: labels are read from `<gts>/<scene_name>/<sample_token>/labels.npz`. */
  occGts?: string;
  /** Load the camera images (default true). */
  cameras?: boolean;
  /** Load the LiDAR sweeps (default true). */
  lidar?: boolean;
  /** Shared cache of decoded images and assembled points. */
  cache?: FrameCache;
  /**
   * Load each camera's segment-id map (with the cameras): `segments/<CHANNEL>/<image name>.png` beside `samples/`
   * (`segmentPathFor`), a 16-bit gray PNG of the image's size, resized as the image is (nearest neighbour).
   */
  segments?: boolean;
  /**
   * Points with MVP's paintings and virtual points (`MVP_POINT_FEATURES` = 17 values each, see `LidarFrame.points`),
   * read from the virtual-point cache (`prepareVirtualPoints`; a missing file is a NuScenesError naming it). An object
   * gives the `numVirtual` the cache was prepared with (default 50).
   */
  virtualPoints?: boolean | { numVirtual?: number };
}

export interface CameraFrame {
  channel: CameraChannel;
  sampleDataToken: string;
  /** Absolute path of the image file. */
  path: string;
  timestamp: number;
  /** Size of `image`. */
  height: number;
  width: number;
  /** Size of the file's image [H, W]. */
  originalSize: [number, number];
  /** RGB, HWC, uint8, height·width·3. */
  image: Uint8Array;
  /** 3×3 row-major intrinsics adjusted to `image` (pixel centres at integer coordinates). */
  intrinsics: Mat3;
  /** camera → ego (the camera's own ego pose). */
  sensor2ego: RigidTransform;
  sensor2egoMatrix: number[];
  /** ego → global at the camera's timestamp. */
  ego2global: RigidTransform;
  /** camera → keyframe ego (LIDAR_TOP ego pose), through the global frame; BEVDet's sensor2keyego. */
  sensor2keyEgo: RigidTransform;
  sensor2keyEgoMatrix: number[];
  /** With `segments`: the segment id of every pixel of `image` (height·width; 0 = no segment). */
  segments?: Int32Array;
}

export interface LidarFrame {
  sampleDataToken: string;
  timestamp: number;
  /**
   * x, y, z, intensity, Δt (s, keyframe minus sweep) per point, in the keyframe LiDAR frame. With `virtualPoints`
   * 17 values: those 5, the class one-hot (10, DETECTION_CLASSES order), the mask score and the virtual flag; per
   * sweep its real points (painted, or one-hot and score 0 outside every mask; flag 0), then its virtual points
   * (intensity 0, the sweep's Δt, flag 1).
   */
  points: Float32Array;
  /** Values per point: LIDAR_POINT_FEATURES (5), or MVP_POINT_FEATURES (17) with `virtualPoints`. */
  pointFeatures: number;
  numPoints: number;
  /** Previous sweeps actually found (≤ the requested number at the start of a scene). */
  sweepsUsed: number;
}

export interface FrameBox {
  token: string;
  instanceToken: string;
  categoryName: string;
  detectionName: DetectionClass;
  /** Index into DETECTION_CLASSES. */
  label: number;
  /** The annotation's attribute name, '' when it has none. */
  attributeName: string;
  /** Centre in the keyframe ego frame. */
  center: Vec3;
  /** width, length, height */
  size: Vec3;
  yaw: number;
  /** Full rotation in the ego frame. */
  rotation: Quat;
  /** (vx, vy) in the ego frame, m/s; NaN when the devkit's box_velocity gives none. */
  velocity: [number, number];
  numLidarPts: number;
  numRadarPts: number;
  visibilityToken: string;
}

export interface Frame {
  sampleToken: string;
  sceneToken: string;
  sceneName: string;
  /** Sample timestamp, µs. */
  timestamp: number;
  /** Keyframe LIDAR_TOP sample_data token; its ego pose defines the frame's ego frame. */
  lidarToken: string;
  /** ego → global of the LiDAR keyframe. */
  ego2global: RigidTransform;
  ego2globalMatrix: number[];
  /** LiDAR → ego of the keyframe. */
  lidar2ego: RigidTransform;
  lidar2egoMatrix: number[];
  /** In CAMERA_CHANNELS order; empty when cameras were not requested. */
  cameras: CameraFrame[];
  lidar?: LidarFrame;
  /** Mapped GT boxes (unmapped categories dropped), in sample.anns order. */
  boxes: FrameBox[];
  /** The previous keyframe of the scene, null for the first. */
  prevSampleToken: string | null;
  /** current ego ← previous ego (LiDAR keyframe poses); null without a previous keyframe. */
  egoFromPrev: RigidTransform | null;
  egoFromPrevMatrix: number[] | null;
  /** Seconds between the previous and the current sample, null without one. */
  dtPrev: number | null;
  occ?: OccLabels;
}

/** Decoded + resized camera images of one sample (the cached part). */
interface CameraImages {
  images: Uint8Array[];
  sizes: { width: number; height: number; originalWidth: number; originalHeight: number; intrinsics: Mat3 }[];
}

const cameraCodec: CacheCodec<CameraImages> = {
  encode: (v) => ({ meta: v.sizes, arrays: v.images }),
  decode: (meta, arrays) => ({ sizes: meta as CameraImages['sizes'], images: arrays as Uint8Array[] }),
};
/** Segment ids stored as their bytes (the cache holds u8 / f32 arrays). */
const segmentCodec: CacheCodec<Int32Array[]> = {
  encode: (v) => ({ meta: null, arrays: v.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)) }),
  decode: (_meta, arrays) => arrays.map((a) => (a.byteOffset % 4 === 0 ? new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4) : new Int32Array(a.slice().buffer))),
};
const pointsCodec: CacheCodec<{ points: Float32Array; sweepsUsed: number }> = {
  encode: (v) => ({ meta: { sweepsUsed: v.sweepsUsed }, arrays: [v.points] }),
  decode: (meta, arrays) => ({ points: arrays[0] as Float32Array, sweepsUsed: (meta as { sweepsUsed: number }).sweepsUsed }),
};

const tf = (t: { rotation: Quat; translation: Vec3 }): RigidTransform => ({ rotation: [...t.rotation], translation: [...t.translation] });

/** Load one keyframe sample as a Frame. */
export async function loadFrame(nusc: NuScenes, sampleToken: string, opts: LoadFrameOptions = {}): Promise<Frame> {
  const sample = nusc.get('sample', sampleToken);
  const scene = nusc.get('scene', sample.scene_token);
  const lidarToken = nusc.sampleDataToken(sampleToken, LIDAR_CHANNEL);
  const ego2global = nusc.egoPose(lidarToken);
  const lidar2ego = nusc.calibratedSensor(lidarToken).transform;
  const globalToEgo = invertTransform(ego2global);
  const ns = hashString(`${nusc.dataroot}|${nusc.version}`).toString(16);

  // Cameras.
  const cameras: CameraFrame[] = [];
  if (opts.cameras ?? true) {
    const tokens = CAMERA_CHANNELS.map((ch) => nusc.sampleDataToken(sampleToken, ch));
    const size = opts.imageSize;
    const mode = opts.resizeMode ?? 'crop';
    const compute = () => loadCameraImages(nusc, tokens, size, mode, opts.cache);
    const imgs = opts.cache
      ? await opts.cache.get(`cams/${ns}-${size ? `${size[0]}x${size[1]}` : 'orig'}-${mode}/${sampleToken}`, cameraCodec, compute)
      : await compute();
    const segs = opts.segments
      ? await (opts.cache
        ? opts.cache.get(`segs/${ns}-${size ? `${size[0]}x${size[1]}` : 'orig'}-${mode}/${sampleToken}`, segmentCodec, () => loadSegmentMaps(nusc, tokens, size, mode))
        : loadSegmentMaps(nusc, tokens, size, mode))
      : null;
    CAMERA_CHANNELS.forEach((channel, i) => {
      const sdToken = tokens[i]!;
      const sd = nusc.get('sample_data', sdToken);
      const cal = nusc.calibratedSensor(sdToken);
      const camEgo2global = nusc.egoPose(sdToken);
      const sensor2keyEgo = composeTransforms(globalToEgo, composeTransforms(camEgo2global, cal.transform));
      const s = imgs.sizes[i]!;
      cameras.push({
        channel, sampleDataToken: sdToken, path: nusc.getSampleDataPath(sdToken), timestamp: sd.timestamp,
        height: s.height, width: s.width, originalSize: [s.originalHeight, s.originalWidth], image: imgs.images[i]!,
        intrinsics: s.intrinsics,
        sensor2ego: cal.transform, sensor2egoMatrix: transformToMatrix4(cal.transform),
        ego2global: camEgo2global,
        sensor2keyEgo, sensor2keyEgoMatrix: transformToMatrix4(sensor2keyEgo),
        ...(segs ? { segments: segs[i]! } : {}),
      });
    });
  }

  // LiDAR.
  let lidar: LidarFrame | undefined;
  if (opts.lidar ?? true) {
    const sweeps = opts.sweeps ?? 9;
    const minDistance = opts.minDistance ?? 1.0;
    const vp = opts.virtualPoints;
    const virtualKey = vp ? await virtualPointsKey(nusc, (typeof vp === 'object' ? vp.numVirtual : undefined) ?? DEFAULT_NUM_VIRTUAL) : null;
    const F = virtualKey ? MVP_POINT_FEATURES : LIDAR_POINT_FEATURES;
    const compute = () => loadSweeps(nusc, lidarToken, sweeps, minDistance, opts.cache, virtualKey);
    const r = opts.cache
      ? await opts.cache.get(`points/${ns}-s${sweeps}-d${minDistance}${virtualKey ? `-vp${virtualKey}` : ''}/${sampleToken}`, pointsCodec, compute)
      : await compute();
    lidar = {
      sampleDataToken: lidarToken, timestamp: nusc.get('sample_data', lidarToken).timestamp, points: r.points, pointFeatures: F,
      numPoints: r.points.length / F, sweepsUsed: r.sweepsUsed,
    };
  }

  // Boxes in the keyframe ego frame.
  const boxes: FrameBox[] = [];
  const egoRotInv = quatNormalize(quatInverse(ego2global.rotation));
  for (const annToken of sample.anns!) {
    const a = nusc.get('sample_annotation', annToken);
    const detectionName = categoryToDetectionName(a.category_name!);
    if (!detectionName) continue;
    if (a.attribute_tokens.length > 1)
      throw new NuScenesError(`sample_annotation ${a.token} has ${a.attribute_tokens.length} attributes; a GT box must have at most one`, {
        table: 'sample_annotation', token: a.token, field: 'attribute_tokens', expected: 'at most one attribute', found: String(a.attribute_tokens.length),
      });
    const attributeName = a.attribute_tokens.length === 1 ? nusc.get('attribute', a.attribute_tokens[0]!).name : '';
    const center = quatRotate(egoRotInv, [
      a.translation[0] - ego2global.translation[0], a.translation[1] - ego2global.translation[1], a.translation[2] - ego2global.translation[2],
    ]);
    const rotation = quatMultiply(egoRotInv, a.rotation);
    const vg = nusc.boxVelocity(a.token);
    // As mmdet3d's converter: (vx, vy, 0) global → ego, keep x, y.
    const ve = quatRotate(egoRotInv, [vg[0], vg[1], 0]);
    boxes.push({
      token: a.token, instanceToken: a.instance_token, categoryName: a.category_name!, detectionName,
      label: DETECTION_CLASSES.indexOf(detectionName), attributeName,
      center, size: [...a.size], yaw: quatYaw(rotation), rotation, velocity: [ve[0], ve[1]],
      numLidarPts: a.num_lidar_pts, numRadarPts: a.num_radar_pts, visibilityToken: a.visibility_token,
    });
  }

  // Previous keyframe and ego motion.
  let egoFromPrev: RigidTransform | null = null, dtPrev: number | null = null;
  const prevSampleToken = sample.prev === '' ? null : sample.prev;
  if (prevSampleToken) {
    const prevPose = nusc.egoPose(nusc.sampleDataToken(prevSampleToken, LIDAR_CHANNEL));
    egoFromPrev = composeTransforms(globalToEgo, prevPose);
    dtPrev = 1e-6 * sample.timestamp - 1e-6 * nusc.get('sample', prevSampleToken).timestamp;
  }

  const occ = opts.occGts ? await loadOccLabels(join(opts.occGts, scene.name, sampleToken, 'labels.npz'), sampleToken) : undefined;

  return {
    sampleToken, sceneToken: scene.token, sceneName: scene.name, timestamp: sample.timestamp, lidarToken,
    ego2global: tf(ego2global), ego2globalMatrix: transformToMatrix4(ego2global),
    lidar2ego: tf(lidar2ego), lidar2egoMatrix: transformToMatrix4(lidar2ego),
    cameras, lidar, boxes, prevSampleToken,
    egoFromPrev, egoFromPrevMatrix: egoFromPrev ? transformToMatrix4(egoFromPrev) : null, dtPrev, occ,
  };
}

async function loadCameraImages(
  nusc: NuScenes, tokens: string[], size: readonly [number, number] | undefined, mode: ResizeMode, cache: FrameCache | undefined,
): Promise<CameraImages> {
  const files = await Promise.all(tokens.map((t) => readDataFile(nusc.getSampleDataPath(t), { table: 'sample_data', token: t, field: 'filename' })));
  const images: Uint8Array[] = [];
  const sizes: CameraImages['sizes'] = [];
  tokens.forEach((t, i) => {
    const sd = nusc.get('sample_data', t);
    const path = nusc.getSampleDataPath(t);
    const img = decodeImage(files[i]!, path, { table: 'sample_data', token: t, field: 'filename' });
    if (cache) cache.stats.decodes++;
    if ((sd.width && sd.width !== img.width) || (sd.height && sd.height !== img.height))
      throw new NuScenesError(`${path}: image is ${img.width}×${img.height} but sample_data ${t} says ${sd.width}×${sd.height}`, {
        file: path, table: 'sample_data', token: t, field: 'width/height', expected: `${sd.width}×${sd.height}`, found: `${img.width}×${img.height}`,
      });
    const K = nusc.calibratedSensor(t).intrinsic;
    if (!K)
      throw new NuScenesError(`calibrated_sensor of sample_data ${t} has no camera_intrinsic`, {
        table: 'calibrated_sensor', token: sd.calibrated_sensor_token, field: 'camera_intrinsic', expected: 'a 3×3 matrix', found: '[]',
      });
    const outH = size ? size[0] : img.height, outW = size ? size[1] : img.width;
    const r = resizeRgb(img, outW, outH, mode);
    // K' = A·K with A = [sx 0 tx; 0 sy ty; 0 0 1]
    const intrinsics: Mat3 = [
      r.sx * K[0] + r.tx * K[6], r.sx * K[1] + r.tx * K[7], r.sx * K[2] + r.tx * K[8],
      r.sy * K[3] + r.ty * K[6], r.sy * K[4] + r.ty * K[7], r.sy * K[5] + r.ty * K[8],
      K[6], K[7], K[8],
    ];
    images.push(r.image.data);
    sizes.push({ width: outW, height: outH, originalWidth: img.width, originalHeight: img.height, intrinsics });
  });
  return { images, sizes };
}

/**
 * The segment-id maps of a sample's cameras (`segmentPathFor` of each image's filename), brought to the output size
 * with the images' resize (nearest neighbour). A missing or malformed PNG is a NuScenesError naming the file.
 */
async function loadSegmentMaps(nusc: NuScenes, tokens: string[], size: readonly [number, number] | undefined, mode: ResizeMode): Promise<Int32Array[]> {
  return Promise.all(tokens.map(async (t) => {
    const sd = nusc.get('sample_data', t);
    const rel = segmentPathFor(sd.filename);
    const file = join(nusc.dataroot, rel);
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new NuScenesError(
        `Missing segment map ${file} for image ${sd.filename} (sample_data ${t}): data.segments reads one 16-bit gray PNG of segment ids per camera image at ` +
          `segments/<CHANNEL>/<image name>.png beside samples/ (for real nuScenes, SAM masks; see the @bevzoo/nuscenes README)${err.code === 'ENOENT' ? '' : `: ${err.message}`}`,
        { file, table: 'sample_data', token: t, field: 'segments', expected: 'a 16-bit grayscale PNG of segment ids' },
      );
    }
    const img = decodePng(buf, file);
    if (img.channels !== 1 || img.bitDepth !== 16)
      throw new NuScenesError(`${file}: expected a 16-bit grayscale segment PNG, found ${img.channels} channel(s) at ${img.bitDepth} bit`, {
        file, table: 'sample_data', token: t, field: 'segments', expected: '1 channel, 16 bit', found: `${img.channels} channel(s), ${img.bitDepth} bit`,
      });
    if ((sd.width && sd.width !== img.width) || (sd.height && sd.height !== img.height))
      throw new NuScenesError(`${file}: segment map is ${img.width}×${img.height} but its image (sample_data ${t}) is ${sd.width}×${sd.height}`, {
        file, table: 'sample_data', token: t, field: 'segments', expected: `${sd.width}×${sd.height}`, found: `${img.width}×${img.height}`,
      });
    const outH = size ? size[0] : img.height, outW = size ? size[1] : img.width;
    const r = resizeTransform(img.width, img.height, outW, outH, mode);
    return warpAffineNearest(img.data, img.width, img.height, outW, outH, [1 / r.sx, 0, -r.tx / r.sx, 0, 1 / r.sy, -r.ty / r.sy]);
  }));
}

/**
 * The devkit's LidarPointCloud.from_file_multisweep(chan = ref_chan = LIDAR_TOP, nsweeps = sweeps + 1): each cloud
 * (close points removed) moved sensor → its ego → global → keyframe ego → keyframe LiDAR, with Δt = keyframe time −
 * sweep time in seconds. Output x, y, z, intensity, Δt. With `virtualKey` (the virtual-point cache folder's key) each
 * point also gets its painting (one-hot, score) and flag 0, and each sweep's virtual points follow its real points
 * (same transform, remove_close and Δt; intensity 0, flag 1).
 */
async function loadSweeps(
  nusc: NuScenes, lidarToken: string, sweeps: number, minDistance: number, cache: FrameCache | undefined, virtualKey: string | null,
): Promise<{ points: Float32Array; sweepsUsed: number }> {
  const ref = nusc.get('sample_data', lidarToken);
  const refFromGlobal = invertTransform(composeTransforms(nusc.egoPose(lidarToken), nusc.calibratedSensor(lidarToken).transform));
  const refTime = 1e-6 * ref.timestamp;
  const chain = [ref];
  while (chain.length <= sweeps && chain[chain.length - 1]!.prev !== '') chain.push(nusc.get('sample_data', chain[chain.length - 1]!.prev));
  const files = await Promise.all(chain.map((sd) => readDataFile(join(nusc.dataroot, sd.filename), { table: 'sample_data', token: sd.token, field: 'filename' })));
  const raws = chain.map((sd, k) => parsePcdBin(files[k]!, join(nusc.dataroot, sd.filename), { table: 'sample_data', token: sd.token, field: 'filename' }));
  const virtualDir = virtualKey ? join(nusc.dataroot, 'virtual_points', virtualKey) : null;
  const virtual: (SweepVirtualPoints | null)[] = virtualDir
    ? await Promise.all(chain.map((sd, k) => readVirtualPoints(virtualPointsFile(virtualDir, sd.filename), raws[k]!.length / 5, { token: sd.token, lidarFile: sd.filename })))
    : chain.map(() => null);
  const F = virtualKey ? MVP_POINT_FEATURES : LIDAR_POINT_FEATURES;
  const clouds: Float32Array[] = [];
  let total = 0;
  chain.forEach((sd, k) => {
    const raw = raws[k]!, v = virtual[k]!;
    if (cache) cache.stats.pointFiles++;
    const m = transformToMatrix4(composeTransforms(refFromGlobal, composeTransforms(nusc.egoPose(sd.token), nusc.calibratedSensor(sd.token).transform)));
    const lag = refTime - 1e-6 * sd.timestamp;
    const n = raw.length / 5;
    const nv = v ? v.virtual.length / VIRTUAL_POINT_VALUES : 0;
    const out = new Float32Array((n + nv) * F);
    let j = 0;
    /** Write one point (sensor-frame xyz) at `j` unless remove_close drops it; true when written. */
    const put = (x: number, y: number, z: number, intensity: number): boolean => {
      if (Math.abs(x) < minDistance && Math.abs(y) < minDistance) return false;
      out[j] = m[0]! * x + m[1]! * y + m[2]! * z + m[3]!;
      out[j + 1] = m[4]! * x + m[5]! * y + m[6]! * z + m[7]!;
      out[j + 2] = m[8]! * x + m[9]! * y + m[10]! * z + m[11]!;
      out[j + 3] = intensity;
      out[j + 4] = lag;
      return true;
    };
    let p = 0; // next painted point of v
    for (let i = 0; i < n; i++) {
      if (!put(raw[i * 5]!, raw[i * 5 + 1]!, raw[i * 5 + 2]!, raw[i * 5 + 3]!)) continue;
      if (v) {
        while (p < v.paintedIndex.length && v.paintedIndex[p]! < i) p++;
        if (p < v.paintedIndex.length && v.paintedIndex[p] === i) out.set(v.painting.subarray(p * PAINT_FEATURES, (p + 1) * PAINT_FEATURES), j + LIDAR_POINT_FEATURES);
      }
      j += F;
    }
    if (v)
      for (let q = 0; q < nv; q++) {
        const o = q * VIRTUAL_POINT_VALUES;
        if (!put(v.virtual[o]!, v.virtual[o + 1]!, v.virtual[o + 2]!, 0)) continue;
        out.set(v.virtual.subarray(o + 3, o + VIRTUAL_POINT_VALUES), j + LIDAR_POINT_FEATURES);
        out[j + F - 1] = 1;
        j += F;
      }
    clouds.push(out.subarray(0, j));
    total += j;
  });
  const points = new Float32Array(total);
  let o = 0;
  for (const c of clouds) {
    points.set(c, o);
    o += c.length;
  }
  return { points, sweepsUsed: chain.length - 1 };
}
