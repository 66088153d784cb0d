import * as tf from '@tensorflow/tfjs';
import type { RuleInput, RuleOutput, UpdateRule } from './rule';

/** Plain SGD (PyTorch `SGD` with momentum 0): w ← w − lr·g. */
export const sgdRule: UpdateRule = {
  slots: [],
  decoupledStyle: 'additive',
  compute({ g, lr }: RuleInput): RuleOutput {
    return { delta: tf.mul(tf.scalar(lr), g), slots: {} };
  },
};

/**
 * PyTorch's heavy-ball update, buffer initialised to the first d_p (not zero-then-dampened):
 *   buf ← g (first step) | momentum·buf + (1 − dampening)·g
 *   d   ← nesterov ? g + momentum·buf : buf
 *   w   ← w − lr·d
 */
export function heavyBall(input: RuleInput, nesterov: boolean): RuleOutput {
  const { g, lr, group, slots } = input;
  const m = group.momentum;
  const prev = slots.momentum;
  let buf: tf.Tensor;
  if (prev === undefined) {
    buf = g.clone();
  } else {
    const scaledG = group.dampening === 0 ? g : tf.mul(tf.scalar(1 - group.dampening), g);
    buf = tf.add(tf.mul(prev, tf.scalar(m)), scaledG);
  }
  const d = nesterov ? tf.add(g, tf.mul(tf.scalar(m), buf)) : buf;
  return { delta: tf.mul(tf.scalar(lr), d), slots: { momentum: buf } };
}

export const momentumRule: UpdateRule = {
  slots: ['momentum'],
  decoupledStyle: 'additive',
  compute: (input) => heavyBall(input, false),
};

export const nesterovRule: UpdateRule = {
  slots: ['momentum'],
  decoupledStyle: 'additive',
  compute: (input) => heavyBall(input, true),
};
