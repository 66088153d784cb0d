import * as tf from '@tensorflow/tfjs';
import type { RuleInput, RuleOutput, UpdateRule } from './rule';
import { heavyBall } from './sgd';

/**
 * LARS (You, Gitman & Ginsburg 2017) in the form of NVIDIA's LARC wrapper around PyTorch SGD:
 * the gradient is scaled by a per-variable trust ratio, then the usual heavy-ball step runs with the
 * group's lr outside the momentum buffer (so a schedule change acts at once, as with `momentum`).
 *   local = η·‖w‖ / (‖g_raw‖ + wd·‖w‖)   for coupled decay (the paper's formula)
 *   local = η·‖w‖ / ‖g‖                  for decoupled / L1 decay (g as the update sees it)
 *   local = 1 when ‖w‖ or the denominator is 0 (fresh zero-initialised biases), or when the group
 *   is not `adaptive` (biases and norm parameters by default).
 *   buf ← momentum·buf + local·g;  w ← w − lr·buf
 * The ratio stays on the device: no host read per variable.
 */
export const larsRule: UpdateRule = {
  slots: ['momentum'],
  decoupledStyle: 'additive',
  compute(input: RuleInput): RuleOutput {
    const { w, g, gRaw, group } = input;
    if (!group.adaptive) return heavyBall(input, false);
    const wNorm = tf.norm(w);
    const denom = group.decayMode === 'coupled' ? tf.add(tf.norm(gRaw), tf.mul(tf.scalar(group.weightDecay), wNorm)) : tf.norm(g);
    const usable = tf.logicalAnd(tf.greater(wNorm, 0), tf.greater(denom, 0));
    // Divide by 1 where the ratio is unusable, so no NaN/Inf is ever formed.
    const safeDenom = tf.where(usable, denom, tf.onesLike(denom));
    const ratio = tf.where(usable, tf.div(tf.mul(tf.scalar(group.trustCoefficient), wNorm), safeDenom), tf.onesLike(denom));
    return heavyBall({ ...input, g: tf.mul(g, ratio) }, false);
  },
};
