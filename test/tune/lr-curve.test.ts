import { expect } from 'chai';
import { centredMean, minimumOver10, shouldStop, smooth, slopes, suggestLr, sweepRate, trimCurve, valley } from '../../src/tune/lr-curve';

/** Piecewise-linear loss in x = log10(lr): flat 2.0 to −5, slope −0.5/decade to −3 (1.0), −0.1/decade to −1 (0.8), then +2/decade. */
function kinked(): { lrs: number[]; losses: number[] } {
  const xs = Array.from({ length: 81 }, (_, i) => -7 + 0.1 * i);
  const L = (x: number) => (x <= -5 ? 2 : x <= -3 ? 2 - 0.5 * (x + 5) : x <= -1 ? 1 - 0.1 * (x + 3) : 0.8 + 2 * (x + 1));
  return { lrs: xs.map((x) => 10 ** x), losses: xs.map(L) };
}

describe('lr-curve: the maths of the range test', () => {
  it('sweeps exponentially from start to end', () => {
    expect(sweepRate(0, 1e-7, 10, 100)).to.equal(1e-7);
    expect(sweepRate(99, 1e-7, 10, 100)).to.be.closeTo(10, 1e-12);
    // 8 decades over 99 intervals: step 49.5 is the geometric middle, 10^-3
    expect(sweepRate(49.5, 1e-7, 10, 100)).to.be.closeTo(1e-3, 1e-15);
  });

  it('smooths with a bias-corrected EMA (hand-computed, beta 0.5)', () => {
    // avg: 0.5, 1.25, 2.125; corrections 1-0.5, 1-0.25, 1-0.125
    const s = smooth([1, 2, 3], 0.5);
    expect(s[0]).to.be.closeTo(1, 1e-12);
    expect(s[1]).to.be.closeTo(1.25 / 0.75, 1e-12);
    expect(s[2]).to.be.closeTo(2.125 / 0.875, 1e-12);
    // β = 0.98: the first value comes through unchanged (no pull towards 0)
    expect(smooth([3.2], 0.98)[0]).to.be.closeTo(3.2, 1e-12);
  });

  it('centred mean: k points each side, fewer at the ends, non-finite values left out (hand-computed)', () => {
    expect(centredMean([1, 2, 3, 10], 1)).to.deep.equal([1.5, 2, 5, 6.5]);
    expect(centredMean([1, NaN, 3], 1)).to.deep.equal([1, 2, 3]);
  });

  it('stops at 4x the best smoothed loss or on NaN', () => {
    expect(shouldStop(4.0, 1.0)).to.equal(false);
    expect(shouldStop(4.01, 1.0)).to.equal(true);
    expect(shouldStop(NaN, 1.0)).to.equal(true);
    expect(shouldStop(Infinity, 1.0)).to.equal(true);
  });

  it('slopes are loss per decade', () => {
    const d = slopes([1e-3, 1e-2, 1e-1], [3, 2, 0]);
    expect(d[0]).to.be.closeTo(-1, 1e-12); // one-sided at the start
    expect(d[1]).to.be.closeTo(-1.5, 1e-12); // (0 − 3) / 2 decades
    expect(d[2]).to.be.closeTo(-2, 1e-12);
  });

  it('suggests the highest rate still falling at least half as fast as the steepest (hand-checked kinked curve)', () => {
    const { lrs, losses } = kinked();
    const s = suggestLr(lrs, losses);
    // steepest slope −0.5/decade; at x = −3.0 the central slope is (0.99 − 1.05)/0.2 = −0.3 ≤ −0.25,
    // at x = −2.9 it is (0.98 − 1.00)/0.2 = −0.1: the suggestion is 10^−3
    expect(s.steepestSlope).to.be.closeTo(-0.5, 1e-9);
    expect(s.index).to.equal(40);
    expect(s.lr! / 1e-3).to.be.closeTo(1, 1e-9);
    // a stricter "clearly": 0.7 of the steepest (−0.35) excludes x = −3.0; x = −3.1 has slope −0.5
    expect(suggestLr(lrs, losses, { steepFraction: 0.7 }).index).to.equal(39);
  });

  it("fastai's valley and minimum/10 on the same curve (hand-checked)", () => {
    const { lrs, losses } = kinked();
    // longest strictly decreasing run: index 20 (x = −5) .. 60 (x = −1), lds = 41, start = 60 − 41 = 19;
    // idx = 19 + ⌊41/3⌋ + ⌊41/6⌋ = 19 + 13 + 6 = 38 → x = −3.2
    const v = valley(lrs, losses);
    expect(v.index).to.equal(38);
    expect(Math.log10(v.lr!)).to.be.closeTo(-3.2, 1e-9);
    const m = minimumOver10(lrs, losses);
    expect(m.index).to.equal(60);
    expect(m.lr! / 1e-2).to.be.closeTo(1, 1e-9);
  });

  it('gives no suggestion when the loss never falls, and says why', () => {
    const lrs = Array.from({ length: 30 }, (_, i) => 10 ** (-6 + 0.2 * i));
    const rising = suggestLr(
      lrs,
      lrs.map((_, i) => 1 + 0.01 * i),
    );
    expect(rising.lr).to.equal(null);
    expect(rising.reason).to.match(/never fell/);
    // a 1% dip is noise, not a decrease (minDrop 2%)
    const dip = suggestLr(
      lrs,
      lrs.map((_, i) => (i === 15 ? 0.99 : 1)),
    );
    expect(dip.lr).to.equal(null);
    // ... but with a 3% dip it is read
    expect(
      suggestLr(
        lrs,
        lrs.map((_, i) => (i >= 15 ? 0.97 : 1)),
      ).lr,
    ).to.not.equal(null);
  });

  it('trims like fastai: skip the first 10% of planned steps, the last 5 points, cut at the first NaN', () => {
    const lrs = Array.from({ length: 40 }, (_, i) => i + 1);
    const losses = lrs.map((v) => v);
    const t = trimCurve(lrs, losses, 100);
    expect(t.offset).to.equal(10);
    expect(t.lrs[0]).to.equal(11);
    expect(t.lrs[t.lrs.length - 1]).to.equal(35);
    losses[20] = NaN;
    expect(trimCurve(lrs, losses, 100).lrs[trimCurve(lrs, losses, 100).lrs.length - 1]).to.equal(20);
  });
});
