import * as tf from '@tensorflow/tfjs-core';

/** Spatial attention A(F) = H·W·softmax over the cells of (mean_c |F_c| / τ), per sample. f [B, H, W, C] → [B, H, W, 1]. */
export function spatialAttention(f: tf.Tensor4D, tau: number): tf.Tensor4D {
  const [B, H, W] = f.shape;
  return tf.tidy(() => {
    const m = tf.reshape(tf.mean(tf.abs(f), 3), [B, H * W]);
    return tf.reshape(tf.mul(tf.softmax(tf.div(m, tau)), H * W), [B, H, W, 1]) as tf.Tensor4D;
  });
}

/** Channel attention A_c(F) = C·softmax over the channels of (mean over cells |F_c| / τ), per sample. f [B, H, W, C] → [B, 1, 1, C]. */
export function channelAttention(f: tf.Tensor4D, tau: number): tf.Tensor4D {
  const [B, , , C] = f.shape;
  return tf.tidy(() => {
    const m = tf.mean(tf.abs(f), [1, 2]);
    return tf.reshape(tf.mul(tf.softmax(tf.div(m, tau)), C), [B, 1, 1, C]) as tf.Tensor4D;
  });
}
