import { expect } from 'chai';
import { injectable } from 'inversify';
import { runJob } from '../../src/job';
import { resolveJob } from '../../src/config/load';
import type { Job, JobInput } from '../../src/config/schema';
import { ConfigOptimizer, createContainer, TOKENS, type DataSourceFactory, type OptimizerFactory } from '../../src/container';
import type { GroupedOptimizer, ParamGroup } from '../../src/optim';
import { MemorySource } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

describe('tune.wdSchedule in a run', function () {
  this.timeout(300000);

  it('a linear warmup from 0.2 over 4 steps scales the decay each step applies by 0.2, 0.4, 0.6, 0.8, then 1 (hand-computed)', async () => {
    const applied: Array<Record<string, number>> = [];
    @injectable()
    class RecordingOptimizer extends ConfigOptimizer {
      override create(groups: ParamGroup[], job: Job): GroupedOptimizer {
        const o = super.create(groups, job);
        const step = o.step.bind(o);
        o.step = (...args: Parameters<GroupedOptimizer['step']>) => {
          applied.push(Object.fromEntries(o.groups.map((g) => [g.name, g.weightDecay])));
          return step(...args);
        };
        return o;
      }
    }
    const input = {
      model: { size: 32 },
      // 8 images at batch 2: 4 steps an epoch, 8 in all
      train: { epochs: 2, batch: 2 },
      tune: { wdSchedule: { warmup: { type: 'linear', steps: 4, startFactor: 0.2 } } },
      backend: 'wasm',
      out: tmpDir('lt-wdsched-'),
    } as JobInput;
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.rebind<OptimizerFactory>(TOKENS.Optimizer).to(RecordingOptimizer);
    await runJob(input, { log: () => undefined, report: false, container });
    expect(applied).to.have.length(8);
    // the default decay: 5e-4 on kernels, none on biases and BatchNorm
    const factors = [0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1];
    applied.forEach((wd, i) => {
      expect(wd['g0/kernel'], `step ${i}`).to.be.closeTo(5e-4 * factors[i], 1e-15);
      expect(wd['g2/kernel'], `step ${i}`).to.be.closeTo(5e-4 * factors[i], 1e-15);
      expect(wd['g2/bias'], `step ${i}`).to.equal(0);
    });
  });
});
