/**
 * Save → load → continue through the state protocol alone: train N epochs in one go, or train k, capture every
 * registered part into a checkpoint, build a fresh container and pipeline, restore the registry from the files and
 * train on to N. Weights, optimizer slots, schedule, early stopping, the data-order RNG and every step's loss must be
 * the same bits. No runJob here: this is the registry the checkpointer iterates over, used directly.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepare } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { StateRegistry } from '../../src/stateful';
import { modelWeights } from '../../src/schedules/weights';
import { EarlyStopping } from '../../src/schedules/early-stopping';
import type { OptimizerState } from '../../src/optim/types';
import type { WeightSnapshot } from '../../src/schedules/weights';
import type { BatchInfo, Callback } from '../../src/train/callbacks';
import { EarlyStoppingCallback, metricsWithTrainAsVal } from '../../src/train/early-stopping';
import { BestTracker, TrackerJudge } from '../../src/train/checkpoint/best';
import { Checkpointer } from '../../src/train/checkpoint/checkpointer';
import { CheckpointSchema } from '../../src/train/schema';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint/store';
import { disposeNetwork } from '../../src/tune/parts';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { runJob } from '../../src/job';
import { TOKENS } from '../../src/container';
import type { Stateful } from '../../src/stateful';
import { tmpDir } from '../helpers/images';

const lastOf = (r: Run) => path.join(r.dir, 'checkpoints', 'last');
const bits = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

function sameSnapshot(a: WeightSnapshot, b: WeightSnapshot, what: string): void {
  expect(
    b.map((w) => w.name),
    what,
  ).to.deep.equal(a.map((w) => w.name));
  a.forEach((w, i) => expect(bits(b[i].values).equals(bits(w.values)), `${what} ${w.name}`).to.equal(true));
}

function sameOptimizer(a: OptimizerState, b: OptimizerState): void {
  expect(b.step).to.equal(a.step);
  expect(Object.keys(b.vars)).to.deep.equal(Object.keys(a.vars));
  for (const [name, v] of Object.entries(a.vars)) {
    expect(b.vars[name].step, name).to.equal(v.step);
    for (const [slot, s] of Object.entries(v.slots)) expect(bits(b.vars[name].slots[slot].values).equals(bits(s.values)), `${name}/${slot}`).to.equal(true);
  }
}

interface Run {
  losses: number[];
  /** Every part's state after fit (early stopping has put its best weights back by then). */
  state: Record<string, unknown>;
  numTensors: number[];
  /** The run folder: checkpoints/last holds the state at the end of the last epoch, before that restore. */
  dir: string;
}

/**
 * One pipeline from a fresh container, its parts registered as runJob registers them and checkpointed after every
 * epoch into `<dir>/checkpoints/last`; trains until `until` epochs are done, after restoring `from` if given.
 */
async function train(job: JobInput, until: number, opts: { from?: string } = {}): Promise<Run> {
  const dir = tmpDir('lt-registry-');
  const log = () => undefined;
  const p = await prepare(job, { log, container: dataContainer(() => new MemorySource(['a', 'b', 'c'], 4, 2)) });
  const losses: number[] = [];
  try {
    const optimizer = p.stages.optimizer.create(p.plan.groups, p.job);
    const weights = modelWeights(p.network.train);
    const es = new EarlyStoppingCallback(new EarlyStopping(p.job.earlyStopping!, weights), opts.from !== undefined, log);
    const judge = new TrackerJudge(new BestTracker(BestTracker.initial('val_accuracy', 'max')));
    const record: Callback = { afterStep: (b: BatchInfo) => void losses.push(b.loss) };
    const trainer = p.stages.trainer.create(p, {
      optimizer,
      epochs: until,
      callbacks: [es, record],
      lr: {
        factor: (step, epoch) => p.schedule.factor(step, epoch),
        epochEnd: (epoch, metrics) => p.schedule.onEpochEnd(epoch, metricsWithTrainAsVal(metrics)),
      },
      onEpochCommitted: (_t, info) => checkpointer.onEpochCommitted(info),
      spillDir: null,
    });
    const state = new StateRegistry().add(trainer, p.schedule, es.es, es.es.bestWeightsState, judge, weights, optimizer);
    const checkpointer = new Checkpointer(CheckpointSchema.parse({ best: false }), dir, { job: {}, input: {}, provenance: null }, state, judge);
    if (opts.from) state.restore(loadCheckpoint(opts.from), ['trainer', 'schedule', 'weights', 'optimizer']);
    const fit = await trainer.fit();
    optimizer.dispose();
    return { losses, state: state.capture(), numTensors: fit.history.map((h) => h.numTensors), dir };
  } finally {
    disposeNetwork(p.network);
  }
}

async function expectExactResume(job: JobInput, epochs: number, k: number): Promise<{ full: Run; resumed: Run }> {
  const full = await train(job, epochs);
  expect(full.losses.length).to.be.greaterThan(0);
  const first = await train(job, k);
  expect((first.state.trainer as { epoch: number }).epoch).to.equal(k);
  const resumed = await train(job, epochs, { from: lastOf(first) });
  // every step's loss, in order, across the break
  expect([...first.losses, ...resumed.losses]).to.deep.equal(full.losses);
  sameSnapshot(full.state.weights as WeightSnapshot, resumed.state.weights as WeightSnapshot, 'weights');
  sameOptimizer(full.state.optimizer as OptimizerState, resumed.state.optimizer as OptimizerState);
  for (const key of ['schedule', 'earlyStopping', 'best']) expect(resumed.state[key], key).to.deep.equal(full.state[key]);
  const [ta, tb] = [full.state.trainer, resumed.state.trainer] as Array<{ rng: number; step: number; epoch: number; history: Array<{ train: unknown }> }>;
  expect(tb.rng, 'data-order RNG').to.equal(ta.rng);
  expect([tb.step, tb.epoch]).to.deep.equal([ta.step, ta.epoch]);
  expect(tb.history.map((h) => h.train)).to.deep.equal(ta.history.map((h) => h.train));
  sameSnapshot(full.state.earlyStoppingBest as WeightSnapshot, resumed.state.earlyStoppingBest as WeightSnapshot, 'early-stopping best weights');
  // the state at the end of the last epoch, before restoreBestWeights: the checkpoint files themselves
  for (const f of ['weights.bin', 'optimizer.bin'])
    expect(fs.readFileSync(path.join(lastOf(resumed), f)).equals(fs.readFileSync(path.join(lastOf(full), f))), f).to.equal(true);
  const parts = (r: Run) => {
    const s = JSON.parse(fs.readFileSync(path.join(lastOf(r), 'state.json'), 'utf8'));
    delete s.createdAt;
    for (const h of s.trainer.history) delete h.seconds; // wall-clock time, the one thing allowed to differ
    return s;
  };
  expect(parts(resumed)).to.deep.equal(parts(full));
  // no tensors left behind by an epoch, in either half
  for (const r of [full, first, resumed]) expect(new Set(r.numTensors).size, `numTensors per epoch ${r.numTensors}`).to.equal(1);
  return { full, resumed };
}

describe('state registry: save, load into a fresh pipeline, continue — bit for bit', function () {
  this.timeout(300000);
  // 12 train images, batch 4, 3 steps an epoch; momentum slots; a plateau stage that cuts the rate; early stopping
  // that keeps its best weights; dropout and BatchNorm batch statistics in the head's forward passes
  const base = (out: string): JobInput =>
    ({
      model: { size: 32 },
      train: { epochs: 4, batch: 4, seed: 11 },
      backend: 'wasm',
      out,
      plateau: { monitor: 'val_accuracy', mode: 'max', patience: 0, factor: 0.5, stopAtFraction: null },
      earlyStopping: { monitor: 'val_loss', patience: 10, restoreBestWeights: true },
    }) as JobInput;

  it('plateau and early stopping on: 4 epochs in one go = 2 epochs, checkpoint, fresh container, 2 more', async () => {
    const { full } = await expectExactResume(base(tmpDir()), 4, 2);
    // the plateau stage did cut the rate, so its restored state was needed
    expect((full.state.schedule as { plateau: { multiplier: number } }).plateau.multiplier).to.be.lessThan(1);
  });

  it('with every augmentation transform on (crops, flips, colour, erasing, mixup/cutmix drawn from the run RNG)', async () => {
    const job = {
      ...base(tmpDir()),
      data: {
        augment: {
          randomResizedCrop: { scale: [0.35, 1] },
          vflip: 0.3,
          colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
          grayscale: 0.2,
          randomErasing: { p: 0.5, value: 'random' },
          mix: { mixupAlpha: 0.8, cutmixAlpha: 1, prob: 0.8 },
        },
      },
    } as JobInput;
    await expectExactResume(job, 3, 1);
  });

  it('the comparison can fail: a resume that restores everything but the data-order RNG does not give the same run', async () => {
    const job = base(tmpDir());
    const full = await train(job, 3);
    const first = await train(job, 1);
    const ck = lastOf(first);
    // the same checkpoint, but its RNG state moved on by one draw: what a resume that lost the data order would see
    const saved = loadCheckpoint(ck);
    await saveCheckpoint(ck, { ...saved, trainer: { ...saved.trainer, rng: (saved.trainer.rng + 0x6d2b79f5) >>> 0 } });
    const resumed = await train(job, 3, { from: ck });
    expect([...first.losses, ...resumed.losses]).to.not.deep.equal(full.losses);
  });

  it('a part of the user bound to TOKENS.Stateful is checkpointed by runJob under its key and restored by --resume', async () => {
    /** Counts the optimizer steps it has seen: only a restored count reaches the full run's total. */
    class StepCounter implements Callback, Stateful<{ steps: number }> {
      readonly stateKey = 'stepCounter';
      steps = 0;
      afterStep(b: BatchInfo): void {
        if (this.crashAt !== null && b.step === this.crashAt) throw new Error('simulated crash');
        this.steps++;
      }
      getState() {
        return { steps: this.steps };
      }
      setState(s: { steps: number }) {
        this.steps = s.steps;
      }
      constructor(private readonly crashAt: number | null) {}
    }
    const withCounter = (counter: StepCounter) => {
      const c = dataContainer(() => new MemorySource(['a', 'b'], 6, 2));
      c.bind(TOKENS.Callback).toConstantValue(counter);
      c.bind(TOKENS.Stateful).toConstantValue(counter);
      return c;
    };
    const job = { model: { size: 32 }, train: { epochs: 3, batch: 4, seed: 3 }, backend: 'wasm', out: tmpDir('lt-userpart-') } as JobInput;
    const first = new StepCounter(7); // dies in epoch 3, after the checkpoint of epoch 2 (6 steps)
    await runJob(job, { log: () => undefined, container: withCounter(first) }).then(
      () => expect.fail('the counter should have crashed the run'),
      (e) => expect((e as Error).message).to.equal('simulated crash'),
    );
    const saved = JSON.parse(fs.readFileSync(path.join(job.out as string, 'checkpoints', 'last', 'state.json'), 'utf8'));
    expect(saved.stepCounter).to.deep.equal({ steps: 6 });
    const again = new StepCounter(null);
    await runJob({}, { log: () => undefined, resume: job.out as string, container: withCounter(again) });
    // 6 restored + the 3 steps of epoch 3; a counter that was not restored would say 3
    expect(again.steps).to.equal(9);
  });
});
