import { expect } from 'chai';
import { StepTimer, recordedStepTime } from '../../src/queue/step-time';

describe('step times (StepTimer, recordedStepTime)', () => {
  it('times each step from the previous one or the epoch start, leaving validation out', () => {
    let t = 0;
    const timer = new StepTimer(() => t);
    expect(timer.medianMs()).to.equal(null);
    timer.beforeEpoch();
    for (const at of [10, 30, 60]) {
      t = at;
      timer.afterStep();
    }
    // validation runs from 60 to 1000; the next epoch starts at 1000
    t = 1000;
    timer.afterEpoch();
    timer.beforeEpoch();
    t = 1005;
    timer.afterStep();
    expect(timer.ms).to.deep.equal([10, 20, 30, 5]);
    // even count: the mean of the middle two, (10 + 20) / 2
    expect(timer.medianMs()).to.equal(15);
  });

  it('rounds the median to 0.1 ms', () => {
    let t = 0;
    const timer = new StepTimer(() => t);
    timer.beforeEpoch();
    t = 12.345;
    timer.afterStep();
    expect(timer.medianMs()).to.equal(12.3);
  });

  it('recorded values: the median of the usable ones and how many there were', () => {
    expect(recordedStepTime([])).to.equal(null);
    expect(recordedStepTime(['250'])).to.deep.equal({ medianMs: 250, jobs: 1 });
    // sorted 100, 200, 900: the middle one
    expect(recordedStepTime(['900', '100', '200'])).to.deep.equal({ medianMs: 200, jobs: 3 });
    // sorted 100, 200, 300, 900: (200 + 300) / 2
    expect(recordedStepTime(['900', '100', '300', '200'])).to.deep.equal({ medianMs: 250, jobs: 4 });
  });

  it('recorded values that are not positive finite numbers are ignored', () => {
    expect(recordedStepTime(['abc', '0', '-3', 'Infinity', 'NaN', ''])).to.equal(null);
    expect(recordedStepTime(['abc', '400', '-3', '100'])).to.deep.equal({ medianMs: 250, jobs: 2 });
  });
});
