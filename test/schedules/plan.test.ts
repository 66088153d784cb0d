/** The numbers `layertune plan` shows for the rate, for a large-batch job reached by gradient accumulation. */
import { expect } from 'chai';
import { formatLrPlan, lrPlan, parseLrScheduleConfig, resolveSchedule } from '../../src/schedules';

describe('schedules: lr plan', () => {
  const cfg = parseLrScheduleConfig({
    lr: { base: 0.1, baseBatch: 256, scaling: 'linear' },
    schedule: { type: 'multistep', milestones: [20, 30], gamma: 0.1 },
    plateau: { patience: 3, maxReductions: 2 },
  });
  // batch 1024 accumulated over 16 steps: effective 16384 = 64 × 256
  const plan = lrPlan(resolveSchedule(cfg, { batch: 1024, accumulate: 16, stepsPerEpoch: 8, epochs: 40 }));

  it('resolves scale, peak, warmup length and the three plan points', () => {
    expect(plan).to.deep.include({ effectiveBatch: 16384, scale: 64, totalSteps: 320, schedule: 'multistep milestones=[20,30] gamma=0.1 per=epoch' });
    expect(plan.peak).to.be.closeTo(6.4, 1e-15);
    expect(plan.warmup).to.deep.include({ type: 'linear', steps: 40, epochs: 5, source: 'scaling-default' });
    expect(plan.warmup.startLr).to.be.closeTo(0.1, 1e-15); // Goyal: start at the unscaled base
    expect(plan.points.map((p) => [p.label, p.step, p.epoch])).to.deep.equal([
      ['start', 0, 0],
      ['warmupEnd', 40, 5],
      ['last', 319, 39],
    ]);
    expect(plan.points[1].lr).to.be.closeTo(6.4, 1e-14);
    expect(plan.points[2].lr).to.be.closeTo(0.064, 1e-15); // two milestones passed: 6.4 × 0.01
    expect(JSON.parse(JSON.stringify(plan))).to.deep.equal(plan);
  });

  it('prints one line per fact', () => {
    const text = formatLrPlan(plan);
    expect(text[0]).to.equal('lr        base 0.1 → peak 6.4: linear scaling ×64 (effective batch 16384 / baseBatch 256)');
    expect(text[2]).to.equal("warmup    linear, 40 steps (5 epochs) from 0.1 (×0.015625 of the target), the linear scaling rule's default");
    expect(text[3]).to.match(/^plateau {3}val_loss min factor=0.1 patience=3 cooldown=0 maxReductions=2 stopAtFraction=0.0009765625$/);
    expect(text).to.have.length(7);
  });
});
