import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { balancedOrder, balancedWeights, classCounts, imbalanceWarning, weightedTargets } from '../../src/data/balance';
import { rawBatches } from '../../src/data/batches';
import { Rng } from '../../src/data/rng';
import type { Example } from '../../src/data/source';
import { MemorySource } from '../helpers/memory-source';

/** n examples of each class count. */
const examples = (counts: number[]): Example[] => counts.flatMap((n, label) => Array.from({ length: n }, (_, i) => ({ key: `${label}:${i}`, label })));

/** −Σ_k q_k log softmax(z)_k. */
function ce(z: number[], q: number[]): number {
  const max = Math.max(...z);
  const lse = max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
  return -q.reduce((s, qk, k) => s + qk * (z[k] - lse), 0);
}

describe('class balance', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it("weights are sklearn's 'balanced': n_total / (k · n_c); a class with no image gets 0", () => {
    expect(classCounts(examples([6, 2, 4]), 3)).to.deep.equal([6, 2, 4]);
    // 12 images, 3 classes: 12/18, 12/6, 12/12
    const w = balancedWeights([6, 2, 4]);
    [2 / 3, 2, 1].forEach((v, i) => expect(w[i]).to.be.closeTo(v, 1e-12));
    // 4 images, 3 classes (one empty): 4/9, 0, 4/3
    expect(balancedWeights([3, 0, 1])).to.deep.equal([4 / 9, 0, 4 / 3]);
  });

  it('the weighted loss is the mean of w_label · CE per row (hand computation), with smoothing applied before the weight', () => {
    const logits = [
      [2, 0, -1],
      [0.5, 1.5, 0],
      [-1, 0, 3],
      [0, 0, 0],
    ];
    const labels = [0, 1, 2, 1];
    const weights = [2 / 3, 2, 1];
    for (const eps of [0, 0.1]) {
      const q = (l: number) => [0, 1, 2].map((k) => (k === l ? 1 - eps : 0) + eps / 3);
      const hand = logits.reduce((s, z, i) => s + weights[labels[i]] * ce(z, q(labels[i])), 0) / logits.length;
      const got = tf.tidy(() => {
        const y = weightedTargets(tf.oneHot(tf.tensor1d(labels, 'int32'), 3).toFloat() as tf.Tensor2D, weights, eps);
        return tf.losses.softmaxCrossEntropy(y, tf.tensor2d(logits)).dataSync()[0];
      });
      expect(got, `ε ${eps}`).to.be.closeTo(hand, 1e-6);
    }
    // without smoothing it is tfjs's per-example weighted cross-entropy (Keras's class_weight)
    const keras = tf.tidy(
      () =>
        tf.losses
          .softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), 3).toFloat(), tf.tensor2d(logits), tf.tensor1d(labels.map((l) => weights[l])))
          .dataSync()[0],
    );
    const ours = tf.tidy(
      () =>
        tf.losses
          .softmaxCrossEntropy(weightedTargets(tf.oneHot(tf.tensor1d(labels, 'int32'), 3).toFloat() as tf.Tensor2D, weights, 0), tf.tensor2d(logits))
          .dataSync()[0],
    );
    expect(ours).to.be.closeTo(keras, 1e-6);
    // a MixUp row carries the mixed weight: 0.25·w0 + 0.75·w2
    const mixed = tf.tidy(() => weightedTargets(tf.tensor2d([[0.25, 0, 0.75]]), weights, 0).arraySync());
    const wm = 0.25 * (2 / 3) + 0.75;
    mixed[0].forEach((v, k) => expect(v).to.be.closeTo([0.25 * wm, 0, 0.75 * wm][k], 1e-6));
  });

  it('the balanced sampler keeps the epoch length and draws every class equally often, with replacement', () => {
    const ex = examples([90, 10]);
    const rng = new Rng(3);
    const seen = [0, 0];
    const distinctMinor = new Set<string>();
    for (let epoch = 0; epoch < 20; epoch++) {
      const order = balancedOrder(rng, ex);
      expect(order).to.have.length(100);
      for (const e of order) {
        seen[e.label]++;
        if (e.label === 1) distinctMinor.add(e.key);
      }
    }
    // 2000 draws at 1/2 each: 1000 ± 3σ (σ ≈ 22)
    expect(seen[1]).to.be.within(934, 1066);
    expect(distinctMinor.size).to.equal(10);
    expect(balancedOrder(new Rng(3), ex)).to.deep.equal(balancedOrder(new Rng(3), ex));
    expect(balancedOrder(new Rng(3), ex)).to.not.deep.equal(balancedOrder(new Rng(4), ex));
  });

  it('a balanced pass is reproducible per seed and a resumed pass (skip) continues it exactly', async () => {
    const source = new MemorySource(['a', 'b'], 6, 0);
    const train = [...source.train.slice(0, 6), source.train[6]]; // 6 of class a, 1 of class b
    const pass = async (seed: number, skip = 0) => {
      const out: Array<{ keys: string[]; labels: number[] }> = [];
      for await (const b of rawBatches(source, train, { size: 4, batch: 2, shuffle: true, flip: true, balanced: true, skip }, new Rng(seed)))
        out.push({ keys: b.keys, labels: b.labels });
      return out;
    };
    const a = await pass(7);
    expect(a.flatMap((b) => b.labels)).to.have.length(7);
    expect(await pass(7)).to.deep.equal(a);
    expect(await pass(7, 2)).to.deep.equal(a.slice(2));
    expect(await pass(8)).to.not.deep.equal(a);
  });

  it('warns in one line when the largest class outnumbers the smallest more than 3 to 1, naming both', () => {
    expect(imbalanceWarning(['roses', 'tulips', 'daisy'], [31, 12, 10])).to.equal(
      'classes are imbalanced: "roses" has 31 training images and "daisy" 10 (3.1 to 1); consider data.balance: weights (class-weighted loss) or sampler (balanced sampling)',
    );
    expect(imbalanceWarning(['a', 'b'], [30, 10])).to.equal(null);
    expect(imbalanceWarning(['a', 'b'], [5, 0])).to.match(/"a" has 5 training images and "b" 0 \(the smaller has none\)/);
    expect(imbalanceWarning(['a'], [5])).to.equal(null);
  });
});
