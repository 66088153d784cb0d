import * as tf from '@tensorflow/tfjs';
import type { RuleInput, RuleOutput, UpdateRule } from './rule';

/**
 * PyTorch 1.13 `Adam` (single-tensor path, amsgrad off), operation by operation so float32 rounding
 * follows the reference:
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   denom = √v / √(1−β2^t) + eps;  w ← w − (lr / (1−β1^t)) · m/denom
 * The bias-correction scalars are computed in double precision, as Python does, then used as float32.
 * AdamW is this rule plus decoupled decay, which the optimizer applies before it.
 */
export const adamRule: UpdateRule = {
  slots: ['m', 'v'],
  decoupledStyle: 'multiplicative',
  compute({ g, lr, group, slots, step }: RuleInput): RuleOutput {
    const [b1, b2] = group.betas;
    const m0 = slots.m ?? tf.zerosLike(g);
    const v0 = slots.v ?? tf.zerosLike(g);
    const m = tf.add(tf.mul(m0, tf.scalar(b1)), tf.mul(g, tf.scalar(1 - b1)));
    const v = tf.add(tf.mul(v0, tf.scalar(b2)), tf.mul(tf.mul(g, tf.scalar(1 - b2)), g));
    const bc1 = 1 - b1 ** step;
    const bc2Sqrt = Math.sqrt(1 - b2 ** step);
    const denom = tf.add(tf.div(tf.sqrt(v), tf.scalar(bc2Sqrt)), tf.scalar(group.eps));
    const delta = tf.mul(tf.scalar(lr / bc1), tf.div(m, denom));
    return { delta, slots: { m, v } };
  },
};
