/**
 * The camera branch of the LSS family, shared by the LSS detectors (BEVDet, BEVDet4D, BEVDepth) and the LSS occupancy
 * models (BEVDet-Occ, FlashOcc): image backbone (ResNet, two consecutive stages) → FPNForBEVDet → LSS view transform
 * with BEVPool (BEVDet's 1×1 depth net or BEVDepth's camera-aware DepthNet) into a BEV map or, with several z cells,
 * a voxel volume. The modules are registered on the owning model under BEVDet's names (`img_backbone`, `img_neck`,
 * `img_view_transformer`), so checkpoints of one family member load into another's image branch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import type { Module } from '../module.js';
import { ResNet } from '../layers/resnet.js';
import { FPNForBEVDet } from '../lss/img-neck.js';
import { LSSViewTransform, type LSSOutput } from '../lss/view-transform.js';
import type { BevPoolGrid } from '../lss/bevpool.js';
import type { CameraGeometry } from '../lss/frustum.js';
import type { CameraBranchConfig, CameraBranchLayout } from './lss-config.js';
import type { CameraFrameLike } from './lss-detector.js';

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
 * One keyframe through the camera branch: images [B·N, H, W, 3] → backbone → neck → LSS. Returns the lifted BEV map
 * [B, Y, X, C] (one z cell) or volume [B, Z, Y, X, C], and the depth distribution [B·N, fH, fW, D].
 */
export function liftCameras(branch: CameraBranch, frame: CameraFrameLike, bda: Float32Array, B: number, numCameras: number, imageSize: readonly [number, number]): LSSOutput {
  const [H, W] = imageSize;
  return tf.tidy(() => {
    const levels = branch.img_backbone.forward(tf.tensor4d(frame.images, [B * numCameras, H, W, 3]));
    const [feat] = branch.img_neck.forward(levels);
    const geom: CameraGeometry = { intrinsics: frame.intrinsics, sensor2ego: frame.sensor2ego, postAug: frame.postAug, bda };
    const { bev, depth } = branch.img_view_transformer.forward(feat!, geom);
    return { bev, depth };
  });
}
