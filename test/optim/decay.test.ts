import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { GroupedOptimizer, namedVariableGrads, namedVariables } from '../../src/optim';

/**
 * Users moving from tfjs: a `tf.regularizers.l2({l2})` kernel penalty l2·Σw² gives exactly the updates of
 * coupled decay with weightDecay = 2·l2; `tf.regularizers.l1({l1})` those of `l1` mode with weightDecay = l1.
 */
describe('weight decay modes vs tf.regularizers', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  function dense(name: string, regularizer?: ReturnType<typeof tf.regularizers.l2>): tf.LayersModel {
    const m = tf.sequential({ name });
    m.add(
      tf.layers.dense({
        units: 3,
        inputShape: [4],
        kernelInitializer: tf.initializers.randomNormal({ seed: 7 }),
        biasInitializer: 'ones',
        kernelRegularizer: regularizer,
        name: `${name}_d`,
      }),
    );
    return m;
  }

  const x = () =>
    tf.tensor2d([
      [1, 2, -1, 0.5],
      [0.3, -0.2, 0.8, 1],
      [-1, 0, 0.5, 2],
    ]);
  const y = () =>
    tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);

  for (const kind of ['l2', 'l1'] as const) {
    it(`${kind}: penalty through model.fit (tfjs SGD) == our sgd with ${kind === 'l2' ? 'coupled decay wd = 2·l2' : 'l1 decay wd = l1'}`, async () => {
      const strength = 0.05;
      const reg = kind === 'l2' ? tf.regularizers.l2({ l2: strength }) : tf.regularizers.l1({ l1: strength });
      const withReg = dense(`reg_${kind}`, reg);
      const plain = dense(`plain_${kind}`);
      plain.setWeights(withReg.getWeights());
      const lr = 0.1;
      withReg.compile({ optimizer: tf.train.sgd(lr), loss: 'meanSquaredError' });
      const xs = x();
      const ys = y();
      await withReg.fit(xs, ys, { epochs: 5, batchSize: 3, shuffle: false, verbose: 0 });

      const vars = namedVariables(plain);
      const kName = Object.keys(vars).find((k) => k.endsWith('/kernel'))!;
      const bName = Object.keys(vars).find((k) => k.endsWith('/bias'))!;
      const opt = new GroupedOptimizer(
        [
          { name: 'kernel', params: [kName], lr, weightDecay: kind === 'l2' ? 2 * strength : strength, decayMode: kind === 'l2' ? 'coupled' : 'l1' },
          { name: 'bias', params: [bName], lr, weightDecay: 0, decayMode: 'coupled' },
        ],
        { algorithm: 'sgd' },
      );
      const before = tf.memory().numTensors;
      for (let e = 0; e < 5; e++) {
        const { value, grads } = namedVariableGrads(() => tf.losses.meanSquaredError(ys, plain.predict(xs) as tf.Tensor) as tf.Scalar, vars);
        opt.step(grads, vars);
        tf.dispose([value, ...Object.values(grads)]);
      }
      expect(tf.memory().numTensors).to.equal(before);
      const want = withReg.getWeights().map((t) => Array.from(t.dataSync()));
      const got = plain.getWeights().map((t) => Array.from(t.dataSync()));
      for (let j = 0; j < want.length; j++) {
        want[j].forEach((w, i) => expect(got[j][i]).to.be.closeTo(w, 1e-6 + 1e-5 * Math.abs(w)));
      }
      opt.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it('control: without the matching decay the trajectories differ (so the test above can fail)', async () => {
    const withReg = dense('ctl_reg', tf.regularizers.l2({ l2: 0.05 }));
    const plain = dense('ctl_plain');
    plain.setWeights(withReg.getWeights());
    withReg.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    const xs = x();
    const ys = y();
    await withReg.fit(xs, ys, { epochs: 5, batchSize: 3, shuffle: false, verbose: 0 });
    const vars = namedVariables(plain);
    // wd = l2 (the common mistake) instead of 2·l2.
    const opt = new GroupedOptimizer([{ name: 'all', params: Object.keys(vars), lr: 0.1, weightDecay: 0.05, decayMode: 'coupled' }], { algorithm: 'sgd' });
    for (let e = 0; e < 5; e++) {
      const { value, grads } = namedVariableGrads(() => tf.losses.meanSquaredError(ys, plain.predict(xs) as tf.Tensor) as tf.Scalar, vars);
      opt.step(grads, vars);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const want = Array.from(withReg.getWeights()[0].dataSync());
    const got = Array.from(plain.getWeights()[0].dataSync());
    expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).to.be.above(1e-4);
    opt.dispose();
    tf.dispose([xs, ys]);
  });
});
