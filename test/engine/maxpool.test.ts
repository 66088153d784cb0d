import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { maxPoolGrad } from '../../src/engine/wasm/conv_grads';
import { initWasm, onBackend, randomArray } from './wasm_setup';

describe('engine/wasm MaxPoolGrad replacement vs cpu', () => {
  before(initWasm);
  it('is the registered wasm MaxPoolGrad', () => {
    expect(tf.getKernel('MaxPoolGrad', 'wasm')?.kernelFunc).to.equal(maxPoolGrad);
  });
  const cases: Array<{ shape: number[]; k: number; s: number; pad: 'same' | 'valid' | number; ties: boolean }> = [
    { shape: [2, 9, 9, 8], k: 3, s: 2, pad: 'same', ties: false }, // ResNet stem pool
    { shape: [2, 8, 7, 5], k: 2, s: 2, pad: 'valid', ties: false },
    { shape: [1, 7, 7, 6], k: 3, s: 1, pad: 1, ties: false },
    { shape: [2, 6, 6, 4], k: 3, s: 2, pad: 'same', ties: true }, // equal values: the first maximum must win
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.shape)} k${c.k} s${c.s} pad=${c.pad}${c.ties ? ' with ties' : ''}: dx equal`, async () => {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const vals = Array.from(randomArray(n, 71), (v) => (c.ties ? Math.round(v * 2) : v));
      const g = randomArray(n, 72);
      const run = (): number[] =>
        tf.tidy(() => {
          const x = tf.tensor4d(vals, c.shape as [number, number, number, number]);
          const dx = tf.grad((t: tf.Tensor) => {
            const y = tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad);
            return y.mul(tf.tensor(g.subarray(0, y.size), y.shape)).sum();
          })(x);
          return Array.from(dx.dataSync());
        });
      const ref = await onBackend('cpu', run);
      const got = await onBackend('wasm', run);
      got.forEach((v, i) => expect(v).to.be.closeTo(ref[i], 1e-6));
    });
  }
});
