import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { SearchSchema } from '../../src/tune/schema';
import { gridTrials, gridValues, randomTrials, sampleRange, trialToJob, validateSpace } from '../../src/tune/space';
import { median, medianStop } from '../../src/tune/median-stop';
import { planTrials, foldViews } from '../../src/tune/search';
import { MemorySource } from './memory-source';

const space = (over: Record<string, unknown> = {}) => SearchSchema.parse({ space: over }).space;

describe('search space', () => {
  it('samples log-uniformly: u = 0, 0.5, 1 give min, geometric middle, max', () => {
    const r = { min: 1e-5, max: 1e-1, scale: 'log' as const };
    expect(sampleRange(r, 0)).to.be.closeTo(1e-5, 1e-20);
    expect(sampleRange(r, 0.5)).to.be.closeTo(1e-3, 1e-15);
    expect(sampleRange(r, 1)).to.be.closeTo(1e-1, 1e-15);
    expect(sampleRange({ min: 2, max: 4, scale: 'linear' }, 0.25)).to.equal(2.5);
  });

  it('random trials: within bounds, momentum = 1 − 10^U(−3,−1), log10 spread roughly uniform, stable per (seed, i)', () => {
    const s = space();
    const ts = randomTrials(s, 400, 7);
    for (const t of ts) {
      expect(t.lr!).to.be.within(1e-5, 1e-1);
      expect(t.weightDecay!).to.be.within(1e-7, 1e-1);
      expect(t.momentum!).to.be.within(0.9, 0.999);
      expect(t.factor!).to.be.within(1, 30);
    }
    // log-uniform: a quarter of the draws in each decade of lr's four (expected 100, sd ≈ 8.7)
    const perDecade = [0, 0, 0, 0];
    for (const t of ts) perDecade[Math.min(3, Math.floor(Math.log10(t.lr!) + 5))]++;
    for (const c of perDecade) expect(c).to.be.within(70, 130);
    // trial i does not depend on how many trials were asked for
    expect(randomTrials(s, 3, 7)).to.deep.equal(ts.slice(0, 3));
    expect(randomTrials(s, 3, 8)).to.not.deep.equal(ts.slice(0, 3));
  });

  it('grid in 3x steps', () => {
    expect(gridValues({ min: 1e-5, max: 1e-3, scale: 'log' })).to.deep.equal([1e-5, 3e-5, 1e-4, 3e-4, 1e-3]);
    expect(gridValues({ min: 2e-5, max: 5e-4, scale: 'log' })).to.deep.equal([3e-5, 1e-4, 3e-4]);
    expect(gridValues({ min: 1, max: 30, scale: 'log' })).to.deep.equal([1, 3, 10, 30]);
    expect(gridTrials(space({ lr: { min: 1e-3, max: 3e-2 }, weightDecay: null, oneMinusMomentum: null, factor: null }))).to.deep.equal([
      { lr: 1e-3 },
      { lr: 3e-3 },
      { lr: 1e-2 },
      { lr: 3e-2 },
    ]);
    const g = gridTrials(space({ lr: { min: 1e-4, max: 1e-3 }, weightDecay: { min: 1e-5, max: 1e-4 }, oneMinusMomentum: null, factor: null }));
    expect(g).to.have.length(9);
    expect(g[0]).to.deep.equal({ lr: 1e-4, weightDecay: 1e-5 });
    expect(g[8]).to.deep.equal({ lr: 1e-3, weightDecay: 1e-4 });
    expect(
      gridTrials(space({ lr: { min: 1e-2, max: 1e-2 }, weightDecay: { min: 1e-4, max: 1e-4 }, oneMinusMomentum: { min: 0.1, max: 0.1 }, factor: null })),
    ).to.deep.equal([{ lr: 1e-2, weightDecay: 1e-4, momentum: 0.9 }]);
  });

  it('a grid larger than the trial budget is refused with its size', () => {
    const cfg = SearchSchema.parse({ method: 'grid', trials: 10 });
    expect(() => planTrials(cfg)).to.throw(ConfigError, /grid over this space has \d+ points/);
  });

  it('bad ranges: min > max, non-positive log bound, momentum ≥ 1 → ConfigError naming the field', () => {
    const err = (s: Record<string, unknown>) => {
      try {
        validateSpace(space(s));
      } catch (e) {
        expect(e).to.be.instanceOf(ConfigError);
        return (e as ConfigError).path;
      }
      return null;
    };
    expect(err({ lr: { min: 1e-1, max: 1e-3 } })).to.equal('tune.search.space.lr.min');
    expect(err({ weightDecay: { min: 0, max: 1e-3 } })).to.equal('tune.search.space.weightDecay.min');
    expect(err({ lr: { min: -1, max: 1e-3 } })).to.equal('tune.search.space.lr.min');
    expect(err({ oneMinusMomentum: { min: 0.1, max: 1 } })).to.equal('tune.search.space.oneMinusMomentum.max');
    expect(err({ weightDecay: { min: 0, max: 1e-3, scale: 'linear' } })).to.equal(null);
  });

  it('maps a trial onto the job: lr → groups.top and lr.base, factor, weight decay, momentum', () => {
    expect(trialToJob({ lr: 0.01, weightDecay: 1e-4, momentum: 0.95, factor: 3 })).to.deep.equal({
      groups: { top: 0.01, factor: 3 },
      lr: { base: 0.01 },
      optimizer: { weightDecay: 1e-4, momentum: 0.95 },
    });
  });
});

describe('median stopping (hand-computed)', () => {
  const opts = { minTrials: 3, graceEpochs: 1 };
  it('median of an even and an odd list', () => {
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
  });
  it('cuts a trial whose best so far is below the median of finished trials at the same epoch', () => {
    const finished = [
      [0.5, 0.6, 0.7],
      [0.4, 0.7, 0.65],
      [0.3, 0.5, 0.8],
    ];
    // epoch 0 is grace: never cut there
    expect(medianStop([0.1], finished, opts)).to.equal(null);
    // at epoch 1 the best-so-far of the others are 0.6, 0.7, 0.5 → median 0.6
    expect(medianStop([0.1, 0.55], finished, opts)).to.deep.equal({ median: 0.6, best: 0.55 });
    expect(medianStop([0.1, 0.6], finished, opts)).to.equal(null);
    // best so far counts, not the last value: 0.65 at epoch 0 beats the median at epoch 1
    expect(medianStop([0.65, 0.2], finished, opts)).to.equal(null);
    // too few finished trials reached this epoch
    expect(medianStop([0.1, 0.2], finished.slice(0, 2), opts)).to.equal(null);
    expect(medianStop([0.1, 0.2, 0.3, 0.3], finished, opts)).to.equal(null);
  });
});

describe('k-fold views', () => {
  it('stratified, disjoint, covering every example, each fold with every class', () => {
    const src = new MemorySource({ classes: 3, perClass: 7, valPerClass: 2 });
    const views = foldViews(src, 3, 42);
    expect(views).to.have.length(3);
    const allKeys = [...src.train, ...src.val].map((e) => e.key).sort();
    expect(views.flatMap((v) => v.val.map((e) => e.key)).sort()).to.deep.equal(allKeys);
    for (const v of views) {
      expect([...v.train, ...v.val].map((e) => e.key).sort()).to.deep.equal(allKeys);
      const trainKeys = new Set(v.train.map((e) => e.key));
      expect(v.val.some((e) => trainKeys.has(e.key))).to.equal(false);
      for (let c = 0; c < 3; c++) expect(v.val.filter((e) => e.label === c)).to.have.length(3); // 9 per class / 3 folds
    }
    expect(() => foldViews(new MemorySource({ perClass: 1, valPerClass: 1 }), 3, 1)).to.throw(ConfigError, /fewer than 3 folds/);
  });
});
