import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';
import {
  tileBlock,
  winogradBpFilterWorthIt,
  winogradConv3x3,
  winogradConv3x3BackpropFilter,
  winogradConv3x3BackpropInput,
  winogradTile,
  winogradWorthIt,
  type ConvAttrs,
  type WinogradActivation,
  type WinogradOptions,
} from '../../src/engine/wasm/winograd';

interface Case {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  act: WinogradActivation;
  bias: boolean;
  bt?: number;
}

// Random-looking shapes in [1..3, 5..17, 5..17, 3..70] -> 1..70: odd sizes (partial tiles at the right and bottom),
// channel counts that are not multiples of 4 or 8, tile counts that are not multiples of 4; bt: small tile blocks,
// so several blocks run and the last is partial.
const cases: Case[] = [
  { n: 1, h: 5, w: 5, ci: 3, co: 1, act: 'relu6', bias: true },
  { n: 2, h: 7, w: 9, ci: 5, co: 13, act: 'relu', bias: true, bt: 8 },
  { n: 3, h: 17, w: 16, ci: 70, co: 70, act: 'linear', bias: false },
  { n: 1, h: 11, w: 6, ci: 17, co: 9, act: 'relu6', bias: true, bt: 4 },
  { n: 2, h: 13, w: 17, ci: 8, co: 64, act: 'relu', bias: true },
  { n: 3, h: 9, w: 12, ci: 33, co: 7, act: 'linear', bias: true, bt: 12 },
  { n: 1, h: 16, w: 16, ci: 4, co: 8, act: 'relu', bias: false },
  { n: 2, h: 5, w: 17, ci: 64, co: 3, act: 'relu6', bias: true },
  { n: 1, h: 6, w: 10, ci: 70, co: 69, act: 'relu6', bias: true, bt: 8 },
  { n: 2, h: 15, w: 5, ci: 12, co: 1, act: 'linear', bias: false },
];
const name = (c: Case): string => `${c.n}x${c.h}x${c.w}x${c.ci}->${c.co} ${c.act}${c.bias ? '+bias' : ''}${c.bt ? ` bt${c.bt}` : ''}`;

function inputs(c: Case): { x: tf.Tensor4D; f: tf.Tensor4D; bias: tf.Tensor1D; dy: tf.Tensor4D } {
  return {
    x: tf.tensor4d(randomArray(c.n * c.h * c.w * c.ci, 1), [c.n, c.h, c.w, c.ci]),
    f: tf.tensor4d(randomArray(9 * c.ci * c.co, 2), [3, 3, c.ci, c.co]),
    bias: tf.tensor1d(randomArray(c.co, 3)),
    dy: tf.tensor4d(randomArray(c.n * c.h * c.w * c.co, 4), [c.n, c.h, c.w, c.co]),
  };
}

type Results = [Float32Array, Float32Array, Float32Array];

/**
 * dW[kh,kw] = x shifted by the tap (zero-padded)^T * dy: 9 matmuls. The cpu backend's own Conv2DBackpropFilter is a
 * scalar loop that takes ~40 s on the ResNet shapes below.
 */
function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor {
  const [n, h, w, ci] = x.shape;
  const co = dy.shape[3];
  const xp = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const d = tf.reshape(dy, [n * h * w, co]);
  const taps: tf.Tensor[] = [];
  for (let kh = 0; kh < 3; kh++) {
    for (let kw = 0; kw < 3; kw++) {
      taps.push(tf.matMul(tf.reshape(tf.slice(xp, [0, kh, kw, 0], [n, h, w, ci]), [n * h * w, ci]), d, true, false));
    }
  }
  return tf.reshape(tf.stack(taps), [3, 3, ci, co]);
}

/** The cpu backend's forward conv (fused bias + activation), dX (the gradient of sum(conv2d(x, f) * dy)) and dW. */
function reference(c: Case): Results {
  return tf.tidy(() => {
    const { x, f, bias, dy } = inputs(c);
    const y = tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', bias: c.bias ? bias : undefined, activation: c.act });
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, f, 1, 'same'), dy)))(x);
    return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array, filterGradient(x, dy).dataSync() as Float32Array];
  });
}

const wrap = (t: tf.TensorInfo | null): tf.Tensor => {
  expect(t, 'winograd returned null').to.not.equal(null);
  return tf.engine().makeTensorFromTensorInfo(t!);
};

/** Our forward conv, dX and dW on the (active) wasm backend. */
function ours(c: Case, opts: WinogradOptions): Results {
  return tf.tidy(() => {
    const b = tf.backend() as BackendWasm;
    const { x, f, bias, dy } = inputs(c);
    const y = wrap(winogradConv3x3(b, x, f, c.bias ? bias : null, c.act, { strides: 1, pad: 'same' }, opts));
    const dx = wrap(winogradConv3x3BackpropInput(b, dy, f, x.shape, { strides: 1, pad: 'same' }, opts));
    const dw = wrap(winogradConv3x3BackpropFilter(b, x, dy, f.shape, { strides: 1, pad: 'same' }, opts));
    return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array, dw.dataSync() as Float32Array];
  });
}

function expectClose(got: Results, ref: Results): void {
  expect(relErr(got[0], ref[0]), 'forward').to.be.lessThan(1e-4);
  expect(relErr(got[1], ref[1]), 'dX').to.be.lessThan(1e-4);
  expect(relErr(got[2], ref[2]), 'dW').to.be.lessThan(1e-4);
}

describe('engine/wasm Winograd 3x3 convolutions (winograd.ts)', function () {
  this.timeout(120000);
  before(initWasm);

  for (const c of cases) {
    for (const m of [2, 4] as const) {
      it(`F(${m}x${m},3x3) forward, dX and dW equal the cpu backend within 1e-4: ${name(c)}`, async () => {
        const ref = await onBackend('cpu', () => reference(c));
        expectClose(await onBackend('wasm', () => ours(c, { force: true, m, tileBlock: c.bt })), ref);
      });
    }
  }

  // ResNet-18's first and last 3x3 stride-1 layers, default tile (F(4x4,3x3)) and block size.
  for (const c of [
    { n: 2, h: 56, w: 56, ci: 64, co: 64, act: 'relu', bias: true },
    { n: 2, h: 7, w: 7, ci: 512, co: 512, act: 'linear', bias: false },
  ] as Case[]) {
    it(`ResNet layer ${name(c)}: forward, dX and dW within 1e-4, by default (no force)`, async () => {
      expect(winogradWorthIt(c.n, c.h, c.w, c.ci, c.co) && winogradWorthIt(c.n, c.h, c.w, c.co, c.ci)).to.equal(true);
      expect(winogradBpFilterWorthIt(c.n, c.h, c.w, c.ci, c.co)).to.equal(true);
      const ref = await onBackend('cpu', () => reference(c));
      expectClose(await onBackend('wasm', () => ours(c, {})), ref);
    });
  }

  it('accepts padding 1 and explicit [[0,0],[1,1],[1,1],[0,0]] as "same", and a tfjs Conv2D attrs object', async () => {
    const c: Case = { n: 2, h: 8, w: 7, ci: 8, co: 8, act: 'linear', bias: false };
    const [refY, refDx, refDw] = await onBackend('cpu', () => reference(c));
    const pads: ConvAttrs[] = [
      { pad: 1 },
      {
        pad: [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ],
      },
      { strides: [1, 1], pad: 'same', dilations: [1, 1], dataFormat: 'NHWC' },
    ];
    await onBackend('wasm', () => {
      const b = tf.backend() as BackendWasm;
      for (const conv of pads) {
        tf.tidy(() => {
          const { x, f, dy } = inputs(c);
          expect(relErr(wrap(winogradConv3x3(b, x, f, null, 'linear', conv)).dataSync(), refY)).to.be.lessThan(1e-4);
          expect(relErr(wrap(winogradConv3x3BackpropInput(b, dy, f, x.shape, conv)).dataSync(), refDx)).to.be.lessThan(1e-4);
          expect(relErr(wrap(winogradConv3x3BackpropFilter(b, x, dy, f.shape, conv)).dataSync(), refDw)).to.be.lessThan(1e-4);
        });
      }
    });
  });

  it('returns null (allocating nothing) for what it does not cover, so the caller falls back', async () => {
    await onBackend('wasm', () => {
      const b = tf.backend() as BackendWasm;
      const x = tf.tensor4d(randomArray(2 * 9 * 9 * 8, 5), [2, 9, 9, 8]);
      const dy = tf.tensor4d(randomArray(2 * 9 * 9 * 8, 6), [2, 9, 9, 8]);
      const f3 = tf.tensor4d(randomArray(9 * 8 * 8, 7), [3, 3, 8, 8]);
      const f5 = tf.tensor4d(randomArray(25 * 8 * 8, 8), [5, 5, 8, 8]);
      const f1 = tf.tensor4d(randomArray(8 * 8, 9), [1, 1, 8, 8]);
      const xi = tf.cast(x, 'int32') as tf.Tensor4D;
      const before = tf.memory().numTensors;
      const notCovered: [string, ConvAttrs, tf.Tensor4D][] = [
        ['stride 2', { strides: 2, pad: 'same' }, f3],
        ['stride [1,2]', { strides: [1, 2], pad: 'same' }, f3],
        ['5x5', { strides: 1, pad: 'same' }, f5],
        ['1x1', { strides: 1, pad: 'same' }, f1],
        ['valid padding', { strides: 1, pad: 'valid' }, f3],
        ['padding 2', { strides: 1, pad: 2 }, f3],
        [
          'explicit padding [[0,0],[1,0],[1,1],[0,0]]',
          {
            strides: 1,
            pad: [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 0],
            ],
          },
          f3,
        ],
        ['dilation 2', { strides: 1, pad: 'same', dilations: 2 }, f3],
        ['NCHW', { strides: 1, pad: 'same', dataFormat: 'NCHW' }, f3],
      ];
      for (const [what, conv, f] of notCovered) {
        expect(winogradConv3x3(b, x, f, null, 'linear', conv, { force: true }), what).to.equal(null);
        expect(winogradConv3x3BackpropInput(b, dy, f, x.shape, conv, { force: true }), `dX ${what}`).to.equal(null);
        expect(winogradConv3x3BackpropFilter(b, x, dy, f.shape, conv, { force: true }), `dW ${what}`).to.equal(null);
      }
      expect(winogradConv3x3(b, xi, f3, null, 'linear', {}, { force: true }), 'int32').to.equal(null);
      expect(winogradConv3x3(b, x, f3, null, 'leakyrelu' as WinogradActivation, {}, { force: true }), 'leakyrelu').to.equal(null);
      expect(winogradConv3x3BackpropInput(b, dy, f3, [2, 9, 9, 4], {}, { force: true }), 'dX: xShape channels vs filter').to.equal(null);
      expect(winogradConv3x3BackpropInput(b, dy, f3, [2, 8, 9, 8], {}, { force: true }), 'dX: xShape rows vs dy').to.equal(null);
      expect(winogradConv3x3BackpropFilter(b, x, dy, [3, 3, 4, 8], {}, { force: true }), 'dW: filterShape vs x').to.equal(null);
      expect(winogradConv3x3BackpropFilter(b, x, dy, [3, 3, 8, 5], {}, { force: true }), 'dW: filterShape vs dy').to.equal(null);
      expect(winogradConv3x3BackpropFilter(b, xi, dy, [3, 3, 8, 8], {}, { force: true }), 'dW int32').to.equal(null);
      expect(tf.memory().numTensors).to.equal(before);
      tf.dispose([x, dy, f3, f5, f1, xi]);
    });
  });

  it('declines (null) where the direct kernels are faster, unless forced', async () => {
    expect(winogradWorthIt(16, 56, 56, 64, 64)).to.equal(true);
    expect(winogradWorthIt(1, 56, 56, 64, 64)).to.equal(true);
    expect(winogradWorthIt(16, 7, 7, 512, 512)).to.equal(true);
    expect(winogradWorthIt(1, 7, 7, 512, 512)).to.equal(true);
    expect(winogradWorthIt(16, 2, 2, 256, 256)).to.equal(true);
    expect(winogradWorthIt(4, 4, 4, 512, 512)).to.equal(true);
    expect(winogradWorthIt(2, 4, 4, 512, 512)).to.equal(false); // few tiles: the filter transform dominates
    expect(winogradWorthIt(16, 56, 56, 64, 3)).to.equal(false); // dX of a 3-channel stem
    expect(winogradWorthIt(16, 56, 56, 1, 16)).to.equal(false);
    expect(winogradWorthIt(16, 1, 1, 256, 256)).to.equal(false);
    expect(winogradWorthIt(16, 1, 64, 64, 64)).to.equal(false);
    expect(winogradBpFilterWorthIt(16, 56, 56, 1, 16)).to.equal(true);
    expect(winogradBpFilterWorthIt(16, 1, 1, 256, 256)).to.equal(false);
    expect(winogradBpFilterWorthIt(1, 4, 4, 512, 512)).to.equal(false);
    expect(winogradTile(56, 56)).to.equal(4);
    expect(winogradTile(7, 7)).to.equal(4);
    expect(winogradTile(2, 2)).to.equal(2);
    expect(winogradTile(6, 6)).to.equal(4);
    expect(winogradTile(5, 10)).to.equal(4);
    expect(winogradTile(2, 8)).to.equal(2);
    expect(tileBlock(4, 64, 64)).to.equal(64);
    expect(tileBlock(4, 512, 512)).to.equal(128);
    await onBackend('wasm', () => {
      const b = tf.backend() as BackendWasm;
      const x = tf.tensor4d(randomArray(1 * 8 * 8 * 64, 10), [1, 8, 8, 64]);
      const dy = tf.tensor4d(randomArray(1 * 8 * 8 * 2, 11), [1, 8, 8, 2]);
      const f = tf.tensor4d(randomArray(9 * 64 * 2, 12), [3, 3, 64, 2]);
      expect(winogradConv3x3(b, x, f, null)).to.equal(null); // 2 output channels
      const forced = wrap(winogradConv3x3(b, x, f, null, 'linear', {}, { force: true }));
      expect(forced.shape).to.deep.equal([1, 8, 8, 2]);
      const dx = wrap(winogradConv3x3BackpropInput(b, dy, f, x.shape)); // dX has 64 output channels: runs
      expect(dx.shape).to.deep.equal([1, 8, 8, 64]);
      const x1 = tf.tensor4d(randomArray(64, 13), [1, 1, 1, 64]);
      const dy1 = tf.tensor4d(randomArray(2, 14), [1, 1, 1, 2]);
      expect(winogradConv3x3BackpropFilter(b, x1, dy1, f.shape)).to.equal(null); // 1x1 images
      tf.dispose([x, dy, f, forced, dx, x1, dy1]);
    });
  });

  it('leaks no tensors, bytes or backend buffers over repeated calls', async () => {
    await onBackend('wasm', () => {
      const b = tf.backend() as BackendWasm;
      const c: Case = { n: 2, h: 9, w: 11, ci: 20, co: 12, act: 'relu', bias: true };
      const { x, f, bias, dy } = inputs(c);
      const run = (): void => {
        for (const m of [2, 4] as const) {
          const y = wrap(winogradConv3x3(b, x, f, bias, 'relu', {}, { m }));
          const dx = wrap(winogradConv3x3BackpropInput(b, dy, f, x.shape, {}, { m }));
          const dw = wrap(winogradConv3x3BackpropFilter(b, x, dy, f.shape, {}, { m }));
          tf.dispose([y, dx, dw]);
        }
      };
      run();
      const before = tf.memory();
      const dataIds = b.numDataIds();
      for (let i = 0; i < 3; i++) run();
      expect(tf.memory().numTensors).to.equal(before.numTensors);
      expect(tf.memory().numBytes).to.equal(before.numBytes);
      expect(b.numDataIds()).to.equal(dataIds);
      tf.dispose([x, f, bias, dy]);
    });
  });
});
