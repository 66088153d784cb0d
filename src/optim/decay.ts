import * as tf from '@tensorflow/tfjs';
import type { DecayMode } from './types';

/**
 * Folds coupled or L1 decay into the gradient (PyTorch `d_p = d_p.add(param, alpha=wd)`).
 * Decoupled decay leaves the gradient alone; see `applyDecoupledDecay`.
 *
 * Equivalence with tfjs regularisers, for users moving from `tf.regularizers`:
 * a `tf.regularizers.l2({l2})` term adds l2·Σw² to the loss, whose gradient is 2·l2·w, so it gives
 * exactly the updates of `coupled` decay with weightDecay = 2·l2 (checked in test/optim/decay.test.ts).
 * `tf.regularizers.l1({l1})` matches `l1` mode with weightDecay = l1.
 */
export function decayGradient(g: tf.Tensor, w: tf.Tensor, wd: number, mode: DecayMode): tf.Tensor {
  if (wd === 0 || mode === 'decoupled') return g;
  if (mode === 'coupled') return tf.add(g, tf.mul(w, tf.scalar(wd)));
  return tf.add(g, tf.mul(tf.sign(w), tf.scalar(wd)));
}

/**
 * Weights after the rule's `delta` and decoupled decay (other modes: plain w − delta).
 * - `multiplicative`: w·(1 − lr·wd) − delta, PyTorch AdamW's `param.mul_(1 - lr*wd)` (used by adam/adamw to
 *   match PyTorch bit for bit).
 * - `additive`: w − (delta + (lr·wd)·w), i.e. W ← W − lr·v − lr·wd·W (SGDW/momentumW). Rounding 1 − lr·wd to
 *   float32 would lose most of a small decay (lr·wd ≈ 1e-6 is ~16 ulps of 1), so the decay is formed apart.
 */
export function applyUpdate(w: tf.Tensor, delta: tf.Tensor, lr: number, wd: number, mode: DecayMode, style: 'multiplicative' | 'additive'): tf.Tensor {
  if (wd === 0 || mode !== 'decoupled') return tf.sub(w, delta);
  if (style === 'multiplicative') return tf.sub(tf.mul(w, tf.scalar(1 - lr * wd)), delta);
  return tf.sub(w, tf.add(delta, tf.mul(tf.scalar(lr * wd), w)));
}
