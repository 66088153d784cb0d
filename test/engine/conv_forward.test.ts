import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';
import { LT_CONV, tilePixels } from '../../src/engine/wasm/conv_forward';

type Pad = 'same' | 'valid' | number;
interface Case {
  k: number;
  s: number;
  pad: Pad;
  n: number;
  h: number;
  w: number;
  c: number;
  co: number;
  act: 'linear' | 'relu' | 'relu6';
  bias: boolean;
}

// Input channels >= 4 take our GEMM (3-channel stems too from 32 output channels on); output channels that are not multiples of 8 and
// pixel counts that are not multiples of 4 exercise the tails; 1x1 stride 1 unpadded runs without im2col.
const cases: Case[] = [];
for (const k of [1, 3, 7])
  for (const s of [1, 2])
    for (const pad of ['same', 'valid'] as Pad[]) {
      cases.push({ k, s, pad, n: 3, h: 11, w: 9, c: 17, co: 13, act: 'linear', bias: false });
    }
cases.push({ k: 3, s: 1, pad: 'same', n: 3, h: 7, w: 9, c: 16, co: 5, act: 'relu', bias: true });
cases.push({ k: 3, s: 2, pad: 1, n: 1, h: 9, w: 9, c: 24, co: 70, act: 'relu6', bias: true });
cases.push({ k: 1, s: 1, pad: 'valid', n: 3, h: 5, w: 5, c: 33, co: 8, act: 'relu6', bias: true });
cases.push({ k: 1, s: 2, pad: 'valid', n: 2, h: 8, w: 8, c: 64, co: 128, act: 'linear', bias: false }); // ResNet's downsample
// a reduction longer than one 512-wide chunk (M = 9 * 96 = 864) and one tile with many pixel blocks
cases.push({ k: 3, s: 1, pad: 'same', n: 2, h: 14, w: 14, c: 96, co: 40, act: 'relu', bias: true });
// 5 input channels: ours, with odd im2col runs
cases.push({ k: 3, s: 1, pad: 'same', n: 2, h: 6, w: 7, c: 5, co: 9, act: 'relu', bias: true });
// a 3-channel stem with few output channels: the stock kernel, still right
cases.push({ k: 7, s: 2, pad: 'same', n: 2, h: 15, w: 15, c: 3, co: 16, act: 'relu', bias: true });
// 3-channel stems with >= 32 output channels: ours; 'same' puts filter rows partly in the padding (per-tap copies),
// 'valid' takes whole 21-float rows
cases.push({ k: 7, s: 2, pad: 'same', n: 3, h: 15, w: 13, c: 3, co: 40, act: 'relu', bias: true });
cases.push({ k: 7, s: 2, pad: 'valid', n: 2, h: 17, w: 16, c: 3, co: 32, act: 'linear', bias: false });
cases.push({ k: 3, s: 2, pad: 'same', n: 3, h: 15, w: 15, c: 3, co: 33, act: 'relu6', bias: true });

const name = (c: Case): string => `k${c.k} s${c.s} pad=${c.pad} ${c.n}x${c.h}x${c.w}x${c.c}->${c.co} ${c.act}${c.bias ? '+bias' : ''}`;

function forward(c: Case): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(randomArray(c.n * c.h * c.w * c.c, 11), [c.n, c.h, c.w, c.c]);
    const f = tf.tensor4d(randomArray(c.k * c.k * c.c * c.co, 12), [c.k, c.k, c.c, c.co]);
    const bias = c.bias ? tf.tensor1d(randomArray(c.co, 13)) : undefined;
    return tf.fused.conv2d({ x, filter: f, strides: c.s, pad: c.pad as 'same', bias, activation: c.act }).dataSync() as Float32Array;
  });
}

/** Plain tf.conv2d: the Conv2D kernel (no bias, no activation). */
function plainForward(c: Case): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(randomArray(c.n * c.h * c.w * c.c, 11), [c.n, c.h, c.w, c.c]);
    const f = tf.tensor4d(randomArray(c.k * c.k * c.c * c.co, 12), [c.k, c.k, c.c, c.co]);
    return tf.conv2d(x, f, c.s, c.pad as 'same').dataSync() as Float32Array;
  });
}

describe('engine/wasm forward convolution (FusedConv2D as a blocked GEMM)', function () {
  this.timeout(120000);
  before(initWasm);

  for (const c of cases) {
    it(`equals the cpu backend within 1e-4: ${name(c)}`, async () => {
      const ref = await onBackend('cpu', () => forward(c));
      const got = await onBackend('wasm', () => forward(c));
      expect(got.length).to.equal(ref.length);
      expect(relErr(got, ref)).to.be.lessThan(1e-4);
    });
  }

  for (const c of cases.filter((cc) => !cc.bias && cc.act === 'linear')) {
    it(`plain Conv2D equals the cpu backend within 1e-4: ${name(c)}`, async () => {
      const ref = await onBackend('cpu', () => plainForward(c));
      const got = await onBackend('wasm', () => plainForward(c));
      expect(got.length).to.equal(ref.length);
      expect(relErr(got, ref)).to.be.lessThan(1e-4);
    });
  }

  it('falls back to the stock kernel for what it does not cover (dilation 2, leakyrelu), still right', async () => {
    const run = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(randomArray(2 * 9 * 9 * 16, 21), [2, 9, 9, 16]);
        const f = tf.tensor4d(randomArray(3 * 3 * 16 * 8, 22), [3, 3, 16, 8]);
        return [
          tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', dilations: 2 }).dataSync() as Float32Array,
          tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', activation: 'leakyrelu', leakyreluAlpha: 0.1 }).dataSync() as Float32Array,
        ];
      });
    const ref = await onBackend('cpu', run);
    const got = await onBackend('wasm', run);
    for (let i = 0; i < ref.length; i++) expect(relErr(got[i], ref[i])).to.be.lessThan(1e-4);
  });

  it('keeps the tensor count flat and trains: conv gradients through it equal the cpu backend', async () => {
    const grads = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(randomArray(2 * 8 * 8 * 16, 31), [2, 8, 8, 16]);
        const f = tf.tensor4d(randomArray(3 * 3 * 16 * 12, 32), [3, 3, 16, 12]);
        const bias = tf.tensor1d(randomArray(12, 33));
        const g = tf.grads((ff: tf.Tensor, bb: tf.Tensor) =>
          tf.sum(tf.square(tf.fused.conv2d({ x, filter: ff as tf.Tensor4D, strides: 1, pad: 'same', bias: bb, activation: 'relu' }))),
        );
        return g([f, bias]).map((t) => t.dataSync() as Float32Array);
      });
    const ref = await onBackend('cpu', grads);
    await onBackend('wasm', () => {
      const before = tf.memory().numTensors;
      const got = grads();
      expect(tf.memory().numTensors).to.equal(before);
      for (let i = 0; i < ref.length; i++) expect(relErr(got[i], ref[i])).to.be.lessThan(1e-4);
    });
  });

  it('sizes its tiles so the im2col rows stay near 256 KB', () => {
    expect(tilePixels(576)).to.equal(112); // 3x3x64
    expect(tilePixels(4608)).to.equal(16); // 3x3x512: floor(65536/4608)=14, at least 16
    expect(tilePixels(16)).to.equal(256);
  });
});

/**
 * Conv2D layers while a gradient is recorded on wasm run LtConv2D, whose gradient asks only for the inputs on a path
 * to a trainable variable: no dX for the first trainable conv. The stock path wastes it for linear-activation convs
 * (tfjs's fused.conv2d computes dX, dW and db together); with relu/relu6 tfjs unfuses into a lazy Conv2D. Layers:
 * linear+bias (3x3 'same': Winograd), linear (3x3/2 'valid': GEMM), relu6+bias with inputs above 6 (1x1, no
 * im2col), relu+bias, elu (not covered: the stock layer code).
 */
function buildConvNet(): tf.LayersModel {
  const input = tf.input({ shape: [10, 10, 5] });
  const conv = (t: tf.SymbolicTensor, args: Parameters<typeof tf.layers.conv2d>[0]): tf.SymbolicTensor => tf.layers.conv2d(args).apply(t) as tf.SymbolicTensor;
  let h = conv(input, { filters: 8, kernelSize: 3, padding: 'same' });
  h = conv(h, { filters: 12, kernelSize: 3, strides: 2, padding: 'valid', useBias: false });
  h = conv(h, { filters: 9, kernelSize: 1, activation: 'relu6' });
  h = conv(h, { filters: 7, kernelSize: 3, padding: 'same', activation: 'relu' });
  h = conv(h, { filters: 6, kernelSize: 3, padding: 'same', activation: 'elu' });
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  // the relu6 layer's kernel (weight 3) scaled so that some of its inputs exceed 6: both ends of its mask matter
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(randomArray(w.size, 200 + i), w.shape).mul(i === 3 ? 4 : 0.8)));
  return model;
}

interface GradRun {
  loss: number;
  grads: Record<string, Float32Array>;
  kernels: string[];
  relu6Above6: number;
  tensorsBefore: number;
  tensorsAfter: number;
}

async function convNetGrads(freezeFirst: boolean): Promise<GradRun> {
  const model = buildConvNet();
  if (freezeFirst) model.layers[1].trainable = false;
  const x = tf.tensor4d(randomArray(3 * 10 * 10 * 5, 41), [3, 10, 10, 5]).mul(2);
  const y = tf.oneHot(tf.tensor1d([0, 3, 1], 'int32'), 4);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = (): { value: tf.Scalar; grads: tf.NamedTensorMap } =>
    tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
  tf.dispose(Object.values(step().grads)); // warm-up, so the count below compares like with like
  const tensorsBefore = tf.memory().numTensors;
  let res: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
  const info = await tf.profile(() => {
    res = step();
  });
  const grads: Record<string, Float32Array> = {};
  model.trainableWeights.forEach((w, i) => {
    grads[`${i}`] = res!.grads[vars[i].name].dataSync() as Float32Array;
  });
  const loss = res!.value.dataSync()[0];
  tf.dispose([res!.value, ...Object.values(res!.grads)]);
  const tensorsAfter = tf.memory().numTensors;
  const relu6Above6 = tf.tidy(() => {
    const h = model.layers[2].apply(model.layers[1].apply(x)) as tf.Tensor4D;
    const [k, b] = model.layers[3].getWeights();
    return tf
      .conv2d(h, k as tf.Tensor4D, 1, 'valid')
      .add(b)
      .greater(6)
      .sum()
      .dataSync()[0];
  });
  tf.dispose([x, y]);
  model.dispose();
  return { loss, grads, kernels: info.kernels.map((k) => k.name), relu6Above6, tensorsBefore, tensorsAfter };
}

const count = (names: string[], k: string): number => names.filter((n) => n === k).length;

describe('engine/wasm Conv2D layers train through LtConv2D (lazy per-input gradients)', function () {
  this.timeout(120000);
  before(initWasm);

  for (const freezeFirst of [false, true]) {
    it(`gradients equal the cpu backend within 1e-4 and skip the unneeded dX${freezeFirst ? ' (first conv frozen)' : ''}`, async () => {
      const ref = await onBackend('cpu', () => convNetGrads(freezeFirst));
      const got = await onBackend('wasm', () => convNetGrads(freezeFirst));
      expect(got.relu6Above6, 'the relu6 layer clips somewhere').to.be.greaterThan(0);
      expect(Math.abs(got.loss - ref.loss) / Math.abs(ref.loss)).to.be.lessThan(1e-4);
      expect(Object.keys(got.grads)).to.deep.equal(Object.keys(ref.grads));
      for (const k of Object.keys(ref.grads)) expect(relErr(got.grads[k], ref.grads[k]), `weight ${k}`).to.be.lessThan(1e-4);
      // four layers routed (the elu one is not); dX only for the convs behind a trainable one
      expect(count(got.kernels, LT_CONV)).to.equal(4);
      expect(count(got.kernels, 'Conv2DBackpropInput')).to.equal(freezeFirst ? 3 : 4);
      expect(count(got.kernels, 'Conv2DBackpropFilter')).to.equal(freezeFirst ? 4 : 5);
      expect(count(ref.kernels, 'Conv2DBackpropInput')).to.equal(freezeFirst ? 4 : 5); // the stock path computes it
      expect(got.tensorsAfter).to.equal(got.tensorsBefore);
    });
  }

  it('inference (no tape) keeps the stock layer code: FusedConv2D with its fused activation', async () => {
    const names = await onBackend('wasm', async () => {
      const model = buildConvNet();
      const x = tf.tensor4d(randomArray(2 * 10 * 10 * 5, 51), [2, 10, 10, 5]);
      const info = await tf.profile(() => {
        tf.dispose(model.predict(x) as tf.Tensor);
      });
      tf.dispose(x);
      model.dispose();
      return info.kernels.map((k) => k.name);
    });
    expect(count(names, LT_CONV)).to.equal(0);
    expect(count(names, 'FusedConv2D')).to.equal(5);
  });
});
