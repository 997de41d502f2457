/**
 * The camera branch of the LSS family, shared by the LSS detectors (BEVDet, BEVDet4D, BEVDepth) and the LSS occupancy
 * models (BEVDet-Occ, FlashOcc): image backbone (ResNet, two consecutive stages) → FPNForBEVDet → LSS view transform
 * with BEVPool (BEVDet's 1×1 depth net or BEVDepth's camera-aware DepthNet) into a BEV map or, with several z cells,
 * a voxel volume. The modules are registered on the owning model under BEVDet's names (`img_backbone`, `img_neck`,
 * `img_view_transformer`), so checkpoints of one family member load into another's image branch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeKernelTrace, traceInput, type Rng } from '@bevzoo/core';
import type { Module } from '../module.js';
import { ResNet } from '../layers/resnet.js';
import { FPNForBEVDet } from '../lss/img-neck.js';
import { LSSViewTransform, type LSSOutput } from '../lss/view-transform.js';
import { bevPoolIndexInputs, type BevPoolGrid, type BevPoolIndexTensors } from '../lss/bevpool.js';
import { cameraVector, CAMERA_VECTOR_SIZE } from '../lss/depth-net.js';
import type { CameraGeometry } from '../lss/frustum.js';
import type { CameraBranchConfig, CameraBranchLayout } from './lss-config.js';
import type { CameraFrameLike } from './lss-detector.js';

/**
 * The camera branch's parameter prefixes: what the LSS family's shipped starting weights hold (backbone, FPN, LSS depth
 * and context net), so that one member's image branch loads into another's.
 */
export const IMAGE_BRANCH_PREFIXES = ['img_backbone.', 'img_neck.', 'img_view_transformer.'] as const;

export interface CameraBranch {
  readonly img_backbone: ResNet;
  readonly img_neck: FPNForBEVDet;
  readonly img_view_transformer: LSSViewTransform;
}

/**
 * Build the camera branch of a config and register its three modules on `owner`; `grid` is the LSS output grid
 * (one z cell: a BEV map; several: a voxel volume). Each module draws its weights from `rng.fork(<its name>)`.
 */
export function createCameraBranch(owner: Module, config: CameraBranchConfig, layout: CameraBranchLayout, grid: BevPoolGrid, rng?: Rng): CameraBranch {
  const fork = (k: string) => rng?.fork(k);
  const b = config.backbone;
  const norm = config.norm;
  const img_backbone = owner.registerModule('img_backbone', new ResNet({
    block: b.block, layers: [...b.layers], widths: [...b.widths], stemWidth: b.stemWidth, outIndices: [...b.outIndices], norm, rng: fork('img_backbone'),
  }));
  const img_neck = owner.registerModule('img_neck', new FPNForBEVDet([...layout.backboneChannels], config.neck.outChannels, { rng: fork('img_neck') }));
  const vt = config.viewTransform;
  const dn = vt.depthNet;
  const img_view_transformer = owner.registerModule('img_view_transformer', new LSSViewTransform({
    inChannels: config.neck.outChannels, contextChannels: vt.contextChannels, imageSize: layout.imageSize, featureStride: layout.featureStride,
    depthBins: [...vt.depthBins], grid, pixelMode: vt.pixelMode, poolImpl: vt.poolImpl, numCameras: config.numCameras, rng: fork('img_view_transformer'),
    cameraAware: dn.type === 'camera-aware' ? { midChannels: dn.midChannels, blocks: dn.blocks, aspp: dn.aspp, norm } : undefined,
  }));
  return { img_backbone, img_neck, img_view_transformer };
}

/**
 * The tensors a keyframe's camera branch reads, made from the batch: the images [B·N, H, W, 3] and, under a kernel
 * trace, BEVPool's indices and the camera-aware depth net's camera vector, all reported as named inputs (see
 * `liftCameras`). A model may call it first under a trace, so that every input is reported before any layer runs (an
 * export's `captureFeeds` then stops there); the same data made again later is the same graph input.
 */
export function cameraInputs(branch: CameraBranch, frame: CameraFrameLike, bda: Float32Array, B: number, numCameras: number, imageSize: readonly [number, number], prefix = ''): { images: tf.Tensor4D; indices?: BevPoolIndexTensors; camera?: tf.Tensor2D } {
  const [H, W] = imageSize;
  const vt = branch.img_view_transformer;
  const geom: CameraGeometry = { intrinsics: frame.intrinsics, sensor2ego: frame.sensor2ego, postAug: frame.postAug, bda };
  const traced = activeKernelTrace() !== null;
  const indices = traced ? bevPoolIndexInputs(vt.plan(geom), prefix) : undefined;
  const camera = traced && vt.depth_net ? traceInput(`${prefix}camera_params`, () => tf.tensor2d(cameraVector(geom, numCameras), [B * numCameras, CAMERA_VECTOR_SIZE])) : undefined;
  const images = traceInput(`${prefix}images`, () => tf.tensor4d(frame.images, [B * numCameras, H, W, 3]));
  return { images, indices, camera };
}

/**
 * One keyframe through the camera branch: images [B·N, H, W, 3] → backbone → neck → LSS. Returns the lifted BEV map
 * [B, Y, X, C] (one z cell) or volume [B, Z, Y, X, C], and the depth distribution [B·N, fH, fW, D].
 *
 * Under a kernel trace (an ONNX export, `@bevzoo/onnx`), the batch data this frame reads are reported as named inputs
 * (core's `traceInput`) before any layer runs: `<prefix>bevpool.point_index|pixel_index|segment_ids` (BEVPool's indices,
 * computed on the host from the camera geometry and the BEV augmentation; their length varies with them), with the
 * camera-aware depth net `<prefix>camera_params` [B·N, 27] (`cameraVector`), and `<prefix>images` [B·N, H, W, 3].
 * `prefix`: '' for the keyframe, 'prev.' for a temporal model's previous keyframe.
 */
export function liftCameras(branch: CameraBranch, frame: CameraFrameLike, bda: Float32Array, B: number, numCameras: number, imageSize: readonly [number, number], prefix = ''): LSSOutput {
  return tf.tidy(() => {
    const vt = branch.img_view_transformer;
    const geom: CameraGeometry = { intrinsics: frame.intrinsics, sensor2ego: frame.sensor2ego, postAug: frame.postAug, bda };
    const { images, indices, camera } = cameraInputs(branch, frame, bda, B, numCameras, imageSize, prefix);
    const levels = branch.img_backbone.forward(images);
    const [feat] = branch.img_neck.forward(levels);
    const { bev, depth } = vt.forward(feat!, geom, { indices, camera });
    return { bev, depth };
  });
}
