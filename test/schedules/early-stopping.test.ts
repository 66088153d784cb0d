/** EarlyStopping on synthetic metric sequences (hand-traced Keras semantics) and restoreBestWeights on tf variables. */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../src/errors';
import { EarlyStopping, EarlyStoppingSchema, resolveMode, type EarlyStoppingInput, type WeightStore } from '../../src/schedules';

function es(opts: EarlyStoppingInput, store?: WeightStore): EarlyStopping {
  return new EarlyStopping(EarlyStoppingSchema.parse(opts), store);
}

/** Feed the sequence until stop; returns the stop epoch (or null) and the isBest flags of the epochs that ran. */
function run(e: EarlyStopping, monitor: string, values: number[]): { stopAt: number | null; best: boolean[]; reason?: string } {
  const best: boolean[] = [];
  for (let epoch = 0; epoch < values.length; epoch++) {
    const d = e.onEpochEnd(epoch, { [monitor]: values[epoch] });
    best.push(d.isBest);
    if (d.stop) return { stopAt: epoch, best, reason: d.reason };
  }
  return { stopAt: null, best };
}

/** A WeightStore over bare variables: EarlyStopping needs no more than read and write (models use modelWeights). */
const storeOver = (vs: tf.Variable[]): WeightStore => ({
  read: () => vs.map((v) => ({ name: v.name, shape: v.shape.slice(), dtype: 'float32', values: (v.dataSync() as Float32Array).slice() })),
  write: (snap) => snap.forEach((w, i) => tf.tidy(() => vs[i].assign(tf.tensor(w.values, w.shape, w.dtype)))),
});

describe('schedules: EarlyStopping (Keras semantics)', () => {
  it('min, patience 2: stops when the wait reaches patience', () => {
    // e0 best 1.0; e1 best 0.9; e2 wait 1; e3 wait 2 ≥ 2 → stop
    const r = run(es({ monitor: 'val_loss', patience: 2 }), 'val_loss', [1.0, 0.9, 0.95, 0.92, 0.5]);
    expect(r.stopAt).to.equal(3);
    expect(r.best).to.deep.equal([true, true, false, false]);
    expect(r.reason).to.equal('early stopping: val_loss has not improved by more than 0 for 2 epochs (best 0.9 at epoch 1)');
  });

  it('max via auto (val_acc), minDelta 0.01: a gain of 0.005 is no improvement', () => {
    // e0 best .5; e1 .505−.01 ≤ .5 wait 1; e2 .52−.01 > .5 best; e3 wait 1; e4 wait 2 → stop
    const r = run(es({ monitor: 'val_acc', patience: 2, minDelta: 0.01 }), 'val_acc', [0.5, 0.505, 0.52, 0.525, 0.529]);
    expect(r.stopAt).to.equal(4);
    expect(r.best).to.deep.equal([true, false, true, false, false]);
  });

  it('patience 0 stops at the first non-improving epoch', () => {
    expect(run(es({ patience: 0 }), 'val_loss', [1, 0.5, 0.5]).stopAt).to.equal(2);
    expect(run(es({ patience: 0, baseline: 0.1 }), 'val_loss', [1, 2]).stopAt).to.equal(1);
  });

  it('baseline: the wait only resets once the baseline is beaten', () => {
    // baseline 0.5: e0 .8 best, wait 1 (not below baseline); e1 .7 best, wait 2; e2 .7 no gain, wait 3 ≥ 2 → stop
    const a = run(es({ patience: 2, baseline: 0.5 }), 'val_loss', [0.8, 0.7, 0.7, 0.1]);
    expect(a.stopAt).to.equal(2);
    expect(a.reason).to.include('has not beaten the baseline 0.5 for 3 epochs');
    // e1 .4 beats the baseline: wait 0; e2, e3 wait 1, 2 → stop at 3
    expect(run(es({ patience: 2, baseline: 0.5 }), 'val_loss', [0.8, 0.4, 0.45, 0.45, 0.1]).stopAt).to.equal(3);
  });

  it('startFromEpoch ignores the first epochs; NaN is never an improvement', () => {
    const r = run(es({ patience: 1, startFromEpoch: 2 }), 'val_loss', [0.1, 0.1, 5, 4, 4.5]);
    expect(r.best).to.deep.equal([false, false, true, true, false]);
    expect(r.stopAt).to.equal(4);
    expect(run(es({ patience: 1 }), 'val_loss', [1, NaN]).stopAt).to.equal(1);
  });

  it('state survives a JSON round trip mid-run', () => {
    const values = [1.0, 0.9, 0.95, 0.89, 0.9, 0.91, 0.92, 0.93];
    const whole = run(es({ patience: 3 }), 'val_loss', values);
    const a = es({ patience: 3 });
    run(a, 'val_loss', values.slice(0, 5));
    const b = es({ patience: 3 });
    b.setState(JSON.parse(JSON.stringify(a.getState())));
    let stopAt: number | null = null;
    for (let epoch = 5; epoch < values.length && stopAt === null; epoch++) {
      if (b.onEpochEnd(epoch, { val_loss: values[epoch] }).stop) stopAt = epoch;
    }
    expect(whole.stopAt).to.equal(6);
    expect(stopAt).to.equal(whole.stopAt);
  });

  it('auto mode follows Keras 2: "acc" in the name → max', () => {
    expect(resolveMode('auto', 'val_accuracy')).to.equal('max');
    expect(resolveMode('auto', 'acc')).to.equal('max');
    expect(resolveMode('auto', 'val_loss')).to.equal('min');
    expect(resolveMode('min', 'val_acc')).to.equal('min');
  });

  it('user mistakes are ConfigErrors', () => {
    expect(() => es({ monitor: 'val_f1' }).onEpochEnd(0, { val_loss: 1 })).to.throw(ConfigError, 'earlyStopping.monitor');
    expect(() => es({ restoreBestWeights: true })).to.throw(ConfigError, 'earlyStopping.restoreBestWeights');
    expect(() => EarlyStoppingSchema.parse({ patience: -1 })).to.throw();
  });
});

describe('schedules: EarlyStopping restoreBestWeights', () => {
  let vars: tf.Variable[] = [];
  before(async () => {
    await tf.setBackend('cpu');
  });
  beforeEach(() => {
    vars = [tf.variable(tf.zeros([2, 3]), true, 'dense/kernel'), tf.variable(tf.zeros([3]), true, 'dense/bias')];
  });
  afterEach(() => vars.forEach((v) => v.dispose()));

  /** Weights of "epoch e": kernel filled with e, bias with 10·e. */
  function train(epoch: number): void {
    tf.tidy(() => {
      vars[0].assign(tf.fill([2, 3], epoch));
      vars[1].assign(tf.fill([3], 10 * epoch));
    });
  }

  it("writes the best epoch's weights back at the end, with numTensors flat", () => {
    const e = es({ patience: 2, restoreBestWeights: true }, storeOver(vars));
    const losses = [1.0, 0.4, 0.6, 0.5, 0.45, 0.3];
    const before = tf.memory().numTensors;
    let stopAt = -1;
    for (let epoch = 0; epoch < losses.length; epoch++) {
      train(epoch);
      if (e.onEpochEnd(epoch, { val_loss: losses[epoch] }).stop) {
        stopAt = epoch;
        break;
      }
      expect(tf.memory().numTensors, `epoch ${epoch}`).to.equal(before);
    }
    expect(stopAt).to.equal(3);
    expect(Array.from(vars[0].dataSync())).to.deep.equal([3, 3, 3, 3, 3, 3]);
    expect(e.onTrainEnd()).to.deep.equal({ restored: true, bestEpoch: 1 });
    expect(Array.from(vars[0].dataSync())).to.deep.equal([1, 1, 1, 1, 1, 1]);
    expect(Array.from(vars[1].dataSync())).to.deep.equal([10, 10, 10]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it("without any improvement after the first epoch, the first epoch's weights come back", () => {
    const e = es({ patience: 1, restoreBestWeights: true }, storeOver(vars));
    for (const [epoch, loss] of [1, 2, 3].entries()) {
      train(epoch + 5);
      e.onEpochEnd(epoch, { val_loss: loss });
    }
    expect(e.onTrainEnd().bestEpoch).to.equal(0);
    expect(Array.from(vars[1].dataSync())).to.deep.equal([50, 50, 50]);
  });
});
