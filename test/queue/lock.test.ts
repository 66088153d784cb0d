import { expect } from 'chai';
import { LOCK_CAP_MS, LOCK_FLOOR_MS, STEPS_PER_LOCK, lockFor, lockSettings } from '../../src/queue/lock';

describe('queue lock sizing (lockSettings)', () => {
  it('nothing measured: the floor, with the stall check at half of it', () => {
    expect(lockSettings(null)).to.deep.equal({ lockDuration: 30000, stalledInterval: 15000 });
    expect(LOCK_FLOOR_MS).to.equal(30000);
  });

  it('fast steps stay at the floor: 30 steps of 200 ms is 6 s, under 30 s', () => {
    expect(lockSettings(200)).to.deep.equal({ lockDuration: 30000, stalledInterval: 15000 });
  });

  it('slow steps raise it to 30 steps: 2.5 s steps give 75 s, checked every 37.5 s', () => {
    expect(STEPS_PER_LOCK).to.equal(30);
    expect(lockSettings(2500)).to.deep.equal({ lockDuration: 75000, stalledInterval: 37500 });
    // 1234.5 ms × 30 = 37035 ms exactly; the stall check rounds 18517.5 up
    expect(lockSettings(1234.5)).to.deep.equal({ lockDuration: 37035, stalledInterval: 18518 });
  });

  it('very slow steps are capped at 10 min, so a dead worker is noticed within 15 min', () => {
    expect(lockSettings(60000)).to.deep.equal({ lockDuration: LOCK_CAP_MS, stalledInterval: 300000 });
    expect(LOCK_CAP_MS).to.equal(600000);
  });

  it('a shorter floor (tests) applies when nothing is measured; the stall check is never under 1 s', () => {
    expect(lockSettings(null, 2000)).to.deep.equal({ lockDuration: 2000, stalledInterval: 1000 });
    expect(lockSettings(null, 1000)).to.deep.equal({ lockDuration: 1000, stalledInterval: 1000 });
    expect(lockSettings(100, 2000)).to.deep.equal({ lockDuration: 3000, stalledInterval: 1500 });
  });

  it('a bad measurement (0, negative, NaN, Infinity) is ignored, not trusted', () => {
    for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) expect(lockSettings(bad)).to.deep.equal({ lockDuration: 30000, stalledInterval: 15000 });
  });
});

describe('the lock line a starting worker prints (lockFor)', () => {
  it('nothing recorded: the floor', () => {
    expect(lockFor({ from: 'none' })).to.deep.equal({ lockDuration: 30000, stalledInterval: 15000, line: 'lock 30000 ms (floor; no step time measured yet)' });
    expect(lockFor({ from: 'none' }, 2000).line).to.equal('lock 2000 ms (floor; no step time measured yet)');
  });

  it('a measured median above the floor: 30 × 1500 ms = 45000 ms', () => {
    expect(lockFor({ from: 'measured', stepMs: 1500, jobs: 12 })).to.deep.equal({
      lockDuration: 45000,
      stalledInterval: 22500,
      line: 'lock 45000 ms from a measured step time of 1500 ms (median of 12 finished jobs)',
    });
    expect(lockFor({ from: 'measured', stepMs: 1234.56, jobs: 1 }).line).to.equal(
      // ceil(30 × 1234.56) = ceil(37036.8) = 37037
      'lock 37037 ms from a measured step time of 1234.6 ms (median of 1 finished job)',
    );
  });

  it('a measured median under the floor says so: 30 × 200 ms = 6000 ms', () => {
    expect(lockFor({ from: 'measured', stepMs: 200, jobs: 3 }).line).to.equal(
      'lock 30000 ms (floor; 30 steps of a measured step time of 200 ms (median of 3 finished jobs) need only 6000 ms)',
    );
  });

  it('--step-ms', () => {
    expect(lockFor({ from: 'flag', stepMs: 2500 })).to.deep.equal({ lockDuration: 75000, stalledInterval: 37500, line: 'lock 75000 ms from --step-ms 2500' });
    expect(lockFor({ from: 'flag', stepMs: 100 }).line).to.equal('lock 30000 ms (floor; 30 steps of --step-ms 100 need only 3000 ms)');
  });
});
