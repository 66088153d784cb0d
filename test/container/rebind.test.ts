import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { injectable } from 'inversify';
import { runJob } from '../../src/job';
import { resolveJob } from '../../src/config/load';
import type { Job, JobInput } from '../../src/config/schema';
import {
  ConfigOptimizer,
  ConfigSchedule,
  createContainer,
  FolderCheckpointer,
  TOKENS,
  type CheckpointerFactory,
  type DataSourceFactory,
  type OptimizerFactory,
  type ScheduleFactory,
} from '../../src/container';
import type { DataSource, Example } from '../../src/data/source';
import type { Exporter } from '../../src/export/exporter';
import type { GroupedOptimizer, ParamGroup } from '../../src/optim';
import type { RunShape, LrSchedule } from '../../src/schedules';
import type { Network } from '../../src/models/network';
import type { BatchInfo, Callback, EpochInfo } from '../../src/train/callbacks';
import { MemorySource } from '../helpers/memory-source';
import { LoopTrainerFactory, type TrainerInputs, type TrainerParts } from '../../src/train/build';
import type { Trainer } from '../../src/train/trainer';
import { lrFind } from '../../src/tune/lr-find';
import { search } from '../../src/tune/search';
import { wdAutoJob } from '../../src/tune/wd-auto-job';
import { tmpDir } from '../helpers/images';
import type { Checkpointer } from '../../src/train/checkpoint/checkpointer';
import { EarlyStoppingCallback } from '../../src/train/early-stopping';
import type { CallbackFactory, RunContext } from '../../src/train/run-callbacks';

const quiet = { log: () => undefined, report: false };

/** Two synthetic classes, 4 train + 1 val image each, at 32 px: one epoch is one step of 8 images. */
function tinyInput(): JobInput {
  return { model: { size: 32 }, train: { epochs: 1, batch: 8 }, backend: 'wasm', out: tmpDir('lt-di-') } as JobInput;
}

/** Records which images the loop asked for, so the test can tell its source was the one trained on. */
class RecordingSource extends MemorySource {
  readonly asked = new Set<string>();
  override async pixels(ex: Example, size: number): Promise<Uint8Array> {
    this.asked.add(ex.key);
    return super.pixels(ex, size);
  }
}

describe('container: rebinding a stage reaches runJob', function () {
  this.timeout(300000);

  it('data source: an in-memory source replaces the image folder', async () => {
    const input = tinyInput();
    const container = createContainer(resolveJob(input));
    const source = new RecordingSource(['red', 'green'], 4, 1);
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: (): DataSource => source });
    const res = await runJob(input, { ...quiet, container });
    expect(res.network.classes).to.deep.equal(['red', 'green']);
    expect([...source.asked].filter((k) => k.startsWith('train:'))).to.have.length(8);
    expect(fs.existsSync(path.join(res.exportDir, 'model.json'))).to.equal(true);
  });

  it('optimizer: a rebound class is the one that steps', async () => {
    const created: GroupedOptimizer[] = [];
    @injectable()
    class CountingOptimizer extends ConfigOptimizer {
      override create(groups: ParamGroup[], job: Job): GroupedOptimizer {
        const o = super.create(groups, job);
        created.push(o);
        return o;
      }
    }
    const input = tinyInput();
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.rebind<OptimizerFactory>(TOKENS.Optimizer).to(CountingOptimizer);
    const res = await runJob(input, { ...quiet, container });
    expect(created).to.have.length(1);
    expect(res.fit.history).to.have.length(1);
  });

  it("schedule: the replacement's rate is the one the metrics log shows", async () => {
    @injectable()
    class HalfRate implements ScheduleFactory {
      create(job: Job, run: RunShape): LrSchedule {
        const s = new ConfigSchedule(job).create(job, run);
        // a flat multiplier of 0.5 in place of warmup, scaling and decay
        s.factor = (): number => 0.5;
        return s;
      }
    }
    const input = tinyInput();
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.rebind<ScheduleFactory>(TOKENS.Schedule).to(HalfRate);
    const res = await runJob(input, { ...quiet, container });
    const steps = fs
      .readFileSync(path.join(res.job.out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => l.type === 'step');
    expect(steps).to.have.length(1);
    expect(steps[0].lrs['g2/bias']).to.be.closeTo(0.2 * 0.5, 1e-12);
    expect(steps[0].lrs['g0/kernel']).to.be.closeTo(0.001 * 0.5, 1e-12);
  });

  it('exporter: the replacement receives the trained network and the export folder', async () => {
    const received: Array<{ net: Network; dir: string }> = [];
    const exporter: Exporter = {
      async export(net: Network, dir: string): Promise<string> {
        received.push({ net, dir });
        return dir;
      },
    };
    const input = tinyInput();
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.rebind<Exporter>(TOKENS.Exporter).toConstantValue(exporter);
    const res = await runJob(input, { ...quiet, container });
    expect(received).to.have.length(1);
    expect(received[0].net).to.equal(res.network);
    expect(received[0].dir).to.equal(res.exportDir);
    // the default exporter did not run
    expect(fs.existsSync(path.join(res.exportDir, 'model.json'))).to.equal(false);
  });

  it('callback: one bound to TOKENS.Callback sees the events in order', async () => {
    const events: string[] = [];
    @injectable()
    class Recorder implements Callback {
      beforeFit(): void {
        events.push('trainBegin');
      }
      beforeEpoch(epoch: number): void {
        events.push(`epochBegin ${epoch}`);
      }
      afterStep(b: BatchInfo): void {
        events.push(`batchEnd ${b.step}`);
      }
      afterEpoch(e: EpochInfo): void {
        events.push(`epochEnd ${e.epoch}`);
      }
      afterFit(): void {
        events.push('trainEnd');
      }
    }
    const input = { ...tinyInput(), train: { epochs: 2, batch: 8 } } as JobInput;
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.bind<Callback>(TOKENS.Callback).to(Recorder);
    await runJob(input, { ...quiet, container });
    expect(events).to.deep.equal(['trainBegin', 'epochBegin 0', 'batchEnd 0', 'epochEnd 0', 'epochBegin 1', 'batchEnd 1', 'epochEnd 1', 'trainEnd']);
  });

  it('trainer: one rebound builder is the one runJob, lr-find, search and --wd auto train or evaluate with', async () => {
    const built: string[] = [];
    @injectable()
    class NamingTrainers extends LoopTrainerFactory {
      override create(p: TrainerInputs, parts: TrainerParts): Trainer {
        // which caller asked: runJob passes the guard, the sweep no validation, wd-auto no optimizer
        built.push(parts.guard ? 'train' : !parts.optimizer ? 'evaluate' : (parts.data?.val.length ?? 1) === 0 ? 'sweep' : 'trial');
        return super.create(p, parts);
      }
    }
    const pipeline = (): ReturnType<typeof createContainer> => {
      const c = createContainer();
      c.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
      c.rebind(TOKENS.Trainer).to(NamingTrainers);
      return c;
    };
    const input = tinyInput();
    const res = await runJob(input, { ...quiet, container: pipeline() });
    expect(res.fit.history).to.have.length(1);
    await lrFind({ ...input, out: tmpDir('lt-di-lr-') }, { ...quiet, container: pipeline(), lrFind: { steps: 5 }, write: false });
    const space = { lr: { min: 1e-3, max: 1e-2 }, weightDecay: null, oneMinusMomentum: null, factor: null };
    const r = await search(
      { ...input, out: tmpDir('lt-di-s-') },
      { ...quiet, container: pipeline(), out: tmpDir('lt-di-search-'), search: { trials: 1, space } },
    );
    expect(r.trials).to.have.length(1);
    await wdAutoJob({ ...input, out: tmpDir('lt-di-wd-') }, { ...quiet, container: pipeline() });
    expect(built).to.deep.equal(['train', 'sweep', 'trial', 'evaluate']);
  });

  it('checkpointer: a rebound factory is the one that writes the checkpoints of the run', async () => {
    const made: Checkpointer[] = [];
    @injectable()
    class RecordingCheckpointer extends FolderCheckpointer {
      override create(...args: Parameters<CheckpointerFactory['create']>): Checkpointer {
        const c = super.create(...args);
        made.push(c);
        return c;
      }
    }
    const input = { ...tinyInput(), train: { epochs: 2, batch: 8 } } as JobInput;
    const container = createContainer(resolveJob(input));
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    container.rebind<CheckpointerFactory>(TOKENS.Checkpointer).to(RecordingCheckpointer);
    const res = await runJob(input, { ...quiet, container });
    expect(made).to.have.length(1);
    // two epochs, each writing `last` (and `best` while it improves): the folders this checkpointer wrote are on disk
    expect(made[0].written.length).to.be.at.least(2);
    for (const name of made[0].written) {
      expect(fs.existsSync(path.join(res.job.out, 'checkpoints', name, 'state.json')), name).to.equal(true);
    }
    expect(res.fit.epochs).to.equal(2);
  });

  it('built-in callbacks: they come from TOKENS.RunCallbacks, so a factory can be added and the defaults unbound', async () => {
    const seen: RunContext[] = [];
    const steps: number[] = [];
    @injectable()
    class StepCounter implements CallbackFactory {
      create(ctx: RunContext): Callback[] {
        seen.push(ctx);
        return [{ name: 'steps', afterStep: (b: BatchInfo) => void steps.push(b.step) }];
      }
    }
    const input = { ...tinyInput(), earlyStopping: { monitor: 'val_loss', patience: 5 } } as JobInput;
    const withDefaults = createContainer(resolveJob(input));
    withDefaults.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    withDefaults.bind<CallbackFactory>(TOKENS.RunCallbacks).to(StepCounter);
    const built = withDefaults.getAll<CallbackFactory>(TOKENS.RunCallbacks);
    expect(built).to.have.length(6);
    await runJob(input, { ...quiet, container: withDefaults });
    expect(seen).to.have.length(1);
    expect(steps).to.deep.equal([0]);
    // the early-stopping factory made the run's early stopping from the job's section
    const es = built.flatMap((f) => (f === built[5] ? [] : f.create(seen[0]))).filter((c) => c instanceof EarlyStoppingCallback);
    expect(es).to.have.length(1);
    // only the added factory: early stopping and the rest are gone, and the run still trains
    const bare = createContainer(resolveJob(input));
    bare.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => new MemorySource(['a', 'b'], 4, 1) });
    bare.unbind(TOKENS.RunCallbacks);
    bare.bind<CallbackFactory>(TOKENS.RunCallbacks).to(StepCounter);
    const res = await runJob(input, { ...quiet, container: bare });
    expect(steps).to.deep.equal([0, 0]);
    expect(res.fit.epochs).to.equal(1);
  });
});
