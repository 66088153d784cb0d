import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';
import { tilePixels } from '../../src/engine/wasm/conv_forward';

type Pad = 'same' | 'valid' | number;
interface Case { k: number; s: number; pad: Pad; n: number; h: number; w: number; c: number; co: number; act: 'linear' | 'relu' | 'relu6'; bias: boolean }

// Input channels >= 4 take our GEMM (3-channel stems go to XNNPACK); output channels that are not multiples of 8 and
// pixel counts that are not multiples of 4 exercise the tails; 1x1 stride 1 unpadded runs without im2col.
const cases: Case[] = [];
for (const k of [1, 3, 7]) for (const s of [1, 2]) for (const pad of ['same', 'valid'] as Pad[]) {
  cases.push({ k, s, pad, n: 2, h: 11, w: 10, c: 17, co: 13, act: 'linear', bias: false });
}
cases.push({ k: 3, s: 1, pad: 'same', n: 3, h: 7, w: 9, c: 16, co: 5, act: 'relu', bias: true });
cases.push({ k: 3, s: 2, pad: 1, n: 1, h: 9, w: 9, c: 24, co: 70, act: 'relu6', bias: true });
cases.push({ k: 1, s: 1, pad: 'valid', n: 3, h: 5, w: 5, c: 33, co: 8, act: 'relu6', bias: true });
cases.push({ k: 1, s: 2, pad: 'valid', n: 2, h: 8, w: 8, c: 64, co: 128, act: 'linear', bias: false }); // ResNet's downsample
// a reduction longer than one 512-wide chunk (M = 9 * 96 = 864) and one tile with many pixel blocks
cases.push({ k: 3, s: 1, pad: 'same', n: 2, h: 14, w: 14, c: 96, co: 40, act: 'relu', bias: true });
// 5 input channels: ours, with odd im2col runs
cases.push({ k: 3, s: 1, pad: 'same', n: 2, h: 6, w: 7, c: 5, co: 9, act: 'relu', bias: true });
// a 3-channel stem: the stock kernel, still right
cases.push({ k: 7, s: 2, pad: 'same', n: 2, h: 15, w: 15, c: 3, co: 16, act: 'relu', bias: true });

const name = (c: Case): string => `k${c.k} s${c.s} pad=${c.pad} ${c.n}x${c.h}x${c.w}x${c.c}->${c.co} ${c.act}${c.bias ? '+bias' : ''}`;

function forward(c: Case): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(randomArray(c.n * c.h * c.w * c.c, 11), [c.n, c.h, c.w, c.c]);
    const f = tf.tensor4d(randomArray(c.k * c.k * c.c * c.co, 12), [c.k, c.k, c.c, c.co]);
    const bias = c.bias ? tf.tensor1d(randomArray(c.co, 13)) : undefined;
    return tf.fused.conv2d({ x, filter: f, strides: c.s, pad: c.pad as 'same', bias, activation: c.act }).dataSync() as Float32Array;
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

  it('falls back to the stock kernel for what it does not cover (dilation 2, leakyrelu), still right', async () => {
    const run = (): Float32Array[] => tf.tidy(() => {
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
    const grads = (): Float32Array[] => tf.tidy(() => {
      const x = tf.tensor4d(randomArray(2 * 8 * 8 * 16, 31), [2, 8, 8, 16]);
      const f = tf.tensor4d(randomArray(3 * 3 * 16 * 12, 32), [3, 3, 16, 12]);
      const bias = tf.tensor1d(randomArray(12, 33));
      const g = tf.grads((ff: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.square(tf.fused.conv2d({ x, filter: ff as tf.Tensor4D, strides: 1, pad: 'same', bias: bb, activation: 'relu' }))));
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
