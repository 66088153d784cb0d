import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { preprocessBatch } from '../../src/data/preprocess';
import { Trainer } from '../../src/train/trainer';
import { tinyTrainerOptions } from '../helpers/trainer';
import { dataContainer, MemorySource } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

/** −Σ_k q_k log softmax(z)_k with q = (1 − ε)·onehot + ε/K, averaged over rows: PyTorch's CrossEntropyLoss(label_smoothing=ε). */
function smoothedCrossEntropy(logits: number[][], labels: number[], eps: number): number {
  let sum = 0;
  for (let r = 0; r < logits.length; r++) {
    const z = logits[r];
    const max = Math.max(...z);
    const lse = max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
    const K = z.length;
    for (let k = 0; k < K; k++) sum -= ((k === labels[r] ? 1 - eps : 0) + eps / K) * (z[k] - lse);
  }
  return sum / logits.length;
}

describe('label smoothing', function () {
  this.timeout(300000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('matches a hand computation on three logits', () => {
    // z = [2, 0, −1], class 0, ε = 0.1: log-softmax = z − log(e² + 1 + e⁻¹)
    const lse = Math.log(Math.exp(2) + 1 + Math.exp(-1));
    const hand = -((0.9 + 0.1 / 3) * (2 - lse) + (0.1 / 3) * (0 - lse) + (0.1 / 3) * (-1 - lse));
    expect(smoothedCrossEntropy([[2, 0, -1]], [0], 0.1)).to.be.closeTo(hand, 1e-12);
    const tfLoss = tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.tensor2d([[1, 0, 0]]), tf.tensor2d([[2, 0, -1]]), undefined, 0.1).dataSync()[0]);
    expect(tfLoss).to.be.closeTo(hand, 1e-6);
  });

  for (const eps of [0, 0.1, 0.3]) {
    it(`the trainer's first-step loss is the smoothed cross-entropy of its logits (ε = ${eps}), no tensor left behind`, async () => {
      const source = new MemorySource(['a', 'b', 'c'], 4, 0);
      const p = await prepare(
        // one batch of every image, BN frozen, no dropout, no flips: the step-0 loss is a function of the weights alone
        {
          model: { size: 32, batchNorm: 'frozen', dropout: 0 },
          data: { flip: false },
          loss: { labelSmoothing: eps },
          train: { epochs: 1, batch: 12, seed: 5 },
          backend: 'cpu',
          out: tmpDir(),
        } as JobInput,
        { log: () => undefined, container: dataContainer(() => source) },
      );
      const px = new Uint8Array(12 * 32 * 32 * 3);
      for (let i = 0; i < 12; i++) px.set(await source.pixels(source.train[i], 32), i * 32 * 32 * 3);
      const logits = tf.tidy(() =>
        (p.network.train.predict(preprocessBatch(px, 12, 32, p.network.backbone.preprocess)) as tf.Tensor).arraySync(),
      ) as number[][];
      const expected = smoothedCrossEntropy(
        logits,
        source.train.map((e) => e.label),
        eps,
      );
      const opt = p.stages.optimizer.create(p.plan.groups, p.job);
      const losses: number[] = [];
      const t = new Trainer(
        tinyTrainerOptions(p, {
          optimizer: opt,
          lr: { factor: (s, e) => p.schedule.factor(s, e) },
          callbacks: [{ afterStep: (b) => void losses.push(b.loss) }],
          epochs: 1,
          batch: 12,
          labelSmoothing: p.job.loss.labelSmoothing,
          seed: 5,
        }),
      );
      const n0 = tf.memory().numTensors;
      await t.fit();
      opt.dispose();
      expect(tf.memory().numTensors).to.equal(n0);
      expect(losses).to.have.length(1);
      expect(losses[0]).to.be.closeTo(expected, 1e-5);
    });
  }
});
