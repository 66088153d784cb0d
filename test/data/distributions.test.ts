import { expect } from 'chai';
import { beta, gamma, normal, randint } from '../../src/data/distributions';
import { Rng } from '../../src/data/rng';

function moments(draw: () => number, n: number): { mean: number; variance: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = draw();
    s += x;
    s2 += x * x;
  }
  const mean = s / n;
  return { mean, variance: s2 / n - mean * mean };
}

// 40 000 draws: the standard error of a mean is σ/200, so 5 standard errors bound each check below
describe('distributions from the run RNG', () => {
  const n = 40000;
  it('normal: mean 0, variance 1', () => {
    const rng = new Rng(7);
    const m = moments(() => normal(rng), n);
    expect(m.mean).to.be.closeTo(0, 5 / 200);
    expect(m.variance).to.be.closeTo(1, 0.03);
  });
  for (const k of [0.4, 1, 3.5]) {
    it(`gamma(${k}): mean ${k}, variance ${k}`, () => {
      const rng = new Rng(11);
      const m = moments(() => gamma(rng, k), n);
      expect(m.mean).to.be.closeTo(k, (5 * Math.sqrt(k)) / 200);
      expect(m.variance).to.be.closeTo(k, 0.08 * k + 0.02);
    });
  }
  for (const a of [0.2, 0.8, 1]) {
    it(`beta(${a}, ${a}): mean 1/2, variance 1/(4(2a + 1)), always in [0, 1]`, () => {
      const rng = new Rng(13);
      let out = 0;
      const m = moments(() => {
        const x = beta(rng, a, a);
        if (!(x >= 0 && x <= 1)) out++;
        return x;
      }, n);
      expect(out).to.equal(0);
      expect(m.mean).to.be.closeTo(0.5, (5 * Math.sqrt(1 / (4 * (2 * a + 1)))) / 200);
      expect(m.variance).to.be.closeTo(1 / (4 * (2 * a + 1)), 0.01);
    });
  }
  it('randint covers [lo, hi) and nothing else; the same seed gives the same stream', () => {
    const rng = new Rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(randint(rng, 2, 6));
    expect([...seen].sort()).to.deep.equal([2, 3, 4, 5]);
    const a = new Rng(9);
    const b = new Rng(9);
    expect(Array.from({ length: 5 }, () => beta(a, 0.8, 0.8))).to.deep.equal(Array.from({ length: 5 }, () => beta(b, 0.8, 0.8)));
  });
});
