import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { setBatchNormMode } from '../../src/models/batchnorm';

describe('BatchNorm modes', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  function bnModel(): { model: tf.LayersModel; bn: tf.layers.Layer } {
    const input = tf.input({ shape: [4, 4, 3] });
    const bn = tf.layers.batchNormalization({ epsilon: 1e-3 });
    const model = tf.model({ inputs: input, outputs: bn.apply(input) as tf.SymbolicTensor });
    // non-trivial stored statistics, as in a pretrained network
    bn.setWeights([tf.tensor1d([1.5, 0.5, 2]), tf.tensor1d([0.1, -0.2, 0.3]), tf.tensor1d([0.4, -1, 2]), tf.tensor1d([0.25, 4, 1])]);
    return { model, bn };
  }

  it("'frozen' computes exactly what the stock layer computes at inference, even when called with training: true", () => {
    const { model, bn } = bnModel();
    const x = tf.randomNormal([2, 4, 4, 3], 0, 2, 'float32', 5);
    const inference = model.predict(x) as tf.Tensor;
    setBatchNormMode(bn, 'frozen');
    const frozen = model.apply(x, { training: true }) as tf.Tensor;
    // by hand for one element: gamma·(x−mean)/sqrt(var+eps)+beta
    const xv = x.arraySync() as number[][][][];
    const hand = (1.5 * (xv[0][0][0][0] - 0.4)) / Math.sqrt(0.25 + 1e-3) + 0.1;
    expect((frozen.arraySync() as number[][][][])[0][0][0][0]).to.be.closeTo(hand, 1e-5);
    expect(tf.max(tf.abs(tf.sub(inference, frozen))).dataSync()[0]).to.be.lessThan(1e-5);
  });

  it("'batch' normalises with the batch's own statistics when training", () => {
    const { model, bn } = bnModel();
    setBatchNormMode(bn, 'batch');
    const x = tf.randomNormal([8, 4, 4, 3], 3, 2, 'float32', 6);
    const y = model.apply(x, { training: true }) as tf.Tensor;
    const { mean } = tf.moments(y, [0, 1, 2]);
    // mean of the output = beta per channel when batch statistics are used
    expect(Array.from(mean.dataSync()).map((v) => +v.toFixed(4))).to.deep.equal([0.1, -0.2, 0.3]);
  });
});
