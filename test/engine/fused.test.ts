import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { batchNormTrain, clampRelu } from '../../src/engine/wasm';
import { batchNormFrozen, followingRelu, type FusedRelu } from '../../src/engine/wasm/fused';
import { setBatchNormMode } from '../../src/models/batchnorm';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';

// [shape, input scale, input offset]: offset >> scale is where one-pass variance formulas cancel.
const shapes: Array<[number[], number, number]> = [
  [[2, 5, 6, 12], 3, 1.5],
  [[3, 4, 4, 7], 3, 1.5],
  [[9, 3], 3, 1.5],
  [[4, 56, 56, 8], 3, 1.5],
  [[4, 9, 9, 8], 0.1, 100],
];

/** Forward outputs and the gradients of sum(y * g) for the fused op (wasm) or tfjs's own (cpu). */
function bnCase(shape: number[], fused: boolean, scale: number, offset: number): Record<string, Float32Array> {
  return tf.tidy(() => {
    const C = shape[shape.length - 1];
    const size = shape.reduce((a, b) => a * b, 1);
    // Offset and scale the input so mean and variance are far from 0 and 1: catches a dropped term.
    const x = tf.tensor(randomArray(size, 11), shape).mul(scale).add(offset);
    const gamma = tf.tensor1d(randomArray(C, 12)).add(1);
    const beta = tf.tensor1d(randomArray(C, 13));
    const g = tf.tensor(randomArray(size, 14), shape);
    const eps = 1e-3;
    const stock = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const axes = shape.slice(0, -1).map((_, i) => i);
      const m = tf.moments(xx, axes);
      return { y: tf.batchNorm(xx, m.mean, m.variance, bb, gg, eps), mean: m.mean, variance: m.variance };
    };
    const f = fused ? (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => batchNormTrain(xx, gg, bb, eps) : stock;
    const out = f(x, gamma, beta);
    const [dx, dgamma, dbeta] = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => f(xx, gg, bb).y.mul(g).sum())([x, gamma, beta]);
    const d = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;
    return { y: d(out.y), mean: d(out.mean), variance: d(out.variance), dx: d(dx), dgamma: d(dgamma), dbeta: d(dbeta) };
  });
}

/** Stored-statistics BatchNorm: y and the gradients of sum(y * g) wrt x, gamma, beta, mean and variance. */
function frozenCase(shape: number[], fused: boolean, scale: number, offset: number): Record<string, Float32Array> {
  return tf.tidy(() => {
    const C = shape[shape.length - 1];
    const size = shape.reduce((a, b) => a * b, 1);
    const x = tf.tensor(randomArray(size, 31), shape).mul(scale).add(offset);
    const gamma = tf.tensor1d(randomArray(C, 32)).add(1);
    const beta = tf.tensor1d(randomArray(C, 33));
    // stored statistics unlike this batch's, as after pretraining: mean near the offset, variance in (0.5, 1.5)
    const mean = tf.tensor1d(randomArray(C, 34)).mul(scale).add(offset);
    const variance = tf
      .tensor1d(randomArray(C, 35))
      .mul(0.5)
      .add(1)
      .mul(scale * scale);
    const g = tf.tensor(randomArray(size, 36), shape);
    const eps = 1e-3;
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor): tf.Tensor =>
      fused ? batchNormFrozen(xx, gg, bb, mm, vv, eps) : tf.batchNorm(xx, mm, vv, bb, gg, eps);
    const y = f(x, gamma, beta, mean, variance);
    const [dx, dgamma, dbeta, dmean, dvariance] = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor) =>
      f(xx, gg, bb, mm, vv).mul(g).sum(),
    )([x, gamma, beta, mean, variance]);
    const d = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;
    return { y: d(y), dx: d(dx), dgamma: d(dgamma), dbeta: d(dbeta), dmean: d(dmean), dvariance: d(dvariance) };
  });
}

describe('engine/wasm fused BatchNorm-training and ReLU kernels vs tfjs on cpu', function () {
  this.timeout(60000);
  before(initWasm);

  for (const [shape, scale, offset] of shapes) {
    it(`BatchNorm training ${JSON.stringify(shape)}, x ~ U(-1,1)*${scale}+${offset}: y, mean, variance, dx, dgamma, dbeta within 1e-4`, async () => {
      const ref = await onBackend('cpu', () => bnCase(shape, false, scale, offset));
      const got = await onBackend('wasm', () => bnCase(shape, true, scale, offset));
      for (const k of Object.keys(ref)) expect(relErr(got[k], ref[k]), k).to.be.lessThan(1e-4);
      expect(Math.max(...Array.from(ref.dx, Math.abs))).to.be.greaterThan(0);
    });
  }

  for (const [shape, scale, offset] of shapes) {
    it(`BatchNorm with stored statistics ${JSON.stringify(shape)}, x ~ U(-1,1)*${scale}+${offset}: y and all five gradients within 1e-4 of tf.batchNorm`, async () => {
      const ref = await onBackend('cpu', () => frozenCase(shape, false, scale, offset));
      const got = await onBackend('wasm', () => frozenCase(shape, true, scale, offset));
      for (const k of Object.keys(ref)) expect(relErr(got[k], ref[k]), k).to.be.lessThan(1e-4);
      expect(Math.max(...Array.from(ref.dgamma, Math.abs))).to.be.greaterThan(0);
    });
  }

  const variants: Array<{ name: string; hi: number; inclusive: boolean; stock: (x: tf.Tensor) => tf.Tensor }> = [
    { name: "activation 'relu6' = minimum(6, relu(x))", hi: 6, inclusive: false, stock: (x) => tf.minimum(6, tf.relu(x)) },
    { name: 'ReLU layer maxValue 6 = clipByValue(relu(x), 0, 6)', hi: 6, inclusive: true, stock: (x) => tf.clipByValue(tf.relu(x), 0, 6) },
    { name: 'relu', hi: Infinity, inclusive: false, stock: (x) => tf.relu(x) },
  ];
  for (const v of variants) {
    it(`${v.name}: forward and gradient equal, including the exact boundary values`, async () => {
      // 0 and 6 exactly are where the masks of the stock gradients differ; the fused op must follow each.
      const vals = Float32Array.from(
        [...randomArray(1021, 21)].map((u) => u * 8),
        (u, i) => (i % 7 === 0 ? 0 : i % 11 === 0 ? 6 : u),
      );
      const g = randomArray(vals.length, 22);
      const run = (fused: boolean) =>
        tf.tidy(() => {
          const x = tf.tensor1d(vals);
          const f = fused ? (t: tf.Tensor) => clampRelu(t, v.hi, v.inclusive) : v.stock;
          const dx = tf.grad((t: tf.Tensor) => f(t).mul(tf.tensor1d(g)).sum())(x);
          return { y: f(x).dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
        });
      const ref = await onBackend('cpu', () => run(false));
      const got = await onBackend('wasm', () => run(true));
      expect(relErr(got.y, ref.y)).to.equal(0);
      expect(relErr(got.dx, ref.dx)).to.equal(0);
    });
  }

  it('tfjs-layers BatchNormalization / ReLU / relu6 / relu are routed to the fused kernels on wasm only', async () => {
    const build = (): tf.LayersModel => {
      const input = tf.input({ shape: [6, 6, 4] });
      let h = tf.layers.batchNormalization({}).apply(input) as tf.SymbolicTensor;
      h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.activation({ activation: 'relu6' }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.activation({ activation: 'relu' }).apply(h) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: h });
    };
    const kernelsUsed = async (): Promise<string[]> => {
      const m = build();
      const x = tf.randomNormal([2, 6, 6, 4]);
      const info = await tf.profile(() => {
        tf.grads((t: tf.Tensor) => (m.apply(t, { training: true }) as tf.Tensor).sum())([x]).forEach((t) => t.dispose());
      });
      x.dispose();
      m.dispose();
      return info.kernelNames;
    };
    const onW = await onBackend('wasm', kernelsUsed);
    const onC = await onBackend('cpu', kernelsUsed);
    expect(await onW).to.include.members(['LtBatchNormTrain', 'LtBatchNormTrainGrad', 'LtClamp', 'LtClampGrad']);
    expect((await onC).filter((k) => k.startsWith('Lt'))).to.deep.equal([]);
  });

  it("a BatchNormalization layer in 'frozen' mode trains through LtBatchNormFrozen on wasm, the affine tfjs ops elsewhere, same values", async () => {
    const run = async (): Promise<{ kernels: string[]; y: Float32Array; dgamma: Float32Array; dx: Float32Array }> => {
      const input = tf.input({ shape: [6, 6, 4] });
      const bn = tf.layers.batchNormalization({});
      const m = tf.model({ inputs: input, outputs: bn.apply(input) as tf.SymbolicTensor });
      // stored statistics away from 0 and 1, so a dropped term would show
      bn.setWeights([tf.tensor1d([1.5, 0.5, 2, 1]), tf.tensor1d([0.1, -0.2, 0.3, 0]), tf.tensor1d([0.5, -1, 2, 0]), tf.tensor1d([0.25, 4, 1, 2])]);
      setBatchNormMode(bn, 'frozen');
      const x = tf.tensor(randomArray(2 * 6 * 6 * 4, 41), [2, 6, 6, 4]);
      const g = tf.tensor(randomArray(2 * 6 * 6 * 4, 42), [2, 6, 6, 4]);
      let out: { y: Float32Array; dgamma: Float32Array; dx: Float32Array } | undefined;
      const info = await tf.profile(() => {
        const f = (t: tf.Tensor): tf.Scalar => (m.apply(t, { training: true }) as tf.Tensor).mul(g).sum() as tf.Scalar;
        const { grads } = tf.variableGrads(() => f(x), [bn.trainableWeights[0].read() as tf.Variable]);
        const dx = tf.grad(f)(x);
        const y = m.apply(x, { training: true }) as tf.Tensor;
        out = { y: y.dataSync() as Float32Array, dgamma: Object.values(grads)[0].dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
        tf.dispose([dx, y, ...Object.values(grads)]);
      });
      tf.dispose([x, g]);
      m.dispose();
      return { kernels: info.kernelNames, ...out! };
    };
    const onW = await onBackend('wasm', run);
    const onC = await onBackend('cpu', run);
    expect(onW.kernels).to.include.members(['LtBatchNormFrozen', 'LtBatchNormFrozenGrad']);
    expect(onW.kernels).to.not.include('LtBatchNormTrain');
    expect(onC.kernels.filter((k) => k.startsWith('Lt'))).to.deep.equal([]);
    for (const k of ['y', 'dgamma', 'dx'] as const) expect(relErr(onW[k], onC[k]), k).to.be.lessThan(1e-5);
  });

  // a ReLU inside the BatchNorm kernel: the separate clamp's values and gradients, bit for bit
  const fusedVariants: Array<{ name: string; relu: FusedRelu; inclusive: boolean }> = [
    { name: 'relu6 activation (0 < y < 6)', relu: { hi: 6, act: 1 }, inclusive: false },
    { name: 'ReLU layer, maxValue 6 (0 < y <= 6)', relu: { hi: 6, act: 2 }, inclusive: true },
    { name: 'relu activation', relu: { hi: Infinity, act: 1 }, inclusive: false },
    { name: 'ReLU layer', relu: { hi: Infinity, act: 2 }, inclusive: true },
  ];
  const bits = (a: Float32Array, b: Float32Array): boolean =>
    a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  for (const v of fusedVariants) {
    it(`BatchNorm with its ReLU fused (${v.name}): y and every gradient bit-identical to BatchNorm then the clamp, batch and stored statistics`, async () => {
      await onBackend('wasm', () => {
        for (const shape of [
          [3, 5, 5, 12],
          [2, 4, 4, 7],
        ]) {
          const C = shape[3];
          const size = shape.reduce((a, b) => a * b, 1);
          const run = (fused: boolean, frozen: boolean): Float32Array[] =>
            tf.tidy(() => {
              // frozen: statistics that make y = x exactly (var + eps = 1, gamma 1, beta 0, mean 0), so the inputs'
              // exact 0s and 6s sit on the masks' boundaries; batch statistics: a random spread through the clamp
              const x = frozen
                ? tf.tensor(
                    Float32Array.from(randomArray(size, 51), (u, i) => (i % 5 === 0 ? 0 : i % 7 === 0 ? 6 : u * 8)),
                    shape,
                  )
                : tf.tensor(randomArray(size, 52), shape).mul(4).add(2);
              const gamma = frozen ? tf.ones([C]) : tf.tensor1d(randomArray(C, 53)).add(1.5);
              const beta = frozen ? tf.zeros([C]) : tf.tensor1d(randomArray(C, 54)).mul(3);
              const mean = tf.zeros([C]);
              const variance = tf.fill([C], 0.75);
              const g = tf.tensor(randomArray(size, 55), shape);
              const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor): tf.Tensor => {
                if (frozen)
                  return fused
                    ? batchNormFrozen(xx, gg, bb, mm, vv, 0.25, v.relu)
                    : clampRelu(batchNormFrozen(xx, gg, bb, mm, vv, 0.25), v.relu.hi, v.inclusive);
                return fused ? batchNormTrain(xx, gg, bb, 1e-3, v.relu).y : clampRelu(batchNormTrain(xx, gg, bb, 1e-3).y, v.relu.hi, v.inclusive);
              };
              const y = f(x, gamma, beta, mean, variance);
              const wrt = frozen ? [x, gamma, beta, mean, variance] : [x, gamma, beta];
              const grads = tf.grads((...t: tf.Tensor[]) =>
                f(t[0], t[1], t[2], t[3] ?? mean, t[4] ?? variance)
                  .mul(g)
                  .sum(),
              )(wrt);
              return [y, ...grads].map((t) => t.dataSync() as Float32Array);
            });
          for (const frozen of [false, true]) {
            const want = run(false, frozen);
            const got = run(true, frozen);
            const names = ['y', 'dx', 'dgamma', 'dbeta', 'dmean', 'dvariance'];
            want.forEach((w, i) => expect(bits(got[i], w), `${frozen ? 'frozen' : 'batch'} ${JSON.stringify(shape)} ${names[i]}`).to.equal(true));
            // the clamp did something: some outputs at 0, some gradients masked, some passed
            expect(want[0].some((a) => a === 0) && want[1].some((a) => a !== 0)).to.equal(true);
          }
        }
      });
    });
  }

  it('a BatchNorm layer applies the ReLU layer that alone reads it in its own kernel; one read elsewhere or cut off at the BN does not', async () => {
    await onBackend('wasm', async () => {
      const input = tf.input({ shape: [6, 6, 4] });
      const bnA = tf.layers.batchNormalization({ name: 'a' });
      const reluA = tf.layers.reLU({ maxValue: 6, name: 'a_relu' });
      const a = reluA.apply(bnA.apply(input)) as tf.SymbolicTensor;
      const bnB = tf.layers.batchNormalization({ name: 'b' });
      const b = tf.layers.activation({ activation: 'relu', name: 'b_relu' }).apply(bnB.apply(a)) as tf.SymbolicTensor;
      // c's output feeds its ReLU and the Add: it keeps the separate clamp
      const bnC = tf.layers.batchNormalization({ name: 'c' });
      const c = bnC.apply(b) as tf.SymbolicTensor;
      const out = tf.layers.add().apply([c, tf.layers.activation({ activation: 'relu6', name: 'c_relu' }).apply(c) as tf.SymbolicTensor]) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: out });
      expect(followingRelu(bnA)).to.deep.include({ relu: { hi: 6, act: 2 }, consumer: reluA });
      expect(followingRelu(bnB)?.relu).to.deep.equal({ hi: Infinity, act: 1 });
      expect(followingRelu(bnC)).to.equal(null);
      const x = tf.randomNormal([2, 6, 6, 4], 0, 2, 'float32', 3);
      const kernels = async (m: tf.LayersModel): Promise<string[]> =>
        (
          await tf.profile(() => {
            tf.grads((t: tf.Tensor) => (m.apply(t, { training: true }) as tf.Tensor).sum())([x]).forEach((t) => t.dispose());
          })
        ).kernels.map((k) => k.name);
      const ran = await kernels(model);
      expect(ran.filter((k) => k === 'LtClamp').length, 'only c_relu clamps on its own').to.equal(1);
      // a prefix model ending at bnA (a second call of it that no ReLU reads): a's ReLU goes back to its own kernel
      const prefix = tf.model({ inputs: input, outputs: bnA.apply(input) as tf.SymbolicTensor });
      expect(followingRelu(bnA)).to.equal(null);
      const y = prefix.apply(x, { training: true }) as tf.Tensor;
      expect(y.min().dataSync()[0], 'the BN output itself, negative values and all').to.be.below(0);
      const again = await kernels(model);
      expect(again.filter((k) => k === 'LtClamp').length, again.join(' ')).to.equal(2);
      tf.dispose([x, y]);
      model.dispose();
    });
  });

  it('leaks nothing across repeated fused training steps (frozen gamma included)', async () => {
    await onBackend('wasm', () => {
      const x = tf.randomNormal([4, 8, 8, 16]);
      const gamma = tf.variable(tf.ones([16]), false);
      const beta = tf.variable(tf.zeros([16]));
      const step = (): void => {
        const { value, grads } = tf.variableGrads(() => clampRelu(batchNormTrain(x, gamma, beta, 1e-3).y, 6, false).sum() as tf.Scalar, [beta]);
        value.dispose();
        tf.dispose(grads);
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) step();
      expect(tf.memory().numTensors).to.equal(before);
      tf.dispose([x, gamma, beta]);
    });
  });
});
