import { expect } from 'chai';
import { geometricRates, layerDecayRates, splitStages, steppedRates } from '../../src/groups';

describe('grouping rate presets (pure)', () => {
  it('stepped: 10x steps, 0.001 / 0.01 / 0.1 by default; {top, factor, groups}', () => {
    expect(steppedRates(0.1, 10, 3)).to.deep.equal([0.001, 0.01, 0.1]);
    const r = steppedRates(1, 3, 4);
    [1 / 27, 1 / 9, 1 / 3, 1].forEach((v, i) => expect(r[i]).to.be.closeTo(v, 1e-15));
  });

  it('geometric: fastai slice(lo, hi), evenly spaced in log space (np.geomspace)', () => {
    const r = geometricRates(1e-4, 1e-2, 5);
    // np.geomspace(1e-4, 1e-2, 5)
    [1e-4, 10 ** -3.5, 1e-3, 10 ** -2.5, 1e-2].forEach((v, i) => expect(r[i]).to.be.closeTo(v, v * 1e-12));
    const logs = r.map(Math.log);
    for (let i = 2; i < logs.length; i++) expect(logs[i] - logs[i - 1]).to.be.closeTo(logs[1] - logs[0], 1e-12);
    expect(geometricRates(1e-4, 1e-2, 1)).to.deep.equal([1e-2]);
  });

  it('layerDecay: lr·d^(depth−i), head (i = depth) at lr', () => {
    expect(layerDecayRates(0.1, 0.5, 3)).to.deep.equal([0.0125, 0.025, 0.05, 0.1]);
  });

  it('splitStages: contiguous, front to back, sizes differ by at most one, earlier groups larger', () => {
    expect(splitStages(14, 3)).to.deep.equal([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    for (let s = 1; s <= 20; s++) {
      for (let n = 1; n <= s; n++) {
        const split = splitStages(s, n);
        const sizes = Array.from({ length: n }, (_, g) => split.filter((x) => x === g).length);
        expect(Math.min(...sizes), `${s} in ${n}`).to.be.at.least(1);
        expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(1);
        for (let k = 1; k < s; k++) expect(split[k] - split[k - 1]).to.be.oneOf([0, 1]);
        for (let g = 1; g < n; g++) expect(sizes[g - 1]).to.be.at.least(sizes[g]);
      }
    }
  });
});
