/** Base schedules per step and per epoch, warmup composition, and config validation, against hand computations. */
import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { LrScheduleSchema, parseLrScheduleConfig, resolveSchedule, type LrScheduleInput, type RunShape } from '../../src/schedules';

const unscaled = { batch: 256 }; // effective batch = baseBatch: scale 1, no default warmup

function factors(input: LrScheduleInput, run: RunShape, steps: number): number[] {
  const s = resolveSchedule(parseLrScheduleConfig(input), run);
  return Array.from({ length: steps }, (_, step) => s.factor(step, Math.floor(step / run.stepsPerEpoch)));
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    expect((e as Error).message).to.not.include('\n');
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('schedules: base schedules', () => {
  const run = { ...unscaled, stepsPerEpoch: 3, epochs: 4 }; // 12 steps

  it('per epoch: the factor only changes at epoch boundaries', () => {
    const f = factors({ schedule: { type: 'step', stepSize: 2, gamma: 0.5, per: 'epoch' } }, run, 12);
    expect(f).to.deep.equal([1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });

  it('per step: the same schedule counts optimizer steps', () => {
    const f = factors({ schedule: { type: 'step', stepSize: 2, gamma: 0.5, per: 'step' } }, run, 6);
    expect(f).to.deep.equal([1, 1, 0.5, 0.5, 0.25, 0.25]);
  });

  it('multistep counts the milestones passed', () => {
    const f = factors({ schedule: { type: 'multistep', milestones: [1, 3], gamma: 0.1, per: 'step' } }, run, 5);
    expect(f[0]).to.equal(1);
    expect(f[1]).to.equal(0.1);
    expect(f[2]).to.equal(0.1);
    expect(f[3]).to.be.closeTo(0.01, 1e-17);
    expect(f[4]).to.be.closeTo(0.01, 1e-17);
  });

  it('exponential (k and decayRate forms), inverseTime, inv, poly, cosine at hand-computed points', () => {
    const at = (schedule: LrScheduleInput['schedule'], t: number) => factors({ schedule }, { ...unscaled, stepsPerEpoch: 1, epochs: 20 }, t + 1)[t];
    expect(at({ type: 'exponential', k: 0.5 }, 2)).to.be.closeTo(Math.exp(-1), 1e-15);
    expect(at({ type: 'exponential', decayRate: 0.9 }, 3)).to.be.closeTo(0.729, 1e-15);
    expect(at({ type: 'inverseTime', k: 0.25 }, 4)).to.equal(0.5);
    expect(at({ type: 'inv', gamma: 1, power: 0.5 }, 3)).to.equal(0.5); // (1+3)^-0.5
    expect(at({ type: 'poly', power: 2, maxSteps: 4 }, 2)).to.equal(0.25); // (1-2/4)^2
    expect(at({ type: 'poly', power: 2, maxSteps: 4 }, 7)).to.equal(0); // past maxSteps
    expect(at({ type: 'poly', power: 1 }, 5)).to.equal(0.75); // maxSteps defaults to the run: 1-5/20
    expect(at({ type: 'cosine', tMax: 4 }, 2)).to.be.closeTo(0.5, 1e-15);
    expect(at({ type: 'cosine' }, 10)).to.be.closeTo(0.5, 1e-15); // tMax defaults to the run (20 epochs)
    // minLr is absolute on the reference scale: base 0.1, minLr 0.02 → floor 0.2 of the peak, held after tMax.
    const cos = (t: number) =>
      factors({ lr: { base: 0.1 }, schedule: { type: 'cosine', tMax: 4, minLr: 0.02 } }, { ...unscaled, stepsPerEpoch: 1, epochs: 8 }, 8)[t];
    expect(cos(2)).to.be.closeTo(0.2 + 0.8 * 0.5, 1e-15);
    expect(cos(4)).to.be.closeTo(0.2, 1e-15);
    expect(cos(7)).to.be.closeTo(0.2, 1e-15);
  });
});

describe('schedules: warmup composes with any schedule', () => {
  it('linear warmup climbs to the scheduled rate where warmup ends (continuous), then follows the schedule', () => {
    const run = { ...unscaled, stepsPerEpoch: 1, epochs: 10 };
    const f = factors({ schedule: { type: 'exponential', decayRate: 0.5, per: 'step' }, warmup: { steps: 4, startFactor: 0 } }, run, 6);
    // target = 0.5^4 = 0.0625; rises by 0.0625/4 each step.
    expect(f).to.deep.equal([0, 0.015625, 0.03125, 0.046875, 0.0625, 0.03125]);
  });

  it('constant warmup holds startFactor × target, then jumps', () => {
    const run = { ...unscaled, stepsPerEpoch: 2, epochs: 5 };
    const f = factors({ schedule: { type: 'multistep', milestones: [3], gamma: 0.1 }, warmup: { type: 'constant', epochs: 1 } }, run, 8);
    expect(f.slice(0, 2)).to.deep.equal([0.1, 0.1]); // default startFactor 0.1 without scaling
    expect(f.slice(2, 6)).to.deep.equal([1, 1, 1, 1]);
    expect(f[6]).to.be.closeTo(0.1, 1e-16);
  });

  it('scaling, warmup and schedule multiply into one factor that every group shares', () => {
    const s = resolveSchedule(parseLrScheduleConfig({ lr: { base: 0.1, baseBatch: 256 }, schedule: { type: 'step', stepSize: 2, gamma: 0.5 } }), {
      batch: 512,
      stepsPerEpoch: 2,
      epochs: 12,
    });
    // scale 2, default warmup 5 epochs = 10 steps from 1/2 of the target; target = 0.5^floor(5/2) = 0.25.
    expect(s.factor(0, 0)).to.equal(2 * 0.25 * 0.5);
    expect(s.factor(5, 2)).to.equal(2 * 0.25 * (0.5 + 0.5 * 0.5));
    expect(s.factor(10, 5)).to.equal(2 * 0.25);
    const rates = [0.001, 0.01, 0.1].map((r) => r * s.factor(7, 3));
    expect(rates[1] / rates[0]).to.be.closeTo(10, 1e-12);
    expect(rates[2] / rates[1]).to.be.closeTo(10, 1e-12);
  });
});

describe('schedules: config validation', () => {
  it('fills defaults: linear scaling at batch 256, constant schedule, no plateau', () => {
    expect(LrScheduleSchema.parse({})).to.deep.equal({
      lr: { base: 0.1, baseBatch: 256, scaling: 'linear' },
      schedule: { type: 'constant' },
    });
    const p = parseLrScheduleConfig({ plateau: {} }).plateau;
    expect(p).to.include({ monitor: 'val_loss', mode: 'min', factor: 0.1, patience: 10, cooldown: 0, minLr: 0 });
    expect(p?.stopAtFraction).to.equal(1 / 1024);
    expect(p?.maxReductions).to.equal(null);
  });

  it('milestones out of order → schedule.milestones', () => {
    const e = configError(() => parseLrScheduleConfig({ schedule: { type: 'multistep', milestones: [30, 80, 60] } }));
    expect(e.path).to.equal('schedule.milestones');
    expect(e.message).to.include('strictly increasing');
    expect(configError(() => parseLrScheduleConfig({ schedule: { type: 'multistep', milestones: [30, 30] } })).path).to.equal('schedule.milestones');
  });

  it('plateau factor ≥ 1 → plateau.factor', () => {
    for (const factor of [1, 1.5]) {
      const e = configError(() => parseLrScheduleConfig({ plateau: { factor } }));
      expect(e.path).to.equal('plateau.factor');
      expect(e.message).to.include('never reduce');
    }
  });

  it('other mistakes name their field, with an optional prefix for the enclosing config', () => {
    const cases: [unknown, string][] = [
      [{ schedule: { type: 'linearish' } }, 'train.schedule.type'],
      [{ schedule: { type: 'step' } }, 'train.schedule.stepSize'],
      [{ schedule: { type: 'exponential', k: 0.1, decayRate: 0.9 } }, 'train.schedule.k'],
      [{ schedule: { type: 'step', stepSize: 2, gamma: 2 } }, 'train.schedule.gamma'],
      [{ warmup: { type: 'linear' } }, 'train.warmup.epochs'],
      [{ lr: { scaling: 'cubic' } }, 'train.lr.scaling'],
      [{ plateau: { patience: -1 } }, 'train.plateau.patience'],
      [{ plateau: { stopAtFraction: 1 } }, 'train.plateau.stopAtFraction'],
    ];
    for (const [input, path] of cases) expect(configError(() => parseLrScheduleConfig(input, 'train')).path).to.equal(path);
    // an unknown key is reported on its parent, by name (one format for every section of the job)
    const typo = configError(() => parseLrScheduleConfig({ schedule: { type: 'step', stepSize: 5, gama: 0.5 } }, 'train'));
    expect(typo.message).to.equal('train.schedule: unknown field(s) "gama"');
  });

  it('cosine minLr above the peak is refused when resolved', () => {
    const cfg = parseLrScheduleConfig({ lr: { base: 0.1 }, schedule: { type: 'cosine', minLr: 0.05 } });
    // batch 16 scales the peak to 0.00625, below minLr 0.05
    expect(configError(() => resolveSchedule(cfg, { batch: 16, stepsPerEpoch: 1, epochs: 5 })).path).to.equal('schedule.minLr');
  });
});
