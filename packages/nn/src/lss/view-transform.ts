import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { Module } from '../module.js';
import { ShapeError } from '../errors.js';
import type { InitKind } from '../init.js';
import { Conv2d } from '../layers/conv2d.js';
import { CameraAwareDepthNet, cameraVector } from './depth-net.js';
import { createFrustum, geometryBatchSize, type CameraGeometry, type DepthBins, type Frustum } from './frustum.js';
import { bevPool, BevPoolPlanCache, gridCells, type BevPoolGrid, type BevPoolImpl, type BevPoolIndexTensors, type BevPoolPlan } from './bevpool.js';

export interface LSSViewTransformOptions {
  /** Channels of the image feature map (the neck output). */
  inChannels: number;
  /** Context channels C lifted into BEV (BEVDet's numC_Trans). */
  contextChannels: number;
  /** [H, W] of the network input image. */
  imageSize: [number, number];
  /** Image pixels per feature cell (16 in BEVDet). */
  featureStride: number;
  /** [start, stop, step] (BEVDet's dbound [1, 60, 1] → 59 bins). */
  depthBins: DepthBins;
  grid: BevPoolGrid;
  /** See `FrustumConfig.pixelMode` (default 'center'). */
  pixelMode?: 'center' | 'linspace';
  numCameras?: number;
  /** BEVPool implementation (default 'host'; see `bevPool`). */
  poolImpl?: BevPoolImpl;
  /**
   * BEVDepth's camera-aware DepthNet instead of BEVDet's 1×1 conv (keys `depth_net.*` instead of `depthnet.*`):
   * its width, residual blocks and ASPP.
   */
  cameraAware?: { midChannels: number; blocks?: number; aspp?: boolean; norm?: { eps?: number; momentum?: number } };
  /** Plans kept by the geometry cache (default 8). */
  planCacheSize?: number;
  init?: InitKind;
  rng?: Rng;
}

export interface LSSOutput {
  /** [B, Y, X, C] (rows = y cells) for one z cell; [B, Z, Y, X, C] otherwise. */
  bev: tf.Tensor;
  /** [B·N, fH, fW, D] depth distribution (softmax over the bins). */
  depth: tf.Tensor4D;
}

/**
 * BEVDet's LSS view transformer: `depthnet` (1×1 conv) → D depth logits + C context channels; softmax over depth;
 * each feature cell's context, weighted by each depth bin's probability, is sum-pooled into the BEV cell that
 * the frustum point (u, v, d) falls in (BEVPool). Keys: `depthnet.weight`, `depthnet.bias`; with `cameraAware`,
 * BEVDepth's camera-aware DepthNet `depth_net.*` (it reads the camera parameters and the BEV augmentation).
 */
export class LSSViewTransform extends Module {
  /** BEVDet's depth net (absent with `cameraAware`). */
  readonly depthnet: Conv2d | null;
  /** BEVDepth's camera-aware depth net (with `cameraAware`). */
  readonly depth_net: CameraAwareDepthNet | null;
  readonly frustum: Frustum;
  readonly grid: BevPoolGrid;
  /** Depth bins. */
  readonly D: number;
  readonly contextChannels: number;
  /** [X, Y, Z] BEV cells. */
  readonly cells: [number, number, number];
  readonly numCameras: number;
  readonly poolImpl: BevPoolImpl;
  readonly planCache: BevPoolPlanCache;

  constructor(readonly options: LSSViewTransformOptions) {
    super();
    this.frustum = createFrustum({ imageSize: options.imageSize, featureStride: options.featureStride, depthBins: options.depthBins, pixelMode: options.pixelMode });
    this.D = this.frustum.D;
    this.grid = { xbound: [...options.grid.xbound], ybound: [...options.grid.ybound], zbound: [...options.grid.zbound] };
    this.cells = gridCells(this.grid);
    this.contextChannels = options.contextChannels;
    this.numCameras = options.numCameras ?? 6;
    this.poolImpl = options.poolImpl ?? 'host';
    this.planCache = new BevPoolPlanCache(options.planCacheSize ?? 8);
    const ca = options.cameraAware;
    this.depthnet = ca ? null : this.registerModule('depthnet', new Conv2d(options.inChannels, this.D + options.contextChannels, 1, { init: options.init ?? 'default', rng: options.rng }));
    this.depth_net = ca
      ? this.registerModule('depth_net', new CameraAwareDepthNet({
        inChannels: options.inChannels, midChannels: ca.midChannels, contextChannels: options.contextChannels, depthBins: this.D, blocks: ca.blocks, aspp: ca.aspp, norm: ca.norm, rng: options.rng,
      }))
      : null;
  }

  /** The (cached) pooling plan of a camera geometry. */
  plan(geom: CameraGeometry): BevPoolPlan {
    return this.planCache.get(this.frustum, this.grid, geom, this.numCameras);
  }

  /**
   * x [B·N, fH, fW, inChannels] (camera-major within a sample) → BEV features and the depth distribution. `inputs`:
   * tensors already made from the geometry (under a kernel trace, the graph inputs of an export): BEVPool's indices for
   * this geometry's plan, and the camera-aware depth net's camera vector [B·N, 27].
   */
  forward(x: tf.Tensor4D, geom: CameraGeometry, inputs: { indices?: BevPoolIndexTensors; camera?: tf.Tensor2D } = {}): LSSOutput {
    const B = geometryBatchSize(geom, this.numCameras);
    const { fH, fW } = this.frustum;
    if (x.rank !== 4 || x.shape[0] !== B * this.numCameras || x.shape[1] !== fH || x.shape[2] !== fW)
      throw new ShapeError('LSSViewTransform', `[B·N = ${B * this.numCameras}, ${fH}, ${fW}, ${this.options.inChannels}] (image features at stride ${this.frustum.config.featureStride})`, `[${x.shape}]`);
    const plan = this.plan(geom);
    const [X, Y, Z] = this.cells;
    const C = this.contextChannels;
    return tf.tidy(() => {
      const raw = this.depth_net ? this.depth_net.forward(x, inputs.camera ?? cameraVector(geom, this.numCameras)) : this.depthnet!.forward(x);
      const [logits, context] = tf.split(raw, [this.D, C], 3) as [tf.Tensor4D, tf.Tensor4D];
      const depth = tf.softmax(logits) as tf.Tensor4D;
      const pooled = bevPool(depth, context, plan, this.poolImpl, inputs.indices);
      const bev = Z === 1 ? tf.reshape(pooled, [B, Y, X, C]) : tf.reshape(pooled, [B, Z, Y, X, C]);
      return { bev, depth };
    });
  }
}
