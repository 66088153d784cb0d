/** Linear scaling rule, gradient accumulation, default warmup and `plan` points, against hand computations. */
import { expect } from 'chai';
import { ConfigError } from '../../src/errors';
import { parseLrScheduleConfig, planPoints, resolveLr, resolveSchedule } from '../../src/schedules';

describe('schedules: linear scaling rule', () => {
  it('product default: rates meant at batch 256, scaled linearly to batch 16 (0.1 → 0.00625), no warmup', () => {
    const cfg = parseLrScheduleConfig({});
    const r = resolveLr(cfg, { batch: 16, stepsPerEpoch: 15, epochs: 8 });
    expect(r.scaling).to.equal('linear');
    expect(r.baseBatch).to.equal(256);
    expect(r.scale).to.equal(1 / 16);
    expect(r.peak).to.be.closeTo(0.00625, 1e-18);
    expect(r.warmup).to.deep.equal({ type: 'none', steps: 0, startFactor: 1, source: 'none' });
    // The three group rates keep their 1:10:100 ratio after scaling: each is rate × factor.
    const s = resolveSchedule(cfg, { batch: 16, stepsPerEpoch: 15, epochs: 8 });
    const groups = [0.001, 0.01, 0.1].map((rate) => rate * s.factor(0, 0));
    expect(groups[0]).to.be.closeTo(0.0000625, 1e-18);
    expect(groups[1]).to.be.closeTo(0.000625, 1e-17);
    expect(groups[2]).to.be.closeTo(0.00625, 1e-16);
  });

  it('large batch via accumulation: batch 1024 × accumulate 16 = 16384 → scale 64, 5-epoch gradual warmup from base', () => {
    const cfg = parseLrScheduleConfig({ lr: { base: 0.1 }, schedule: { type: 'cosine' } });
    const run = { batch: 1024, accumulate: 16, stepsPerEpoch: 4, epochs: 30 };
    const r = resolveLr(cfg, run);
    expect(r.effectiveBatch).to.equal(16384);
    expect(r.scale).to.equal(64);
    expect(r.peak).to.be.closeTo(6.4, 1e-15);
    expect(r.warmup).to.deep.equal({ type: 'linear', steps: 20, startFactor: 1 / 64, source: 'scaling-default' });
    expect(r.totalSteps).to.equal(120);

    const s = resolveSchedule(cfg, run);
    const [start, warm, last] = planPoints(s);
    // Step 0: the unscaled base. Warmup target: cosine at epoch 5 of 30 = (1 + cos(π/6))/2.
    const target = (1 + Math.cos(Math.PI / 6)) / 2;
    expect(start).to.deep.include({ label: 'start', step: 0, epoch: 0 });
    expect(start.lr).to.be.closeTo(0.1 * target, 1e-15);
    expect(warm).to.deep.include({ label: 'warmupEnd', step: 20, epoch: 5 });
    expect(warm.lr).to.be.closeTo(6.4 * target, 1e-14);
    expect(last).to.deep.include({ label: 'last', step: 119, epoch: 29 });
    expect(last.lr).to.be.closeTo((6.4 * (1 + Math.cos((Math.PI * 29) / 30))) / 2, 1e-14);
    // Linear rise: constant increment per step.
    const d1 = s.factor(1, 0) - s.factor(0, 0);
    const d2 = s.factor(13, 3) - s.factor(12, 3);
    expect(d1).to.be.closeTo(d2, 1e-12);
    expect(d1).to.be.closeTo(((64 - 1) * target) / 20, 1e-12);
  });

  it('workers multiply the effective batch; sqrt scaling takes the square root; none keeps the base', () => {
    const run = { batch: 128, workers: 4, accumulate: 2, stepsPerEpoch: 10, epochs: 20 };
    const lin = resolveLr(parseLrScheduleConfig({ lr: { scaling: 'linear' } }), run);
    expect(lin.effectiveBatch).to.equal(1024);
    expect(lin.scale).to.equal(4);
    const sqrt = resolveLr(parseLrScheduleConfig({ lr: { scaling: 'sqrt' } }), run);
    expect(sqrt.scale).to.equal(2);
    expect(sqrt.warmup.startFactor).to.equal(0.5);
    expect(sqrt.warmup.steps).to.equal(50);
    const none = resolveLr(parseLrScheduleConfig({ lr: { scaling: 'none' } }), run);
    expect(none.scale).to.equal(1);
    expect(none.warmup.type).to.equal('none');
  });

  it('an explicit warmup wins over the default, and warmup.type none switches it off', () => {
    const run = { batch: 512, stepsPerEpoch: 10, epochs: 20 };
    const explicit = resolveLr(parseLrScheduleConfig({ warmup: { steps: 7, startFactor: 0.25 } }), run);
    expect(explicit.warmup).to.deep.equal({ type: 'linear', steps: 7, startFactor: 0.25, source: 'config' });
    const off = resolveLr(parseLrScheduleConfig({ warmup: { type: 'none' } }), run);
    expect(off.warmup.steps).to.equal(0);
    // Without scaling and no startFactor, a warmup starts at 0.1 of the target.
    const unscaled = resolveLr(parseLrScheduleConfig({ lr: { scaling: 'none' }, warmup: { epochs: 1.5 } }), run);
    expect(unscaled.warmup).to.deep.equal({ type: 'linear', steps: 15, startFactor: 0.1, source: 'config' });
  });

  it('bad run shapes and warmups that do not fit are ConfigErrors with the field path', () => {
    const cfg = parseLrScheduleConfig({});
    const cases: (() => unknown)[] = [
      () => resolveLr(parseLrScheduleConfig({ warmup: { epochs: 10 } }), { batch: 16, stepsPerEpoch: 5, epochs: 10 }),
      () => resolveLr(parseLrScheduleConfig({ warmup: { steps: 51 } }), { batch: 16, stepsPerEpoch: 5, epochs: 10 }),
      () => resolveLr(parseLrScheduleConfig({ warmup: { epochs: 0.01 } }), { batch: 16, stepsPerEpoch: 5, epochs: 10 }),
      () => resolveLr(cfg, { batch: 2048, stepsPerEpoch: 5, epochs: 5 }), // default 5-epoch warmup = whole run
      () => resolveLr(cfg, { batch: 0, stepsPerEpoch: 5, epochs: 5 }),
      () => resolveLr(cfg, { batch: 16, accumulate: 1.5, stepsPerEpoch: 5, epochs: 5 }),
    ];
    const paths = ['warmup.epochs', 'warmup.steps', 'warmup.epochs', 'warmup', 'batch', 'accumulate'];
    cases.forEach((fn, i) => {
      expect(fn).to.throw(ConfigError);
      try {
        fn();
      } catch (e) {
        expect((e as ConfigError).path).to.equal(paths[i]);
        expect((e as Error).message).to.not.include('\n');
      }
    });
    expect(() => resolveLr(parseLrScheduleConfig({ warmup: { epochs: 10 } }), { batch: 16, stepsPerEpoch: 5, epochs: 10 })).to.throw(
      'warmup.epochs: warmup of 50 steps must be shorter than the run (50 steps)',
    );
  });
});
