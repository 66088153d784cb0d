import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { ParallelGradients, shardBounds, shardLoss } from '../../src/engine/wasm/parallel';
import { setBatchNormMode } from '../../src/models/batchnorm';
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
      const ref = tf.variableGrads(
        () => shardLoss(model, x, y, 0.1).loss,
        model.trainableWeights.map((v) => v.read() as tf.Variable),
      );
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

  it('carry BatchNorm modes to the workers: frozen BN makes the split invisible', async () => {
    await onBackend('wasm', async () => {
      const model = buildNet(true);
      const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
      // stored statistics away from 0/1 so a worker that used batch statistics would disagree
      const [, , mean, variance] = bn.getWeights();
      const stored = [tf.fill(mean.shape, 0.3), tf.fill(variance.shape, 2.5)];
      bn.setWeights([...bn.getWeights().slice(0, 2), ...stored]);
      setBatchNormMode(bn, 'frozen');
      const x = tf.tensor4d(randomArray(6 * 8 * 8 * 3, 43), [6, 8, 8, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 1, 0], 'int32'), 4);
      const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
      const ref = tf.variableGrads(() => shardLoss(model, x, y, 0).loss, vars);
      const pg = await ParallelGradients.create(model, { threads: 2 });
      try {
        const got = await pg.gradients(x, y);
        expect(Math.abs(got.loss - ref.value.dataSync()[0])).to.be.lessThan(1e-5);
        for (const k of Object.keys(ref.grads)) expect(relErr(got.grads[k].dataSync(), ref.grads[k].dataSync()), k).to.be.lessThan(1e-5);
        tf.dispose(got.grads);
      } finally {
        await pg.dispose();
        tf.dispose([x, y, ref.value, ...Object.values(ref.grads), ...stored]);
        model.dispose();
      }
    });
  });

  it("leave batch-mode BatchNorm moving statistics at the shard-weighted mean of every shard's update", async () => {
    await onBackend('wasm', async () => {
      const model = buildNet(true);
      const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
      setBatchNormMode(bn, 'batch', 0.5); // a large step so the shards' updates differ visibly
      const B = 5;
      const x = tf.tensor4d(randomArray(B * 8 * 8 * 3, 44), [B, 8, 8, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 1], 'int32'), 4);
      const start = bn.getWeights().map((w) => w.clone());
      // expected: each shard's update from the same start, on this thread, weighted by shard size
      const bounds = shardBounds(B, 2);
      const expected = [0, 0].map(() => [] as number[]);
      const perShard: Float32Array[][] = [];
      for (let k = 0; k < 2; k++) {
        bn.setWeights(start);
        tf.tidy(() => {
          model.apply(x.slice(bounds[k], bounds[k + 1] - bounds[k]), { training: true });
        });
        perShard.push(
          bn
            .getWeights()
            .slice(2)
            .map((w) => w.dataSync().slice() as Float32Array),
        );
      }
      for (let s = 0; s < 2; s++) {
        const n = perShard[0][s].length;
        for (let i = 0; i < n; i++) {
          expected[s].push(perShard.reduce((acc, shard, k) => acc + shard[s][i] * ((bounds[k + 1] - bounds[k]) / B), 0));
        }
      }
      bn.setWeights(start);
      const pg = await ParallelGradients.create(model, { threads: 2 });
      try {
        const got = await pg.gradients(x, y);
        tf.dispose(got.grads);
        const [, , m, v] = bn.getWeights();
        expect(relErr(m.dataSync(), expected[0])).to.be.lessThan(1e-5);
        expect(relErr(v.dataSync(), expected[1])).to.be.lessThan(1e-5);
        // control: shard 0's update alone is measurably different
        expect(relErr(perShard[0][0], expected[0])).to.be.greaterThan(1e-3);
      } finally {
        await pg.dispose();
        tf.dispose([x, y, ...start]);
        model.dispose();
      }
    });
  });
});
