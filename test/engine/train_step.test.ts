import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';

/**
 * A MobileNet-shaped network with every layer kind MobileNet v1 trains through: ZeroPadding + strided
 * valid conv, depthwise (stride 1 and 2), pointwise, BatchNorm in training mode, ReLU6, global average
 * pooling, dense, softmax cross-entropy.
 */
function buildNet(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3] });
  let h = tf.layers
    .zeroPadding2d({
      padding: [
        [0, 1],
        [0, 1],
      ],
    })
    .apply(input) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(h) as tf.SymbolicTensor;
  const bnRelu6 = (t: tf.SymbolicTensor): tf.SymbolicTensor =>
    tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization({ momentum: 0.9 }).apply(t)) as tf.SymbolicTensor;
  h = bnRelu6(h);
  h = bnRelu6(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false }).apply(h) as tf.SymbolicTensor);
  h = bnRelu6(tf.layers.conv2d({ filters: 16, kernelSize: 1, padding: 'same', useBias: false }).apply(h) as tf.SymbolicTensor);
  h = bnRelu6(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(h) as tf.SymbolicTensor);
  h = bnRelu6(tf.layers.conv2d({ filters: 32, kernelSize: 1, padding: 'same', useBias: false }).apply(h) as tf.SymbolicTensor);
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 5, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/**
 * A ResNet-shaped network: 7x7/2 stem, max pool, a basic block (two 3x3 stride-1 convs: the Winograd path) with
 * an identity shortcut, a downsampling block (3x3/2 + 1x1/2 shortcut: the GEMM path), BatchNorm, ReLU, add.
 */
function buildResNet(): tf.LayersModel {
  const input = tf.input({ shape: [24, 24, 3] });
  const bn = (t: tf.SymbolicTensor): tf.SymbolicTensor => tf.layers.batchNormalization({ momentum: 0.9 }).apply(t) as tf.SymbolicTensor;
  const relu = (t: tf.SymbolicTensor): tf.SymbolicTensor => tf.layers.reLU().apply(t) as tf.SymbolicTensor;
  const conv = (t: tf.SymbolicTensor, filters: number, k: number, s: number): tf.SymbolicTensor =>
    tf.layers.conv2d({ filters, kernelSize: k, strides: s, padding: 'same', useBias: false }).apply(t) as tf.SymbolicTensor;
  let h = relu(bn(conv(input, 16, 7, 2)));
  h = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(h) as tf.SymbolicTensor;
  const r1 = bn(conv(relu(bn(conv(h, 16, 3, 1))), 16, 3, 1));
  h = relu(tf.layers.add().apply([h, r1]) as tf.SymbolicTensor);
  const r2 = bn(conv(relu(bn(conv(h, 24, 3, 2))), 24, 3, 1));
  const sc = bn(conv(h, 24, 1, 2));
  h = relu(tf.layers.add().apply([sc, r2]) as tf.SymbolicTensor);
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 5, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

interface StepResult {
  losses: number[];
  weights: Float32Array[];
  names: string[];
  tensorsPerStep: number[];
}

/** Same seeded weights and data on the active backend, `steps` SGD steps; returns losses and final weights. */
async function train(steps: number, build: () => tf.LayersModel = buildNet): Promise<StepResult> {
  const model = build();
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(randomArray(w.size, 100 + i), w.shape).mul(0.5)));
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  const side = model.inputs[0].shape[1] as number;
  const x = tf.tensor4d(randomArray(4 * side * side * 3, 7), [4, side, side, 3]);
  const y = tf.oneHot(tf.tensor1d([0, 3, 1, 4], 'int32'), 5);
  const losses: number[] = [];
  const tensorsPerStep: number[] = [];
  for (let i = 0; i < steps; i++) {
    losses.push((await model.trainOnBatch(x, y)) as number);
    tensorsPerStep.push(tf.memory().numTensors);
  }
  const weights = model.weights.map((w) => w.read().dataSync() as Float32Array);
  const names = model.weights.map((w) => w.name);
  tf.dispose([x, y]);
  model.dispose();
  return { losses, weights, names, tensorsPerStep };
}

describe('engine/wasm whole training steps vs cpu', function () {
  this.timeout(120000);
  before(initWasm);

  for (const [label, build] of [
    ['MobileNet', buildNet],
    ['ResNet', buildResNet],
  ] as const)
    it(`${label}-shaped: the same losses and updated weights (3 SGD steps), with numTensors flat`, async () => {
      const ref = await onBackend('cpu', () => train(3, build));
      const got = await onBackend('wasm', () => train(3, build));
      for (let i = 0; i < ref.losses.length; i++) {
        expect(Math.abs(got.losses[i] - ref.losses[i]) / Math.abs(ref.losses[i]), `loss ${i}`).to.be.lessThan(1e-4);
      }
      // Training must actually have moved something, or the comparison proves nothing.
      expect(ref.losses[2]).to.not.equal(ref.losses[0]);
      // Layer names get a per-process counter suffix; the structure must match position by position.
      const strip = (n: string): string => n.replace(/\d+/g, '');
      expect(got.names.map(strip)).to.deep.equal(ref.names.map(strip));
      for (let i = 0; i < ref.weights.length; i++) {
        expect(relErr(got.weights[i], ref.weights[i]), ref.names[i]).to.be.lessThan(1e-4);
      }
      expect(got.tensorsPerStep[2]).to.equal(got.tensorsPerStep[1]);
    });
});
