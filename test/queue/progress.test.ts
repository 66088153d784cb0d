import { expect } from 'chai';
import { type Progress, etaSeconds, finishedOf, formatProgress } from '../../src/queue/progress';

const p = (over: Partial<Progress>): Progress => ({ done: 0, pruned: 0, diverged: 0, running: 0, failed: 0, waiting: 0, notQueued: 0, total: 0, ...over });

describe('queued search progress (etaSeconds, formatProgress)', () => {
  it('ETA: trials left at the mean trial time, over the busy workers', () => {
    // 4 waiting + 2 running = 6 trials of 10 s on 2 busy slots: 30 s
    expect(etaSeconds(p({ waiting: 4, running: 2, done: 3, total: 9 }), 10)).to.equal(30);
    // nothing running (workers all gone or between jobs): counted as one slot
    expect(etaSeconds(p({ waiting: 3, total: 3 }), 7)).to.equal(21);
  });

  it('ETA: unknown before any trial finished, 0 when nothing is left', () => {
    expect(etaSeconds(p({ waiting: 2, running: 1, total: 3 }), null)).to.equal(null);
    expect(etaSeconds(p({ done: 3, total: 3 }), null)).to.equal(0);
    // failed and removed trials will not run: they do not count as left
    expect(etaSeconds(p({ done: 1, failed: 1, notQueued: 1, total: 3 }), 5)).to.equal(0);
  });

  it('the line names every count; "not queued" only when some are', () => {
    const q = p({ done: 2, pruned: 1, diverged: 1, running: 2, failed: 1, waiting: 3, total: 10 });
    expect(finishedOf(q)).to.equal(4);
    expect(formatProgress(q, 29.6)).to.equal('4/10 trials: 2 done, 2 running, 1 pruned, 1 diverged, 1 failed, 3 waiting, ETA 30 s');
    expect(formatProgress(p({ done: 1, notQueued: 2, total: 3 }), null)).to.equal(
      '1/3 trials: 1 done, 0 running, 0 pruned, 0 diverged, 0 failed, 0 waiting, 2 not queued',
    );
  });
});
