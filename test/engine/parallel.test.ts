import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { ParallelGradients, shardLoss } from '../../src/engine/wasm/parallel';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';

function buildNet(withBn: boolean): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let h = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  if (withBn) h = tf.layers.batchNormalization({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4 }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

describe('engine/wasm data-parallel gradients over worker threads', function () {
  this.timeout(120000);
  before(initWasm);

  it('equal the single-thread gradient of the mean loss over the whole batch (no BatchNorm)', async () => {
    await onBackend('wasm', async () => {
      const model = buildNet(false);
      const x = tf.tensor4d(randomArray(5 * 8 * 8 * 3, 41), [5, 8, 8, 3]); // 5 rows: uneven shards 2 + 3
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 1], 'int32'), 4);
      const ref = tf.variableGrads(() => shardLoss(model, x, y, 0.1), model.trainableWeights.map((v) => v.read() as tf.Variable));
      const pg = await ParallelGradients.create(model, { threads: 2, labelSmoothing: 0.1 });
      try {
        const before = tf.memory().numTensors;
        for (let step = 0; step < 2; step++) {
          const got = await pg.gradients(x, y);
          expect(Math.abs(got.loss - ref.value.dataSync()[0])).to.be.lessThan(1e-5);
          expect(Object.keys(got.grads).sort()).to.deep.equal(Object.keys(ref.grads).sort());
          for (const k of Object.keys(ref.grads)) {
            expect(relErr(got.grads[k].dataSync(), ref.grads[k].dataSync()), k).to.be.lessThan(1e-5);
          }
          tf.dispose(got.grads);
        }
        expect(tf.memory().numTensors).to.equal(before);
      } finally {
        await pg.dispose();
        tf.dispose([x, y, ref.value, ...Object.values(ref.grads)]);
        model.dispose();
      }
    });
  });

  it('follow weight updates made between steps', async () => {
    await onBackend('wasm', async () => {
      const model = buildNet(true);
      const x = tf.tensor4d(randomArray(4 * 8 * 8 * 3, 42), [4, 8, 8, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 4);
      const pg = await ParallelGradients.create(model, { threads: 2 });
      try {
        const opt = tf.train.sgd(0.5);
        const losses: number[] = [];
        for (let step = 0; step < 4; step++) {
          const { loss, grads } = await pg.gradients(x, y);
          losses.push(loss);
          opt.applyGradients(grads);
          tf.dispose(grads);
        }
        expect(losses.every(Number.isFinite)).to.equal(true);
        expect(losses[3]).to.be.lessThan(losses[0]); // both shards see the updated weights
        opt.dispose();
      } finally {
        await pg.dispose();
        tf.dispose([x, y]);
        model.dispose();
      }
    });
  });
});
