import { expect } from 'chai';
import * as path from 'node:path';
import { createContainer, type DataSourceFactory, type Grouper, type ScheduleFactory, stagesOf, TOKENS } from '../../src/container';
import { resolveJob } from '../../src/config/load';
import { search, searchLrScale } from '../../src/tune/search';
import { tmpDir } from '../helpers/images';
import { MemorySource, tinyJob } from './memory-source';

describe('search scales learning rates for the batch a trial really runs (after the clamp to the data)', function () {
  this.timeout(120000);

  it('searchLrScale reads the clamped batch: --batch 100000 on 9 images scales by 9 / baseBatch, as train does', () => {
    const job = resolveJob({ train: { batch: 100000 }, lr: { scaling: 'linear', baseBatch: 32 } });
    expect(searchLrScale(job, 9)).to.equal(9 / 32);
    expect(searchLrScale(job, 200000)).to.equal(100000 / 32);
    expect(searchLrScale(resolveJob({ train: { batch: 64 }, lr: { scaling: 'sqrt', baseBatch: 16 } }), 8)).to.equal(Math.sqrt(8 / 16));
  });

  it("a trial's top group trains at the searched rate when its batch is larger than a fold's training set", async () => {
    const defaults = stagesOf(createContainer());
    const seen: Array<{ scale: number }> = [];
    let top = 0;
    const src = new MemorySource({ classes: 2, perClass: 3, valPerClass: 1 });
    const stages = {
      data: { create: () => src },
      grouper: {
        plan: (layers: Parameters<typeof defaults.grouper.plan>[0], job: Parameters<typeof defaults.grouper.plan>[1]) => {
          const plan = defaults.grouper.plan(layers, job);
          // the top group as lr-find and the search define it (topGroupLr): the highest layer-group rate
          top = Math.max(...plan.layerGroups.map((g) => g.lr).filter((v) => v > 0));
          return plan;
        },
      },
      schedule: {
        create: (job: Parameters<typeof defaults.schedule.create>[0], run: Parameters<typeof defaults.schedule.create>[1]) => {
          const s = defaults.schedule.create(job, run);
          seen.push({ scale: s.resolved.lr.scale });
          return s;
        },
      },
    };
    const out = tmpDir('lt-search-lr-');
    // batch 64 nominal; each fold trains on 4 of the 8 images (folds: 2), so the trial runs batch 4
    const base = tinyJob(path.join(out, 'job'), { train: { batch: 64, epochs: 1 }, lr: { scaling: 'linear', baseBatch: 32 } });
    const container = createContainer();
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue(stages.data as DataSourceFactory);
    container.rebind<Grouper>(TOKENS.Grouper).toConstantValue(stages.grouper as Grouper);
    container.rebind<ScheduleFactory>(TOKENS.Schedule).toConstantValue(stages.schedule as ScheduleFactory);
    const r = await search(base, {
      container,
      log: () => {},
      out,
      search: { trials: 1, folds: 2, seed: 1, space: { lr: { min: 0.01, max: 0.1 } } },
    });
    const lr = r.trials[0].params.lr!;
    expect(seen.length).to.be.greaterThan(0);
    // the top group's configured rate × the schedule's batch scale = the effective rate the trial trained at
    expect(top * seen[seen.length - 1].scale).to.be.closeTo(lr, lr * 1e-12);
    expect(seen[seen.length - 1].scale).to.equal(4 / 32);
  });
});
