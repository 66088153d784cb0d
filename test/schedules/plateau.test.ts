/**
 * Reduce-on-plateau stage: PyTorch rules on hand-made metric sequences, the stop rule on top (maxReductions, stopAtFraction), composition with
 * warmup and scaling, and exact resume through getState/setState (JSON round trip).
 */
import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { LrSchedule, PlateauSchema, ReduceOnPlateau, parseLrScheduleConfig, resolveSchedule, type PlateauInput } from '../../src/schedules';

function plateau(opts: PlateauInput, referenceLr = 1): ReduceOnPlateau {
  return new ReduceOnPlateau(PlateauSchema.parse(opts), referenceLr);
}

/** Multiplier in force during each epoch, given the metric reported after each. */
function multipliers(p: ReduceOnPlateau, metrics: number[]): number[] {
  return metrics.map((m, epoch) => {
    const used = p.multiplier;
    p.step(m, epoch);
    return used;
  });
}

describe('schedules: reduce-on-plateau (PyTorch semantics)', () => {
  it('min/rel: reduces once more than `patience` epochs fail to beat best·(1−threshold)', () => {
    const p = plateau({ factor: 0.5, patience: 1, threshold: 0.1, stopAtFraction: null });
    // best 1.0; 0.95 is not < 0.9 (bad 1), 0.92 bad 2 > patience → ×0.5; 0.85 < 0.9 improves.
    expect(multipliers(p, [1.0, 0.95, 0.92, 0.85, 0.85, 0.85])).to.deep.equal([1, 1, 1, 0.5, 0.5, 0.5]);
    expect(p.multiplier).to.equal(0.25); // two bad epochs after 0.85 → second reduction after epoch 5
  });

  it('max/abs: improvements must exceed best + threshold', () => {
    const p = plateau({ mode: 'max', thresholdMode: 'abs', threshold: 0.05, factor: 0.1, patience: 0, stopAtFraction: null });
    // 0.5 best; 0.54 not > 0.55 → bad 1 > 0 → ×0.1; 0.56 > 0.55 improves; 0.6 improves.
    const m = multipliers(p, [0.5, 0.54, 0.56, 0.6]);
    expect(m[0]).to.equal(1);
    expect(m[1]).to.equal(1);
    expect(m[2]).to.be.closeTo(0.1, 1e-18);
    expect(m[3]).to.be.closeTo(0.1, 1e-18);
  });

  it('cooldown: bad epochs inside the cooldown do not count', () => {
    const p = plateau({ factor: 0.5, patience: 0, cooldown: 2, threshold: 0, stopAtFraction: null });
    // e0 best; e1 bad → reduce, cooldown 2; e2,e3 in cooldown (counter 2→1→0, bad reset);
    // e4 bad → reduce; e5 cooldown...
    expect(multipliers(p, [1, 1, 1, 1, 1, 1, 1, 1])).to.deep.equal([1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]);
  });

  it('minLr floors the rate (read against the reference rate) and eps skips tiny reductions', () => {
    const p = plateau({ factor: 0.1, patience: 0, minLr: 0.0005, stopAtFraction: null }, 0.01);
    // reference 0.01: floor 0.05; 1 → 0.1 → 0.05 → stays.
    multipliers(p, [1, 1, 1, 1, 1]);
    expect(p.multiplier).to.equal(0.05);
    expect(p.reductions).to.equal(2);
    const q = plateau({ factor: 0.5, patience: 0, eps: 0.3, stopAtFraction: null }, 1);
    multipliers(q, [1, 1, 1, 1]); // 1 → 0.5 (drop 0.5 > 0.3); 0.5 → 0.25 is a drop of 0.25 ≤ eps: skipped
    expect(q.multiplier).to.equal(0.5);
  });

  it('NaN is never an improvement', () => {
    const p = plateau({ factor: 0.5, patience: 1, stopAtFraction: null });
    // e0 bad 1, e1 bad 2 > patience → ×0.5 from e2 on
    expect(multipliers(p, [NaN, NaN, NaN])).to.deep.equal([1, 1, 0.5]);
  });
});

describe('schedules: the plateau stop rule (maxReductions, stopAtFraction)', () => {
  it('stops on the plateau after maxReductions are used, with a reason', () => {
    const p = plateau({ monitor: 'val_loss', factor: 0.5, patience: 0, maxReductions: 2 });
    const d = [1, 1, 1, 1].map((m, e) => p.step(m, e));
    expect(d.map((x) => x.stop)).to.deep.equal([false, false, false, true]);
    expect(d.map((x) => x.multiplier)).to.deep.equal([1, 0.5, 0.25, 0.25]);
    expect(d[3].reason).to.equal('plateau: val_loss has not improved for 1 epoch and all 2 reductions are used');
    expect(p.step(0.1, 4).stop).to.equal(true); // once stopped, stays stopped
  });

  it('stops when the next rate would reach stopAtFraction of the peak (default 1/1024 = 0.5^10)', () => {
    const p = plateau({ factor: 0.5, patience: 0 });
    let stopAt = -1;
    for (let e = 0; e < 40 && stopAt < 0; e++) if (p.step(1, e).stop) stopAt = e;
    // 9 reductions reach 0.5^9; the 10th would be 0.5^10 = 1/1024 ≤ 1/1024 → stop on that plateau (epoch 10).
    expect(p.reductions).to.equal(9);
    expect(p.multiplier).to.equal(0.5 ** 9);
    expect(stopAt).to.equal(10);
  });

  it('a minLr above the stop fraction keeps training at the floor instead of stopping', () => {
    const p = plateau({ factor: 0.1, patience: 0, minLr: 0.01 }, 1);
    const d = Array.from({ length: 8 }, (_, e) => p.step(1, e));
    expect(d.some((x) => x.stop)).to.equal(false);
    expect(p.multiplier).to.be.closeTo(0.01, 1e-17);
    expect(p.reductions).to.equal(2);
  });
});

describe('schedules: plateau composed with warmup and scaling', () => {
  const cfg = parseLrScheduleConfig({
    lr: { base: 0.1, baseBatch: 256 },
    schedule: { type: 'step', stepSize: 4, gamma: 0.5 },
    plateau: { monitor: 'val_acc', mode: 'max', factor: 0.5, patience: 0, threshold: 0 },
  });
  const run = { batch: 1024, stepsPerEpoch: 2, epochs: 12 };
  const accs = [0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8, 0.9, 0.95, 0.95, 0.96];

  function trace(s: LrSchedule, from = 0): { lrs: number[]; reductions: number[] } {
    const lrs: number[] = [];
    const reductions: number[] = [];
    for (let epoch = from; epoch < run.epochs; epoch++) {
      for (let i = 0; i < run.stepsPerEpoch; i++) lrs.push(s.lr(epoch * run.stepsPerEpoch + i, epoch));
      if (s.onEpochEnd(epoch, { loss: 1, val_acc: accs[epoch] }).reduced) reductions.push(epoch);
    }
    return { lrs, reductions };
  }

  it('multiplies warmup × schedule × plateau', () => {
    const resolved = resolveSchedule(cfg, run);
    const s = new LrSchedule(resolved);
    const { lrs, reductions } = trace(s);
    // reductions after epochs 2, 4, 5, 7, 10 (no strict improvement)
    expect(reductions).to.deep.equal([2, 4, 5, 7, 10]);
    const plateauAt = (epoch: number) => 0.5 ** reductions.filter((r) => r < epoch).length;
    for (let step = 0; step < lrs.length; step++) {
      const epoch = Math.floor(step / 2);
      expect(lrs[step]).to.be.closeTo(0.1 * resolved.factor(step, epoch) * plateauAt(epoch), 1e-15);
    }
    // In warmup (10 steps): scale 4, start at base 0.1 × target 0.5 (step schedule at epoch 5).
    expect(lrs[0]).to.be.closeTo(0.1 * 0.5, 1e-15);
    // Epoch 3 is inside warmup and after the first reduction: the plateau halves the warmup ramp too.
    expect(lrs[6]).to.be.closeTo(0.1 * 4 * 0.5 * (0.25 + (0.75 * 6) / 10) * 0.5, 1e-15);
  });

  it('resumes exactly from a JSON checkpoint of its state', () => {
    const whole = trace(new LrSchedule(resolveSchedule(cfg, run)));
    const first = new LrSchedule(resolveSchedule(cfg, run));
    for (let epoch = 0; epoch < 6; epoch++) first.onEpochEnd(epoch, { val_acc: accs[epoch] });
    const saved = JSON.parse(JSON.stringify(first.getState()));
    const resumed = new LrSchedule(resolveSchedule(cfg, run));
    resumed.setState(saved);
    const rest = trace(resumed, 6);
    expect(rest.lrs).to.deep.equal(whole.lrs.slice(12));
    expect(rest.reductions).to.deep.equal(whole.reductions.filter((e) => e >= 6));
  });

  it('best survives JSON before the first report (no Infinity lost as null)', () => {
    const p = plateau({ factor: 0.5, patience: 0, stopAtFraction: null });
    const q = plateau({ factor: 0.5, patience: 0, stopAtFraction: null });
    q.setState(JSON.parse(JSON.stringify(p.getState())));
    expect(multipliers(q, [3, 2, 2])).to.deep.equal(multipliers(p, [3, 2, 2]));
  });

  it('a missing monitored metric, or a checkpoint without plateau state, is a ConfigError', () => {
    const s = new LrSchedule(resolveSchedule(cfg, run));
    expect(() => s.onEpochEnd(0, { val_loss: 1 })).to.throw(ConfigError, 'plateau.monitor: no metric "val_acc"');
    expect(() => s.setState({ plateau: null })).to.throw(ConfigError);
  });
});
