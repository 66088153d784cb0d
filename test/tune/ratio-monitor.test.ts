import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { GroupedOptimizer } from '../../src/optim';
import { RatioMonitor, geometricMean, nudge } from '../../src/train/ratio-monitor';
import type { BatchInfo } from '../../src/train/callbacks';
import { ConfigError } from '../../src/errors';

const info = (step: number, updateRatios: Record<string, number>): BatchInfo => ({
  epoch: 0,
  step,
  batchInEpoch: step,
  batchesPerEpoch: 100,
  loss: 1,
  accuracy: 0,
  examples: 1,
  lrs: {},
  updateRatios,
});

describe('update/weight-ratio monitor', () => {
  it('nudges within bounds (hand-computed)', () => {
    const cfg = { maxStep: 2, minMult: 0.01, maxMult: 100 };
    expect(nudge(1, 1000, cfg)).to.equal(2);
    expect(nudge(1, 1.5, cfg)).to.equal(1.5);
    expect(nudge(1, 0.001, cfg)).to.equal(0.5);
    expect(nudge(80, 1000, cfg)).to.equal(100);
    expect(nudge(0.015, 0.001, cfg)).to.equal(0.01);
    expect(geometricMean([1e-5, 1e-3])).to.be.closeTo(1e-4, 1e-16);
  });

  it('warns after K steps outside [1e-4, 1e-2] with the factor the rate would need; in-range or side-switching steps reset the count', () => {
    const lines: string[] = [];
    const m = new RatioMonitor({ patience: 3 }, { log: (s) => lines.push(s) });
    m.afterStep(info(0, { a: 1e-5, b: 1e-3, c: 5e-2 }));
    m.afterStep(info(1, { a: 4e-5, b: 2e-3, c: 1e-5 })); // c switches side: its run restarts
    expect(m.warnings).to.have.length(0);
    m.afterStep(info(2, { a: 1e-5 / 1.6, b: 5e-3, c: 1e-5 }));
    expect(m.warnings).to.have.length(1);
    const w = m.warnings[0];
    expect(w.group).to.equal('a');
    expect(w.step).to.equal(2);
    expect(w.direction).to.equal('low');
    // geometric mean of 1e-5, 4e-5, 6.25e-6 = (2.5e-15)^(1/3) = 1.357e-5; factor = 1e-3 / that = 73.68
    expect(w.ratio).to.be.closeTo(Math.cbrt(1e-5 * 4e-5 * 6.25e-6), 1e-18);
    expect(w.factor).to.be.closeTo(1e-3 / Math.cbrt(2.5e-15), 1e-9);
    expect(lines[0]).to.match(/group a .*below.*x73\.7/);
    // a low step, then an in-range one: the count restarts, so two more low steps are not enough
    m.afterStep(info(3, { a: 1e-6 }));
    m.afterStep(info(4, { a: 1e-3 }));
    m.afterStep(info(5, { a: 1e-6 }));
    m.afterStep(info(6, { a: 1e-6 }));
    expect(m.warnings).to.have.length(1);
    // c was low at steps 1 and 2 (not reported at 3-6) and is low again now: three in a row
    m.afterStep(info(7, { a: 1e-6, c: 1e-5 }));
    expect(m.warnings.map((x) => `${x.group}@${x.step}`)).to.deep.equal(['a@2', 'a@7', 'c@7']);
    expect(m.warnings[1].factor).to.be.closeTo(1000, 1e-6);
    expect(m.warnings[2].factor).to.be.closeTo(100, 1e-6);
    // zero ratios (zero-initialised biases) carry no information and are ignored
    for (let s = 8; s < 13; s++) m.afterStep(info(s, { z: 0 }));
    expect(m.warnings).to.have.length(3);
  });

  it('autoAdjust moves a real GroupedOptimizer group toward 1e-3 (ratio = 0.1·lr/(1 − 0.1·lr) for g = 0.1·w)', () => {
    const vars = { a: tf.variable(tf.tensor1d([3, 4])), b: tf.variable(tf.tensor1d([1, 2])), c: tf.variable(tf.tensor1d([6, 8])) };
    const opt = new GroupedOptimizer(
      [
        { name: 'slow', params: ['a'], lr: 1e-5, weightDecay: 0, decayMode: 'coupled' },
        { name: 'fine', params: ['b'], lr: 1e-2, weightDecay: 0, decayMode: 'coupled' },
        { name: 'fast', params: ['c'], lr: 1, weightDecay: 0, decayMode: 'coupled' },
      ],
      { algorithm: 'sgd' },
    );
    const mon = new RatioMonitor({ patience: 3, autoAdjust: true, maxStep: 2 }, { optimizer: opt, log: () => {} });
    const n0 = tf.memory().numTensors;
    const ratiosSeen: Record<string, number>[] = [];
    for (let step = 0; step < 6; step++) {
      const grads = tf.tidy(() => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, tf.mul(v, 0.1)])));
      const r = opt.step(grads, vars, 1, { norms: true });
      tf.dispose(Object.values(grads));
      const ratios = Object.fromEntries(Object.entries(r.norms!.groups).map(([g, n]) => [g, n.update / n.weight]));
      ratiosSeen.push(ratios);
      mon.afterStep(info(step, ratios));
    }
    expect(tf.memory().numTensors).to.equal(n0);
    const expectRatio = (lr: number) => (0.1 * lr) / (1 - 0.1 * lr);
    expect(ratiosSeen[0].slow).to.be.closeTo(expectRatio(1e-5), 1e-9);
    expect(ratiosSeen[0].fast).to.be.closeTo(expectRatio(1), 1e-6);
    // slow: ratio 1e-6 → needs x1000, capped at x2 per adjustment: 1e-5 → 2e-5 after step 2, → 4e-5 after step 5
    expect(ratiosSeen[3].slow).to.be.closeTo(expectRatio(2e-5), 1e-9);
    const lr = Object.fromEntries(opt.groups.map((g) => [g.name, g.lr]));
    expect(lr.slow).to.be.closeTo(4e-5, 1e-15);
    expect(mon.multipliers.get('slow')).to.equal(4);
    // fast: 0.111 → needs x0.009, capped at ÷2 twice; fine (≈1e-3) is left alone
    expect(lr.fast).to.be.closeTo(0.25, 1e-12);
    expect(lr.fine).to.equal(1e-2);
    expect(mon.warnings.filter((w) => w.group === 'fine')).to.have.length(0);
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('bad bounds are ConfigErrors', () => {
    expect(() => new RatioMonitor({ low: 1e-2, high: 1e-4 })).to.throw(ConfigError, /tune.ratioMonitor/);
    expect(() => new RatioMonitor({ patience: 0 })).to.throw(ConfigError, /patience/);
  });
});
