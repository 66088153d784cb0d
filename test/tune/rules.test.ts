import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare } from '../../src/job';
import { GroupedOptimizer } from '../../src/optim';
import { ConfigError } from '../../src/errors';
import { lrWdWarnings, penalty, planLrWdWarnings, wdAuto, wdForFraction, WeightDecaySchedule } from '../../src/tune/rules';
import { disposeNetwork } from '../../src/tune/parts';
import { tmpDir } from '../helpers/images';
import { MemorySource, tinyJob, withData } from './memory-source';

describe('rules of thumb', function () {
  this.timeout(60000);

  it('lr/wd outside 10…1e4 is named per group; no decay or no rate is not judged', () => {
    const w = lrWdWarnings([
      { name: 'front', lr: 1e-4, weightDecay: 5e-4 }, // 0.2
      { name: 'mid', lr: 1e-2, weightDecay: 5e-4 }, // 20
      { name: 'head', lr: 1, weightDecay: 1e-5 }, // 1e5
      { name: 'bias', lr: 1e-2, weightDecay: 0 },
      { name: 'frozen', lr: 0, weightDecay: 5e-4 },
    ]);
    expect(w.map((x) => x.group)).to.deep.equal(['front', 'head']);
    expect(w[0].ratio).to.be.closeTo(0.2, 1e-12);
    expect(w[0].message).to.match(/group front: .* = 0\.200, outside 10…1e\+4.*lower weight decay to <= 1\.0e-5/);
    expect(w[1].message).to.match(/raise weight decay to >= 1\.0e-4/);
  });

  it('penalty: ½Σm‖w‖² for L2, Σm‖w‖₁ for l1 (hand-computed)', () => {
    const a = tf.tensor1d([3, 4]); // ‖a‖² = 25
    const b = tf.tensor1d([-1, 2]); // ‖b‖₁ = 3
    const n0 = tf.memory().numTensors;
    expect(penalty([{ w: a, mult: 1, mode: 'coupled' }])).to.be.closeTo(12.5, 1e-6);
    expect(
      penalty([
        { w: a, mult: 2, mode: 'decoupled' },
        { w: b, mult: 0.5, mode: 'l1' },
      ]),
    ).to.be.closeTo(25 + 1.5, 1e-6);
    expect(tf.memory().numTensors).to.equal(n0);
    tf.dispose([a, b]);
    expect(wdForFraction(2, 12.5, 0.1)).to.be.closeTo(0.016, 1e-15);
    expect(() => wdForFraction(2, 0, 0.1)).to.throw(ConfigError, /Ω = 0/);
  });

  it('wd auto on a real network: λ·Ω is 10% of the measured loss, Ω from the decayed kernels only', async () => {
    const p = await prepare(tinyJob(tmpDir()), withData(new MemorySource()));
    try {
      const r = await wdAuto(p, { maxImages: 12 });
      expect(r.lambda * r.omega).to.be.closeTo(0.1 * r.dataLoss, 1e-9 * r.dataLoss);
      // independent Ω: ½Σ‖w‖² over the trainable kernels (biases and BN have decay multiplier 0 by default)
      let omega = 0;
      for (const [name, v] of Object.entries(p.trainableVars)) {
        if (!/kernel/.test(name)) continue;
        for (const x of v.dataSync()) omega += 0.5 * x * x;
      }
      expect(r.omega).to.be.closeTo(omega, 1e-4 * omega);
      expect(r.variables).to.equal(Object.keys(p.trainableVars).filter((n) => /kernel/.test(n)).length);
      expect(r.images).to.equal(12);
      expect(r.lines.join('\n')).to.match(/λ = 0\.1 × .* = /);
      // the default recipe at batch 6: effective lr = configured × 6/256 against wd 5e-4 gives
      // 0.001 → 0.046875, 0.01 → 0.46875, 0.1 → 4.6875: every decayed group is closer than 10x
      const warned = planLrWdWarnings(p);
      expect(warned.map((w) => w.group)).to.deep.equal(['g0/kernel', 'g1/kernel', 'g2/kernel']);
      [0.046875, 0.46875, 4.6875].forEach((r, i) => expect(warned[i].ratio).to.be.closeTo(r, 1e-9));
    } finally {
      disposeNetwork(p.network);
    }
  });

  it('weight-decay schedule: a linear warmup from 0.2 over 4 steps makes decay rise (hand-computed), then hold', () => {
    const v = tf.variable(tf.tensor1d([1]));
    const opt = new GroupedOptimizer(
      [
        { name: 'k', params: ['a'], lr: 0.1, weightDecay: 1e-3, decayMode: 'coupled' },
        { name: 'b', params: [], lr: 0.1, weightDecay: 0, decayMode: 'coupled' },
      ],
      { algorithm: 'sgd' },
    );
    const s = new WeightDecaySchedule({ warmup: { type: 'linear', steps: 4, startFactor: 0.2 } }, { batch: 8, stepsPerEpoch: 10, epochs: 1 }, opt);
    const wd = () => opt.groups.find((g) => g.name === 'k')!.weightDecay;
    const seen: number[] = [];
    for (let step = 0; step < 7; step++) {
      // the schedule sets the decay each step uses just before that step
      s.beforeStep({ epoch: 0, step, batchInEpoch: step, batchesPerEpoch: 10, examples: 8, lrFactor: 1 });
      seen.push(wd());
    }
    // factor(t) = 0.2 + 0.8·t/4 for t < 4, then 1
    const expected = [0.2, 0.4, 0.6, 0.8, 1, 1, 1].map((f) => 1e-3 * f);
    seen.forEach((x, i) => expect(x).to.be.closeTo(expected[i], 1e-15));
    expect(opt.groups.find((g) => g.name === 'b')!.weightDecay).to.equal(0);
    opt.dispose();
    v.dispose();
  });
});
