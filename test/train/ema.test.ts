import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { emaDecay, WeightEma } from '../../src/train/ema';
import { EmaSchema } from '../../src/data/augment-schema';

/** dense(1) on 2 inputs, then BatchNorm: trainable kernel and bias, BN gamma/beta and the moving statistics. */
function tinyModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ inputShape: [2], units: 1, name: 'fc' }));
  m.add(tf.layers.batchNormalization({ name: 'bn' }));
  return m;
}

const weightOf = (m: tf.LayersModel, name: string) => m.weights.find((w) => w.originalName === name)!;

/** Every weight of the model set to `v` (the moving variance to `v + 10`, so the two kinds are told apart). */
function setAll(m: tf.LayersModel, v: number, except: string[] = []): void {
  for (const w of m.weights) {
    if (except.includes(w.originalName)) continue;
    const x = w.originalName.endsWith('moving_variance') ? v + 10 : v;
    tf.tidy(() => {
      w.write(tf.fill(w.shape as number[], x));
    });
  }
}

function emaValue(ema: WeightEma, name: string): number[] {
  return Array.from(ema.read().find((w) => w.name === name)!.values);
}

describe('weight EMA (timm ModelEmaV3)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('decays as min(decay, (1 + t)/(10 + t)) with warmup and as decay without', () => {
    expect(emaDecay({ decay: 0.25, warmup: true }, 1)).to.equal(2 / 11);
    expect(emaDecay({ decay: 0.25, warmup: true }, 2)).to.equal(0.25);
    expect(emaDecay({ decay: 0.9998, warmup: true }, 100)).to.equal(101 / 110);
    expect(emaDecay({ decay: 0.25, warmup: false }, 1)).to.equal(0.25);
  });

  // weights 1 → 2 → 4 → 0 over three steps, every weight alike (parameters AND BatchNorm moving statistics)
  const cases = [
    // warmup, decay 0.25: d = 2/11, then min(0.25, 3/12) = 0.25, then min(0.25, 4/13) = 0.25
    // e1 = 1 + (9/11)(2 − 1) = 20/11; e2 = 20/11 + 0.75(4 − 20/11) = 38/11; e3 = 38/11 · 0.25 = 9.5/11
    { warmup: true, expected: [20 / 11, 38 / 11, 9.5 / 11] },
    // d = 0.25 throughout: e1 = 1.75; e2 = 1.75 + 0.75 · 2.25 = 3.4375; e3 = 0.25 · 3.4375 = 0.859375
    { warmup: false, expected: [1.75, 3.4375, 0.859375] },
  ];
  for (const c of cases) {
    it(`matches the hand-computed averages over 3 steps, warmup ${c.warmup ? 'on' : 'off'}, BatchNorm statistics included`, () => {
      const m = tinyModel();
      setAll(m, 1);
      const frozen = weightOf(m, 'bn/beta');
      tf.tidy(() => {
        frozen.write(tf.fill([1], 0.1));
      });
      const ema = new WeightEma(m, EmaSchema.parse({ decay: 0.25, warmup: c.warmup }));
      const before = tf.memory().numTensors;
      [2, 4, 0].forEach((v, i) => {
        setAll(m, v, ['bn/beta']);
        ema.update();
        for (const name of ['fc/kernel', 'fc/bias', 'bn/gamma', 'bn/moving_mean']) {
          for (const x of emaValue(ema, name)) expect(x, `${name} step ${i + 1}`).to.be.closeTo(c.expected[i], 1e-6);
        }
        // the variance started at 11 and moves 12 → 14 → 10: the same average shifted by 10
        for (const x of emaValue(ema, 'bn/moving_variance')) expect(x, `variance step ${i + 1}`).to.be.closeTo(c.expected[i] + 10, 1e-5);
        // a weight that never moves keeps its exact bits (the lerp form adds (1 − d)·0)
        expect(emaValue(ema, 'bn/beta')[0]).to.equal(Math.fround(0.1));
      });
      expect(ema.steps).to.equal(3);
      expect(tf.memory().numTensors, 'no tensor kept per update').to.equal(before);
      ema.dispose();
      tf.dispose(m.weights.map((w) => w.read()));
    });
  }

  it('swaps the averages in for a call and puts the raw weights back bit for bit, also when the call throws', async () => {
    const m = tinyModel();
    setAll(m, 1);
    const ema = new WeightEma(m, EmaSchema.parse({ decay: 0.5, warmup: false }));
    setAll(m, 3);
    ema.update(); // every average is 2
    const raw = (weightOf(m, 'fc/kernel').read().dataSync() as Float32Array).slice();
    const before = tf.memory().numTensors;
    const seen = await ema.withAveragedWeights(async () => Array.from(weightOf(m, 'fc/kernel').read().dataSync()));
    expect(seen).to.deep.equal([2, 2]);
    expect(Array.from(weightOf(m, 'fc/kernel').read().dataSync())).to.deep.equal(Array.from(raw));
    let err: unknown;
    await ema
      .withAveragedWeights(async () => {
        throw new Error('boom');
      })
      .catch((e) => {
        err = e;
      });
    expect((err as Error).message).to.equal('boom');
    expect(Array.from(weightOf(m, 'bn/moving_mean').read().dataSync())).to.deep.equal([3]);
    expect(tf.memory().numTensors).to.equal(before);
    ema.dispose();
  });

  it('round-trips its state exactly: a restored EMA continues as the original does', () => {
    const m = tinyModel();
    setAll(m, 1);
    const a = new WeightEma(m, EmaSchema.parse({ decay: 0.9, warmup: true }));
    setAll(m, 1.37);
    a.update();
    setAll(m, -0.21);
    a.update();
    const s = a.getState();
    expect(s.updates).to.equal(2);
    const b = new WeightEma(m, EmaSchema.parse({ decay: 0.9, warmup: true }));
    b.setState(s);
    setAll(m, 0.77);
    a.update();
    b.update();
    const ra = a.read();
    const rb = b.read();
    ra.forEach((w, i) => expect(Buffer.from(rb[i].values.buffer).equals(Buffer.from(w.values.buffer)), w.name).to.equal(true));
    expect(b.record()).to.deep.equal(a.record());
    expect(a.record().lastDecay).to.equal(emaDecay({ decay: 0.9, warmup: true }, 3));
    a.dispose();
    b.dispose();
  });
});
