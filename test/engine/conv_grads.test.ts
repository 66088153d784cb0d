import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend, randomArray, relErr } from './wasm_setup';

type Pad = 'same' | 'valid' | number;
interface Case {
  k: number;
  s: number;
  pad: Pad;
  h: number;
  w: number;
  c: number;
  co: number;
}

// Every configuration MobileNet v1/v2 and ResNet use, plus odd sizes that make 'same' padding asymmetric
// and an explicit numeric pad.
const cases: Case[] = [];
for (const k of [1, 3, 7])
  for (const s of [1, 2])
    for (const pad of ['same', 'valid'] as Pad[]) {
      cases.push({ k, s, pad, h: 11, w: 10, c: 5, co: 6 });
    }
cases.push({ k: 3, s: 2, pad: 1, h: 9, w: 9, c: 4, co: 8 });
cases.push({ k: 3, s: 1, pad: 'same', h: 8, w: 8, c: 16, co: 32 });
// Channel counts that mix the SIMD register blocks (4 ci x 8 co, 4 px x 8 ci) with every tail path.
cases.push({ k: 3, s: 2, pad: 'same', h: 13, w: 14, c: 12, co: 20 });
cases.push({ k: 1, s: 1, pad: 'valid', h: 7, w: 9, c: 36, co: 9 });
cases.push({ k: 3, s: 2, pad: 'same', h: 16, w: 16, c: 3, co: 8 });
cases.push({ k: 7, s: 2, pad: 3, h: 15, w: 15, c: 3, co: 16 });
// Stride-1 explicit padding (depthwise dX through the forward kernel) and the 3x3 dW fast path (C % 4 == 0)
// with borders on every side, at stride 1 and 2.
cases.push({ k: 5, s: 1, pad: 1, h: 9, w: 8, c: 4, co: 4 });
cases.push({ k: 3, s: 1, pad: 'same', h: 7, w: 6, c: 8, co: 8 });
cases.push({ k: 3, s: 2, pad: 'valid', h: 9, w: 10, c: 12, co: 12 });
cases.push({ k: 1, s: 1, pad: 1, h: 5, w: 6, c: 4, co: 4 }); // pad wider than the filter: scatter-loop fallback

const N = 2;
const name = (c: Case): string => `k${c.k} s${c.s} pad=${c.pad} ${c.h}x${c.w}x${c.c}->${c.co}`;

/** Gradients of sum(conv(x, f) * g) w.r.t. x and f, i.e. the backprop kernels with dy = g. */
function convGrads(c: Case, depthwise: boolean): { dx: Float32Array; df: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(randomArray(N * c.h * c.w * c.c, 1), [N, c.h, c.w, c.c]);
    const fShape: [number, number, number, number] = [c.k, c.k, c.c, depthwise ? 1 : c.co];
    const f = tf.tensor4d(
      randomArray(
        fShape.reduce((a, b) => a * b),
        2,
      ),
      fShape,
    );
    const fwd = (xx: tf.Tensor4D, ff: tf.Tensor4D): tf.Tensor4D => (depthwise ? tf.depthwiseConv2d(xx, ff, c.s, c.pad) : tf.conv2d(xx, ff, c.s, c.pad));
    const y = fwd(x, f);
    const g = tf.tensor(randomArray(y.size, 3), y.shape);
    const [dx, df] = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
      fwd(xx as tf.Tensor4D, ff as tf.Tensor4D)
        .mul(g)
        .sum(),
    )([x, f]);
    return { dx: dx.dataSync() as Float32Array, df: df.dataSync() as Float32Array };
  });
}

describe('engine/wasm conv gradient kernels vs cpu', function () {
  this.timeout(60000);
  before(initWasm);

  for (const depthwise of [false, true]) {
    for (const c of cases) {
      it(`${depthwise ? 'depthwise' : 'conv2d'} ${name(c)}: dx and dW within 1e-4`, async () => {
        const ref = await onBackend('cpu', () => convGrads(c, depthwise));
        const got = await onBackend('wasm', () => convGrads(c, depthwise));
        expect(relErr(got.df, ref.df), 'dW').to.be.lessThan(1e-4);
        expect(relErr(got.dx, ref.dx), 'dx').to.be.lessThan(1e-4);
        // Guard against a vacuous pass (e.g. both all zero).
        expect(Math.max(...Array.from(ref.df, Math.abs))).to.be.greaterThan(0);
      });
    }
  }

  it('direct kernel calls allocate exactly one output and leak nothing', async () => {
    await onBackend('wasm', () => {
      const x = tf.randomNormal([2, 9, 9, 4]) as tf.Tensor4D;
      const f = tf.randomNormal([3, 3, 4, 1]) as tf.Tensor4D;
      const g = tf.randomNormal([2, 5, 5, 4]);
      const step = (): void => {
        tf.tidy(() => {
          tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
            tf
              .depthwiseConv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 2, 'same')
              .mul(g)
              .sum(),
          )([x, f]);
          tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
            tf
              .conv2d(xx as tf.Tensor4D, tf.tile(ff, [1, 1, 1, 4]) as tf.Tensor4D, 2, 'same')
              .mul(g)
              .sum(),
          )([x, f]);
        });
      };
      step();
      const before = tf.memory().numTensors;
      const bytesBefore = tf.memory().numBytes;
      for (let i = 0; i < 5; i++) step();
      expect(tf.memory().numTensors).to.equal(before);
      expect(tf.memory().numBytes).to.equal(bytesBefore);
      tf.dispose([x, f, g]);
    });
  });
});
