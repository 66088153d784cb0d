import * as tf from '@tensorflow/tfjs';
import type { RuleInput, RuleOutput, UpdateRule } from './rule';

/**
 * PyTorch `RMSprop`:
 *   s ← α·s + (1−α)·g²;  centered: a ← α·a + (1−α)·g, avg = √(s − a²) + eps;  else avg = √s + eps
 *   momentum > 0: buf ← momentum·buf + g/avg, w ← w − lr·buf;  else w ← w − lr·g/avg
 * Unlike tf.train.rmsprop, eps is added outside the square root, as in PyTorch.
 */
export const rmspropRule: UpdateRule = {
  slots: ['square', 'gradAvg', 'momentum'],
  decoupledStyle: 'additive',
  compute({ g, lr, group, slots }: RuleInput): RuleOutput {
    const a = group.alpha;
    const s0 = slots.square ?? tf.zerosLike(g);
    const square = tf.add(tf.mul(s0, tf.scalar(a)), tf.mul(tf.mul(g, tf.scalar(1 - a)), g));
    const out: Record<string, tf.Tensor> = { square };
    let avg: tf.Tensor;
    if (group.centered) {
      const ga0 = slots.gradAvg ?? tf.zerosLike(g);
      const gradAvg = tf.add(tf.mul(ga0, tf.scalar(a)), tf.mul(g, tf.scalar(1 - a)));
      out.gradAvg = gradAvg;
      avg = tf.add(tf.sqrt(tf.sub(square, tf.mul(gradAvg, gradAvg))), tf.scalar(group.eps));
    } else {
      avg = tf.add(tf.sqrt(square), tf.scalar(group.eps));
    }
    let d = tf.div(g, avg);
    if (group.momentum > 0) {
      const b0 = slots.momentum ?? tf.zerosLike(g);
      d = tf.add(tf.mul(b0, tf.scalar(group.momentum)), d);
      out.momentum = d;
    }
    return { delta: tf.mul(tf.scalar(lr), d), slots: out };
  },
};
