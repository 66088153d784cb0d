import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';

/** tf.batchNorm with given statistics: the FusedBatchNorm kernel our wasm replacement serves. */
function run(xShape: number[], statShape: number[], withScaleOffset: boolean): Float32Array {
  return tf.tidy(() => {
    const n = (s: number[]): number => s.reduce((a, b) => a * b, 1);
    const x = tf
      .tensor(randomArray(n(xShape), 31), xShape)
      .mul(2)
      .add(0.5);
    const mean = tf.tensor(randomArray(n(statShape), 32), statShape);
    const variance = tf
      .tensor(randomArray(n(statShape), 33), statShape)
      .abs()
      .add(0.1);
    const offset = withScaleOffset ? tf.tensor(randomArray(n(statShape), 34), statShape) : undefined;
    const scale = withScaleOffset ? tf.tensor(randomArray(n(statShape), 35), statShape) : undefined;
    return tf.batchNorm(x, mean, variance, offset, scale, 1e-3).dataSync() as Float32Array;
  });
}

describe('engine/wasm FusedBatchNorm replacement (given statistics) vs cpu', function () {
  this.timeout(60000);
  before(initWasm);
  const cases: Array<[number[], number[], boolean]> = [
    [[2, 7, 5, 12], [12], true],
    [[2, 7, 5, 6], [6], false],
    [[3, 4, 4, 10], [1, 1, 1, 10], true],
    [[5, 9], [9], true],
    [[2, 3, 4, 8], [4, 8], true], // not one value per channel: the stock kernel's broadcasting
  ];
  for (const [xs, ss, so] of cases) {
    it(`x ${JSON.stringify(xs)} stats ${JSON.stringify(ss)} scale/offset ${so}: within 1e-5`, async () => {
      const ref = await onBackend('cpu', () => run(xs, ss, so));
      const got = await onBackend('wasm', () => run(xs, ss, so));
      expect(relErr(got, ref)).to.be.lessThan(1e-5);
    });
  }
});

describe('engine/wasm BatchNorm with given statistics, trained through (frozen-BN fine-tuning)', () => {
  before(initWasm);
  it('gradients w.r.t. x, scale and offset equal cpu within 1e-5 (stock gradient on our Tile/FusedBatchNorm)', async () => {
    const run = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(randomArray(2 * 5 * 6 * 8, 61), [2, 5, 6, 8]);
        const mean = tf.tensor1d(randomArray(8, 62));
        const variance = tf.tensor1d(randomArray(8, 63)).abs().add(0.2);
        const g = tf.tensor4d(randomArray(2 * 5 * 6 * 8, 64), [2, 5, 6, 8]);
        const grads = tf.grads((xx: tf.Tensor, sc: tf.Tensor, of: tf.Tensor) => tf.batchNorm(xx, mean, variance, of, sc, 1e-3).mul(g).sum())([
          x,
          tf.tensor1d(randomArray(8, 65)),
          tf.tensor1d(randomArray(8, 66)),
        ]);
        return grads.map((t) => t.dataSync() as Float32Array);
      });
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    ref.forEach((r, i) => expect(relErr(got[i], r), `grad ${i}`).to.be.lessThan(1e-5));
  });
});
