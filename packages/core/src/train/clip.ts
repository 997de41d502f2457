import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradient clipping by global norm with torch.nn.utils.clip_grad_norm_ semantics: total = ‖(‖g₁‖, ‖g₂‖, …)‖ (the
 * p-norm, or the max for Infinity); every gradient is scaled by min(1, maxNorm / (total + 1e-6)). Returns new
 * gradient tensors (the caller disposes them and the inputs) and the total norm before clipping.
 */
export function clipGradNorm<K>(
  grads: ReadonlyMap<K, tf.Tensor>,
  maxNorm: number,
  normType = 2,
): { grads: Map<K, tf.Tensor>; totalNorm: number } {
  const totalNorm = gradNorm([...grads.values()], normType);
  const coef = Math.min(1, maxNorm / (totalNorm + 1e-6));
  const out = new Map<K, tf.Tensor>();
  for (const [k, g] of grads) out.set(k, tf.tidy(() => (coef < 1 ? tf.mul(g, coef) : tf.clone(g))));
  return { grads: out, totalNorm };
}

/**
 * Global norm of a list of tensors (as clip_grad_norm_ computes it), read back as a number. The per-tensor norms are
 * computed on the backend and combined here in float64, in list order: appending tensors whose gradient is zero (a
 * distiller's unused adapters) then leaves the total's bits unchanged, where one reduction over the stacked norms
 * would group its float32 partial sums differently.
 */
export function gradNorm(tensors: readonly tf.Tensor[], normType = 2): number {
  if (tensors.length === 0) return 0;
  const t = tf.tidy(() =>
    tf.stack(tensors.map((g) => (normType === Infinity ? tf.max(tf.abs(g)) : normType === 2 ? tf.sqrt(tf.sum(tf.square(g))) : tf.pow(tf.sum(tf.pow(tf.abs(g), normType)), 1 / normType)))),
  );
  const per = t.dataSync();
  t.dispose();
  if (normType === Infinity) return Math.max(...per);
  let s = 0;
  for (const v of per) s += normType === 2 ? v * v : Math.pow(v, normType);
  return normType === 2 ? Math.sqrt(s) : Math.pow(s, 1 / normType);
}
