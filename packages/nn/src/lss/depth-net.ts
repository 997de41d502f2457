/**
 * BEVDepth's camera-aware DepthNet (the `DepthNet` of the BEVDet repository's LSSViewTransformerBEVDepth, BEVDepth's
 * own with the same structure): the camera's intrinsics, image augmentation, BEV augmentation and camera → ego
 * transform (27 numbers) go through BatchNorm1d and two MLPs into squeeze-and-excitation gates on the context and
 * the depth branch; the depth branch is residual blocks (+ ASPP) then a 1×1 conv to the depth bins. Keys follow the
 * reference: `reduce_conv.{0,1}`, `context_conv`, `bn`, `depth_mlp.fc{1,2}`, `depth_se.conv_{reduce,expand}`,
 * `context_mlp.*`, `context_se.*`, `depth_conv.{i}`. The reference's deformable conv after the ASPP is not built.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '@bevzoo/core';
import { ReLU } from '../layers/activation.js';
import { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from '../layers/batchnorm.js';
import { Conv2d } from '../layers/conv2d.js';
import { Linear } from '../layers/linear.js';
import { BasicBlock } from '../layers/resnet.js';
import { Module, Sequential, type UnaryModule } from '../module.js';
import { ShapeError } from '../errors.js';
import { geometryBatchSize, type CameraGeometry } from './frustum.js';

/** Numbers per camera of the DepthNet's camera input. */
export const CAMERA_VECTOR_SIZE = 27;

/**
 * The camera input of each image, [B·N, 27] (BEVDet's `get_mlp_input`): fx, fy, cx, cy; post_rot[0][0], [0][1],
 * post_tran[0], post_rot[1][0], [1][1], post_tran[1]; bda [0][0], [0][1], [1][0], [1][1], [2][2]; then the top
 * three rows of camera → ego (12).
 */
export function cameraVector(geom: CameraGeometry, numCameras: number): Float32Array {
  const B = geometryBatchSize(geom, numCameras);
  const out = new Float32Array(B * numCameras * CAMERA_VECTOR_SIZE);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < numCameras; n++) {
      const k = b * numCameras + n, o = k * CAMERA_VECTOR_SIZE;
      const K = (i: number) => geom.intrinsics[k * 9 + i]!;
      const P = (i: number) => (geom.postAug ? geom.postAug[k * 9 + i]! : i % 4 === 0 ? 1 : 0);
      const D = (i: number) => (geom.bda ? geom.bda[b * 9 + i]! : i % 4 === 0 ? 1 : 0);
      out.set([K(0), K(4), K(2), K(5), P(0), P(1), P(2), P(3), P(4), P(5), D(0), D(1), D(3), D(4), D(8)], o);
      for (let i = 0; i < 12; i++) out[o + 15 + i] = geom.sensor2ego[k * 16 + i]!;
    }
  return out;
}

/** Two linear layers with a ReLU between (timm's Mlp without dropout): keys `fc1`, `fc2`. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(inFeatures: number, hidden: number, outFeatures: number, rng?: Rng) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(inFeatures, hidden, { rng: rng?.fork('fc1') }));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, outFeatures, { rng: rng?.fork('fc2') }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(tf.relu(this.fc1.forward(x))));
  }
}

/** BEVDepth's SELayer: x · sigmoid(conv_expand(relu(conv_reduce(x_se)))), x_se [N, 1, 1, C] broadcast over the map. */
export class SELayer extends Module {
  readonly conv_reduce: Conv2d;
  readonly conv_expand: Conv2d;
  constructor(channels: number, rng?: Rng) {
    super();
    this.conv_reduce = this.registerModule('conv_reduce', new Conv2d(channels, channels, 1, { rng: rng?.fork('reduce') }));
    this.conv_expand = this.registerModule('conv_expand', new Conv2d(channels, channels, 1, { rng: rng?.fork('expand') }));
  }
  forward(x: tf.Tensor4D, xSe: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.mul(x, tf.sigmoid(this.conv_expand.forward(tf.relu(this.conv_reduce.forward(xSe))))) as tf.Tensor4D);
  }
}

/** One ASPP branch: dilated conv (no bias) → BN → ReLU; keys `atrous_conv`, `bn`. */
class AsppBranch extends Module implements UnaryModule {
  readonly atrous_conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(inC: number, outC: number, kernel: number, dilation: number, norm: BatchNormOptions, rng: Rng | undefined) {
    super();
    this.atrous_conv = this.registerModule('atrous_conv', new Conv2d(inC, outC, kernel, { padding: kernel === 1 ? 0 : dilation, dilation, bias: false, init: 'kaiming_normal', rng }));
    this.bn = this.registerModule('bn', new BatchNorm2d(outC, norm));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.relu(this.bn.forward(this.atrous_conv.forward(x))));
  }
}

/**
 * BEVDepth's ASPP: 1×1 and 3×3 convs at dilations 6, 12, 18, plus the image-level pooled feature, concatenated,
 * then 1×1 conv → BN → ReLU back to the input width. The reference's dropout (0.5) is left out.
 */
export class ASPP extends Module implements UnaryModule {
  readonly aspp1: AsppBranch;
  readonly aspp2: AsppBranch;
  readonly aspp3: AsppBranch;
  readonly aspp4: AsppBranch;
  readonly global_avg_pool: Sequential;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  constructor(inplanes: number, mid: number, norm: BatchNormOptions = {}, rng?: Rng) {
    super();
    const branch = (k: number, d: number, i: number) => new AsppBranch(inplanes, mid, k, d, norm, rng?.fork(`aspp${i}`));
    this.aspp1 = this.registerModule('aspp1', branch(1, 1, 1));
    this.aspp2 = this.registerModule('aspp2', branch(3, 6, 2));
    this.aspp3 = this.registerModule('aspp3', branch(3, 12, 3));
    this.aspp4 = this.registerModule('aspp4', branch(3, 18, 4));
    // Keys of nn.Sequential(AdaptiveAvgPool2d, Conv2d, BatchNorm2d, ReLU): the pool has none, so the conv is `.1`.
    this.global_avg_pool = this.registerModule('global_avg_pool', new Sequential(
      new GlobalAvgPool(), new Conv2d(inplanes, mid, 1, { bias: false, init: 'kaiming_normal', rng: rng?.fork('gap') }), new BatchNorm2d(mid, norm), new ReLU(),
    ));
    this.conv1 = this.registerModule('conv1', new Conv2d(5 * mid, inplanes, 1, { bias: false, init: 'kaiming_normal', rng: rng?.fork('conv1') }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(inplanes, norm));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [N, H, W] = x.shape;
      const pooled = tf.broadcastTo(this.global_avg_pool.forward(x), [N!, H!, W!, this.aspp1.bn.numFeatures]);
      const cat = tf.concat([this.aspp1.forward(x), this.aspp2.forward(x), this.aspp3.forward(x), this.aspp4.forward(x), pooled], 3);
      return tf.relu(this.bn1.forward(this.conv1.forward(cat)));
    });
  }
}

/** AdaptiveAvgPool2d(1) on NHWC: [N, H, W, C] → [N, 1, 1, C]. */
class GlobalAvgPool extends Module implements UnaryModule {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.mean(x, [1, 2], true);
  }
}

export interface CameraAwareDepthNetOptions {
  inChannels: number;
  midChannels: number;
  contextChannels: number;
  depthBins: number;
  /** Residual blocks of the depth branch (BEVDepth: 3). */
  blocks?: number;
  /** Add the ASPP after the blocks (BEVDepth: yes), with this many channels per branch (default midChannels). */
  aspp?: boolean;
  asppChannels?: number;
  norm?: BatchNormOptions;
  rng?: Rng;
}

/** The camera-aware DepthNet: (x [B·N, fH, fW, in], camera [B·N, 27]) → [B·N, fH, fW, D + C] (depth logits, then context). */
export class CameraAwareDepthNet extends Module {
  readonly reduce_conv: Sequential;
  readonly context_conv: Conv2d;
  readonly bn: BatchNorm1d;
  readonly depth_mlp: Mlp;
  readonly depth_se: SELayer;
  readonly context_mlp: Mlp;
  readonly context_se: SELayer;
  readonly depth_conv: Sequential;

  constructor(readonly options: CameraAwareDepthNetOptions) {
    super();
    const o = options, mid = o.midChannels, rng = o.rng, norm = o.norm ?? {};
    this.reduce_conv = this.registerModule('reduce_conv', new Sequential(
      new Conv2d(o.inChannels, mid, 3, { padding: 1, rng: rng?.fork('reduce') }), new BatchNorm2d(mid, norm), new ReLU(),
    ));
    this.context_conv = this.registerModule('context_conv', new Conv2d(mid, o.contextChannels, 1, { rng: rng?.fork('context') }));
    this.bn = this.registerModule('bn', new BatchNorm1d(CAMERA_VECTOR_SIZE, norm));
    this.depth_mlp = this.registerModule('depth_mlp', new Mlp(CAMERA_VECTOR_SIZE, mid, mid, rng?.fork('depth_mlp')));
    this.depth_se = this.registerModule('depth_se', new SELayer(mid, rng?.fork('depth_se')));
    this.context_mlp = this.registerModule('context_mlp', new Mlp(CAMERA_VECTOR_SIZE, mid, mid, rng?.fork('context_mlp')));
    this.context_se = this.registerModule('context_se', new SELayer(mid, rng?.fork('context_se')));
    const layers: UnaryModule[] = Array.from({ length: o.blocks ?? 3 }, (_, i) => new BasicBlock(mid, mid, { norm, rng: rng?.fork(`block${i}`) }));
    if (o.aspp ?? true) layers.push(new ASPP(mid, o.asppChannels ?? mid, norm, rng?.fork('aspp')));
    layers.push(new Conv2d(mid, o.depthBins, 1, { rng: rng?.fork('depth') }));
    this.depth_conv = this.registerModule('depth_conv', new Sequential(...layers));
  }

  /** x [N, H, W, C]; camera: `cameraVector` values [N, 27], or that tensor. */
  forward(x: tf.Tensor4D, camera: Float32Array | tf.Tensor2D): tf.Tensor4D {
    const N = x.shape[0];
    const size = camera instanceof tf.Tensor ? camera.size : camera.length;
    if (size !== N * CAMERA_VECTOR_SIZE) throw new ShapeError('CameraAwareDepthNet: camera', `[${N}, ${CAMERA_VECTOR_SIZE}]`, `${size} values`);
    return tf.tidy(() => {
      const cam = this.bn.forward(camera instanceof tf.Tensor ? tf.reshape(camera, [N, CAMERA_VECTOR_SIZE]) : tf.tensor2d(camera, [N, CAMERA_VECTOR_SIZE]));
      const feat = this.reduce_conv.forward(x) as tf.Tensor4D;
      const gate = (mlp: Mlp) => tf.reshape(mlp.forward(cam), [N, 1, 1, this.options.midChannels]) as tf.Tensor4D;
      const context = this.context_conv.forward(this.context_se.forward(feat, gate(this.context_mlp)));
      const depth = this.depth_conv.forward(this.depth_se.forward(feat, gate(this.depth_mlp)));
      return tf.concat([depth, context], 3) as tf.Tensor4D;
    });
  }
}
