/**
 * Class imbalance: counts, sklearn's 'balanced' class weights for a weighted loss, a balanced sampler for the
 * data order, and the one-line warning a run gives when one class outnumbers another by more than 3 to 1.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from './rng';
import type { Example } from './source';

/** Training images per class label (0 for a class with none). */
export function classCounts(examples: Example[], classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const e of examples) counts[e.label]++;
  return counts;
}

/**
 * sklearn's compute_class_weight('balanced'): n_total / (k · n_c), so every class carries the same total weight and
 * the mean weight over the training images is 1. A class with no image gets 0 (it can never be a target).
 */
export function balancedWeights(counts: number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const k = counts.length;
  return counts.map((c) => (c > 0 ? total / (k * c) : 0));
}

/**
 * One epoch's order for the balanced sampler: as many draws as there are examples, each a class chosen uniformly
 * among the classes that have images, then an image uniformly within it (with replacement), two draws per image
 * from the run's RNG, so the order is checkpointed with it.
 */
export function balancedOrder(rng: Rng, examples: Example[]): Example[] {
  const byClass = new Map<number, Example[]>();
  for (const e of examples) byClass.set(e.label, [...(byClass.get(e.label) ?? []), e]);
  const groups = [...byClass.keys()].sort((a, b) => a - b).map((k) => byClass.get(k) as Example[]);
  if (groups.length === 0) return [];
  return examples.map(() => {
    const g = groups[rng.int(groups.length)];
    return g[rng.int(g.length)];
  });
}

/**
 * Targets for the class-weighted cross-entropy: each row scaled by its class weight (y·w, so a MixUp row gets the
 * mixed weight) after label smoothing. Cross-entropy is linear in the target, so the plain loss of these targets
 * is the mean of w_i·CE_i, which is Keras's class_weight and tfjs's weighted softmaxCrossEntropy; the smoothing is
 * done here because tfjs would smooth after the scaling.
 */
export function weightedTargets(y: tf.Tensor2D, weights: number[], smoothing: number): tf.Tensor2D {
  return tf.tidy(() => {
    const k = y.shape[1];
    const w = tf.matMul(y, tf.tensor2d(weights, [k, 1]));
    const smooth = smoothing > 0 ? tf.add(tf.mul(y, 1 - smoothing), smoothing / k) : y;
    return tf.mul(smooth, w) as tf.Tensor2D;
  });
}

/** Largest over smallest class count above which a run warns. */
export const IMBALANCE_RATIO = 3;

/** The one-line warning when the largest class outnumbers the smallest more than 3 to 1 (null otherwise). */
export function imbalanceWarning(classes: string[], counts: number[]): string | null {
  if (counts.length < 2) return null;
  let hi = 0;
  let lo = 0;
  counts.forEach((c, i) => {
    if (c > counts[hi]) hi = i;
    if (c < counts[lo]) lo = i;
  });
  if (counts[hi] <= IMBALANCE_RATIO * counts[lo]) return null;
  const ratio = counts[lo] > 0 ? `${(counts[hi] / counts[lo]).toFixed(1)} to 1` : 'the smaller has none';
  return (
    `classes are imbalanced: ${JSON.stringify(classes[hi])} has ${counts[hi]} training images and ${JSON.stringify(classes[lo])} ${counts[lo]} ` +
    `(${ratio}); consider data.balance: weights (class-weighted loss) or sampler (balanced sampling)`
  );
}
