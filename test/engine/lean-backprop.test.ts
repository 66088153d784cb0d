import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { installLeanBackprop, uninstallLeanBackprop } from '../../src/engine/wasm/lean-backprop';
import { initWasm, randomArray } from './wasm_setup';

/** A residual network at 32 px: 3x3/2 stem, BatchNorm (training), ReLU, max pool, a basic block with its add, a dense head. */
function buildNet(): tf.LayersModel {
  const input = tf.input({ shape: [32, 32, 3] });
  const bn = (t: tf.SymbolicTensor) => tf.layers.batchNormalization({ momentum: 0.9 }).apply(t) as tf.SymbolicTensor;
  const relu = (t: tf.SymbolicTensor) => tf.layers.reLU().apply(t) as tf.SymbolicTensor;
  const conv = (t: tf.SymbolicTensor, strides = 1) =>
    tf.layers.conv2d({ filters: 8, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: 'heNormal' }).apply(t) as tf.SymbolicTensor;
  let h = relu(bn(conv(input, 2)));
  h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  const block = bn(conv(relu(bn(conv(h)))));
  h = relu(tf.layers.add().apply([block, h]) as tf.SymbolicTensor);
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 4 }).apply(h) as tf.SymbolicTensor });
}

/**
 * Four 3x3 conv + BatchNorm + ReLU layers at 16 px and a dense head, applied layer by layer with a probe after the
 * first conv: an identity whose gradient records the bytes held when the backward pass gets there, near its end.
 */
function buildChain(): { layers: tf.layers.Layer[]; apply(x: tf.Tensor): tf.Tensor; heldNearEnd(): number } {
  const layers: tf.layers.Layer[] = [];
  for (let i = 0; i < 4; i++) layers.push(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }), tf.layers.batchNormalization({}), tf.layers.reLU());
  layers.push(tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: 4 }));
  let held = 0;
  const probe = tf.customGrad(((x: tf.Tensor) => {
    return {
      value: tf.clone(x),
      gradFunc: (dy: tf.Tensor) => {
        held = tf.memory().numBytes;
        return [tf.clone(dy)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;
  return {
    layers,
    apply: (x) =>
      layers.reduce((h, l, i) => (i === 1 ? (l.apply(probe(h), { training: true }) as tf.Tensor) : (l.apply(h, { training: true }) as tf.Tensor)), x),
    heldNearEnd: () => held,
  };
}

/** Loss and every trainable weight's gradient (as arrays) of `forward`'s cross-entropy, and the tensors left over. */
function gradientsOf(forward: () => tf.Tensor, y: tf.Tensor) {
  const n0 = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, forward()) as tf.Scalar);
  const out = { loss: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync().slice() as Float32Array])) };
  tf.dispose([value, ...Object.values(grads)]);
  return { ...out, leftOver: tf.memory().numTensors - n0 };
}

describe('lean backprop (engine.gradients releasing as it goes)', function () {
  this.timeout(120000);
  before(async () => {
    await initWasm();
  });
  after(async () => {
    installLeanBackprop();
    await tf.setBackend('cpu');
  });

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`${backend}: the stock gradients of a residual network bit for bit, nothing left over`, async () => {
      await tf.setBackend(backend);
      const model = buildNet();
      const x = tf.tensor4d(randomArray(8 * 32 * 32 * 3, 1), [8, 32, 32, 3]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
      // training-mode BatchNorm moves its statistics on each call; its gradients do not read them
      uninstallLeanBackprop();
      const stock = gradientsOf(() => model.apply(x, { training: true }) as tf.Tensor, y);
      expect(installLeanBackprop(), 'installed on tfjs-core 4.22').to.equal(true);
      const lean = gradientsOf(() => model.apply(x, { training: true }) as tf.Tensor, y);
      expect(Object.keys(lean.grads)).to.have.length(model.trainableWeights.length);
      expect(lean.loss).to.equal(stock.loss);
      for (const k of Object.keys(stock.grads)) expect(Array.from(lean.grads[k]), k).to.deep.equal(Array.from(stock.grads[k]));
      expect(stock.leftOver, 'stock: tensors left over').to.equal(0);
      expect(lean.leftOver, 'lean: tensors left over').to.equal(0);
      tf.dispose([x, y]);
      model.dispose();
    });

    it(`${backend}: near the end of the backward pass the activations and their gradients are already freed`, async () => {
      await tf.setBackend(backend);
      const chain = buildChain();
      const x = tf.tensor4d(randomArray(8 * 16 * 16 * 8, 2), [8, 16, 16, 8]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
      // the layers build their weights on the first call: variableGrads differentiates the variables that exist
      tf.tidy(() => void chain.apply(x));
      const before = tf.memory().numBytes;
      uninstallLeanBackprop();
      const stock = gradientsOf(() => chain.apply(x), y);
      const stockHeld = chain.heldNearEnd() - before;
      installLeanBackprop();
      const lean = gradientsOf(() => chain.apply(x), y);
      const leanHeld = chain.heldNearEnd() - before;
      for (const k of Object.keys(stock.grads)) expect(Array.from(lean.grads[k]), k).to.deep.equal(Array.from(stock.grads[k]));
      expect(lean.leftOver).to.equal(0);
      // an activation is 8x16x16x8 floats (64 kB); the stock pass holds a dozen of them and as many gradients
      expect(stockHeld, 'stock').to.be.greaterThan(20 * 65536);
      expect(leanHeld, `lean ${leanHeld} vs stock ${stockHeld}`).to.be.lessThan(0.25 * stockHeld);
      tf.dispose([x, y]);
      for (const l of chain.layers) l.dispose();
    });
  }

  it('gradients with respect to inputs and through a reused tensor, and a gradient of a gradient, as stock', async () => {
    await tf.setBackend('cpu');
    const x = tf.tensor1d([-1.5, 0.5, 2, 3]);
    const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), tf.add(t, 1)));
    const run = () =>
      tf.tidy(() => {
        const g = tf.grad(f)(x);
        const gg = tf.grad((t: tf.Tensor) => tf.sum(tf.grad(f)(t)))(x);
        return [Array.from(g.dataSync()), Array.from(gg.dataSync())];
      });
    uninstallLeanBackprop();
    const stock = run();
    installLeanBackprop();
    const n0 = tf.memory().numTensors;
    const lean = run();
    expect(lean).to.deep.equal(stock);
    // d/dx relu(x)(x+1) = 2x+1 where x > 0, else 0; its derivative 2 where x > 0
    expect(stock[0]).to.deep.equal([0, 2, 5, 7]);
    expect(stock[1]).to.deep.equal([0, 2, 2, 2]);
    expect(tf.memory().numTensors).to.equal(n0);
    x.dispose();
  });
});
