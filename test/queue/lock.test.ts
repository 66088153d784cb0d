import { expect } from 'chai';
import { LOCK_CAP_MS, LOCK_FLOOR_MS, STEPS_PER_LOCK, lockSettings } from '../../src/queue/lock';

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
