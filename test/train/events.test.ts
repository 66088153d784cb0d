/**
 * The loop's named events: their exact order, the four cancellations and what each skips, the veto at
 * afterBackward, and a flat tensor count with every strategy on (accumulation, threads, cached prefix, dropout).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare, type Prepared } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import {
  CancelBatch,
  CancelEpoch,
  CancelFit,
  CancelStep,
  type BackwardInfo,
  type BatchBeginInfo,
  type BatchEndInfo,
  type BatchInfo,
  type Callback,
  type EpochInfo,
  type EventName,
} from '../../src/train/callbacks';
import { DivergenceGuardCallback, GuardSchema } from '../../src/train/guard';
import type { Trainer, TrainerOptions } from '../../src/train/trainer';
import type { WeightSnapshot } from '../../src/schedules/weights';
import type { OptimizerState } from '../../src/optim/types';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

/** 8 training images (2 batches of 4 per epoch), 2 validation images. */
async function tiny(train: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<Prepared> {
  return prepare({ model: { size: 32 }, train: { epochs: 2, batch: 4, seed: 2, ...train }, backend: 'wasm', out: tmpDir(), ...extra } as JobInput, {
    log: () => undefined,
    container: dataContainer(() => new MemorySource(['a', 'b'], 4, 1)),
  });
}

function trainer(p: Prepared, callbacks: Callback[], more: { onEpochCommitted?: TrainerOptions['onEpochCommitted'] } = {}) {
  const optimizer = p.stages.optimizer.create(p.plan.groups, p.job);
  const t = p.stages.trainer.create(p, { optimizer, lr: { factor: () => 1 }, callbacks, spillDir: null, ...more });
  return { t, optimizer };
}

const weights = (p: Prepared) => Object.values(p.trainableVars).map((v) => Array.from(v.dataSync()));

/** Records every event as `name` plus where it happened. */
class Recorder implements Callback {
  readonly name = 'recorder';
  readonly seen: string[] = [];
  constructor(private readonly cancel: Partial<Record<EventName, (info: never) => void>> = {}) {
    const where = (e: EventName, x: unknown): string => {
      if (typeof x === 'number') return `${e} ${x}`;
      const o = x as Partial<BatchBeginInfo & BatchEndInfo & { reason: string }>;
      if (e === 'afterEpoch') return `${e} ${(x as EpochInfo).epoch}`;
      if (o.reason !== undefined) return `${e} (${o.reason})`;
      if (o.micro !== undefined) return `${e} s${o.step} m${o.micro}${o.cancelled ? ' cancelled' : ''}`;
      if (o.step !== undefined) return `${e} s${o.step}`;
      return e;
    };
    const events: EventName[] = [
      'beforeFit',
      'beforeEpoch',
      'beforeBatch',
      'afterBackward',
      'afterBatch',
      'beforeStep',
      'afterStep',
      'afterEpoch',
      'afterFit',
      'afterCancelBatch',
      'afterCancelStep',
      'afterCancelEpoch',
      'afterCancelFit',
    ];
    for (const e of events) {
      (this as unknown as Record<string, (x: unknown) => void>)[e] = (x: unknown) => {
        this.seen.push(where(e, x));
        (this.cancel[e] as ((x: unknown) => void) | undefined)?.(x);
      };
    }
  }
}

describe('loop events', function () {
  this.timeout(300000);

  it('2 epochs × 2 batches with accumulate 2: the exact sequence, a step after the batch that completes it', async () => {
    const p = await tiny({ accumulate: 2 });
    const rec = new Recorder();
    const { t, optimizer } = trainer(p, [rec]);
    await t.fit();
    optimizer.dispose();
    const epoch = (e: number) => [
      `beforeEpoch ${e}`,
      `beforeBatch s${e} m0`,
      `afterBackward s${e} m0`,
      `afterBatch s${e} m0`,
      `beforeBatch s${e} m1`,
      `afterBackward s${e} m1`,
      `afterBatch s${e} m1`,
      `beforeStep s${e}`,
      `afterStep s${e}`,
      `afterEpoch ${e}`,
    ];
    expect(rec.seen).to.deep.equal(['beforeFit', ...epoch(0), ...epoch(1), 'afterFit']);
  });

  it('CancelBatch from beforeBatch skips the forward pass; the step goes on with the other batch', async () => {
    const p = await tiny({ accumulate: 2, epochs: 1 });
    const steps: BatchInfo[] = [];
    let skipped = false;
    const rec = new Recorder({
      beforeBatch: () => {
        if (skipped) return;
        skipped = true;
        throw new CancelBatch('skip the first');
      },
    });
    const { t, optimizer } = trainer(p, [rec, { afterStep: (b) => void steps.push(b) }]);
    await t.fit();
    optimizer.dispose();
    expect(rec.seen.slice(1, 11)).to.deep.equal([
      'beforeEpoch 0',
      'beforeBatch s0 m0',
      'afterCancelBatch (skip the first)',
      'afterBatch s0 m0 cancelled',
      'beforeBatch s0 m0',
      'afterBackward s0 m0',
      'afterBatch s0 m0',
      'beforeStep s0',
      'afterStep s0',
      'afterEpoch 0',
    ]);
    // the epoch's last step averages what is left: the one batch of 4
    expect(steps.map((s) => s.examples)).to.deep.equal([4]);
  });

  it('an epoch whose every batch was cancelled still closes, with NaN training metrics', async () => {
    const p = await tiny({ epochs: 1 });
    const { t, optimizer } = trainer(p, [
      {
        beforeBatch: () => {
          throw new CancelBatch('none');
        },
      },
    ]);
    const fit = await t.fit();
    optimizer.dispose();
    expect(fit.epochs).to.equal(1);
    expect(fit.history[0].train.loss).to.be.NaN;
    expect(t.step).to.equal(0);
  });

  it('CancelBatch from afterBackward drops only that batch: the step averages the other one (4 images, not 8)', async () => {
    const p = await tiny({ accumulate: 2, epochs: 1 });
    const steps: BatchInfo[] = [];
    let dropped = false;
    const { t, optimizer } = trainer(p, [
      {
        afterBackward: (b: BackwardInfo) => {
          expect(Object.keys(b.grads).length).to.be.greaterThan(0);
          if (b.micro === 0 && !dropped) {
            dropped = true;
            throw new CancelBatch('drop');
          }
        },
      },
      { afterStep: (b) => void steps.push(b) },
    ]);
    const n0 = tf.memory().numTensors;
    await t.fit();
    optimizer.dispose();
    expect(steps.map((s) => s.examples)).to.deep.equal([4]);
    // the dropped gradients were disposed, not leaked
    expect(tf.memory().numTensors).to.equal(n0);
  });

  it('CancelStep from beforeStep applies nothing: the weights stay, afterStep is not raised, afterCancelStep is', async () => {
    const p = await tiny({ epochs: 1 });
    const before = weights(p);
    const rec = new Recorder({
      beforeStep: () => {
        throw new CancelStep('no update');
      },
    });
    const { t, optimizer } = trainer(p, [rec]);
    await t.fit();
    optimizer.dispose();
    expect(rec.seen.filter((s) => s.startsWith('afterStep'))).to.deep.equal([]);
    expect(rec.seen.filter((s) => s.startsWith('afterCancelStep'))).to.have.length(2);
    expect(weights(p)).to.deep.equal(before);
    expect(t.step).to.equal(0);
  });

  it('CancelStep from afterBackward (the veto) drops the step in progress, the accumulated batch included', async () => {
    const p = await tiny({ accumulate: 2, epochs: 2 });
    const steps: BatchInfo[] = [];
    let vetoed = false;
    const rec = new Recorder({
      afterBackward: (b: BackwardInfo) => {
        if (b.micro === 1 && !vetoed) {
          vetoed = true;
          throw new CancelStep('veto');
        }
      },
    });
    const { t, optimizer } = trainer(p, [rec, { afterStep: (b) => void steps.push(b) }]);
    await t.fit();
    optimizer.dispose();
    expect(rec.seen.slice(1, 9)).to.deep.equal([
      'beforeEpoch 0',
      'beforeBatch s0 m0',
      'afterBackward s0 m0',
      'afterBatch s0 m0',
      'beforeBatch s0 m1',
      'afterBackward s0 m1',
      'afterCancelStep (veto)',
      'afterBatch s0 m1 cancelled',
    ]);
    // epoch 0 applied nothing (no retry was asked for), epoch 1 its one full step over 8 images
    expect(steps.map((s) => [s.epoch, s.step, s.examples])).to.deep.equal([[1, 0, 8]]);
  });

  it('CancelEpoch ends the training pass; the epoch still validates, raises afterEpoch and is committed', async () => {
    const p = await tiny({ epochs: 2 });
    const committed: number[] = [];
    const rec = new Recorder({
      afterStep: (b: BatchInfo) => {
        if (b.epoch === 0) throw new CancelEpoch('short epoch');
      },
    });
    const { t, optimizer } = trainer(p, [rec], { onEpochCommitted: (_t: Trainer, info: EpochInfo) => void committed.push(info.epoch) });
    const fit = await t.fit();
    optimizer.dispose();
    expect(rec.seen.slice(5, 10)).to.deep.equal(['beforeStep s0', 'afterStep s0', 'afterCancelEpoch (short epoch)', 'afterEpoch 0', 'beforeEpoch 1']);
    expect(fit.history.map((h) => h.step)).to.deep.equal([1, 3]);
    expect(fit.history[0].val).to.not.equal(undefined);
    expect(committed).to.deep.equal([0, 1]);
  });

  it('CancelFit inside an epoch stops at once (nothing of the epoch committed); from afterEpoch after the commit, recorded', async () => {
    const p = await tiny({ epochs: 3 });
    const committed: Array<[number, string | null]> = [];
    const rec = new Recorder({
      afterStep: (b: BatchInfo) => {
        if (b.step === 2) throw new CancelFit('mid-epoch');
      },
    });
    const { t, optimizer } = trainer(p, [rec], { onEpochCommitted: (_t: Trainer, info: EpochInfo, s: string | null) => void committed.push([info.epoch, s]) });
    const fit = await t.fit();
    expect(rec.seen.slice(-3)).to.deep.equal(['afterStep s2', 'afterCancelFit (mid-epoch)', 'afterFit']);
    expect(fit).to.include({ epochs: 1, stoppedEarly: 'mid-epoch' });
    expect(committed).to.deep.equal([[0, null]]);
    expect(t.getState().stoppedEarly, 'a mid-epoch stop is not a finished run').to.equal(null);
    optimizer.dispose();

    const q = await tiny({ epochs: 3 });
    const done: Array<[number, string | null]> = [];
    const early = trainer(
      q,
      [
        {
          afterEpoch: (e: EpochInfo) => {
            if (e.epoch === 0) throw new CancelFit('enough');
          },
        },
      ],
      { onEpochCommitted: (_t: Trainer, info: EpochInfo, s: string | null) => void done.push([info.epoch, s]) },
    );
    const t2 = early.t;
    const fit2 = await t2.fit();
    early.optimizer.dispose();
    expect(fit2).to.include({ epochs: 1, stoppedEarly: 'enough' });
    expect(done).to.deep.equal([[0, 'enough']]);
    expect(t2.getState().stoppedEarly, 'the checkpoint says the run is finished').to.equal('enough');
  });

  it('every callback still sees an event another one cancelled in; the widest cancel wins; a misplaced one names its callback', async () => {
    const p = await tiny({ epochs: 2 });
    const later: number[] = [];
    const { t, optimizer } = trainer(p, [
      {
        name: 'a',
        order: 1,
        afterStep: () => {
          throw new CancelEpoch('epoch');
        },
      },
      {
        name: 'b',
        order: 2,
        afterStep: (b: BatchInfo) => {
          if (b.step === 0) throw new CancelFit('fit');
        },
      },
      { name: 'c', order: 3, afterStep: (b: BatchInfo) => void later.push(b.step) },
    ]);
    const fit = await t.fit();
    optimizer.dispose();
    expect(later).to.deep.equal([0]);
    expect(fit.stoppedEarly).to.equal('fit');

    const q = await tiny({ epochs: 1 });
    const bad = trainer(q, [
      {
        name: 'misplaced',
        afterStep: () => {
          throw new CancelBatch('too late');
        },
      },
    ]);
    const err = await bad.t.fit().catch((e: Error) => e);
    bad.optimizer.dispose();
    expect((err as Error).message).to.equal('callback "misplaced" threw CancelBatch from afterStep, where it cannot take effect (too late)');
  });

  it('a callback still written for the old event names is refused in one line, not skipped', async () => {
    const p = await tiny({ epochs: 1 });
    const old = { name: 'old', onBatchEnd: () => undefined } as unknown as Callback;
    const optimizer = p.stages.optimizer.create(p.plan.groups, p.job);
    expect(() => p.stages.trainer.create(p, { optimizer, callbacks: [old] })).to.throw(
      'callback "old" has onBatchEnd: the events were renamed, use afterStep (throw CancelFit to stop)',
    );
    optimizer.dispose();
  });

  it('tf.memory().numTensors is flat across epochs with accumulation, 2 threads, a cached frozen prefix and dropout', async () => {
    const p = await tiny(
      { epochs: 4, accumulate: 2, threads: 2 },
      { groups: { strategy: 'stepped', rules: [{ match: '^conv(1|_(dw|pw)_([1-9]|1[01]))(_bn)?$', freeze: true }] }, model: { size: 32, dropout: 0.2 } },
    );
    expect(p.cachedStages).to.be.greaterThan(0);
    const perEpoch: number[] = [];
    const threads: number[] = [];
    const { t, optimizer } = trainer(p, [{ afterEpoch: (e: EpochInfo) => void perEpoch.push(e.numTensors), afterStep: () => void threads.push(t.threads) }]);
    await t.fit();
    optimizer.dispose();
    expect(threads.every((n) => n === 2)).to.equal(true);
    expect(t.featureCache!.hits).to.be.greaterThan(0);
    expect(perEpoch).to.have.length(4);
    for (const n of perEpoch) expect(n, 'tensors after each epoch').to.equal(perEpoch[0]);
  });
});

describe('the divergence guard as a callback', () => {
  const config = GuardSchema.parse({ snapshotEvery: 1, lrCut: 0.5, maxRetries: 2 });
  const at = (step: number, micro = 0): BatchBeginInfo => ({ epoch: 0, step, stepInEpoch: step, micro, examples: 4 });
  const backward = (b: BatchBeginInfo, loss: number): BackwardInfo => ({ ...b, loss, accuracy: 0.5, gradsFinite: true, grads: {} });

  function fake() {
    let w = 1;
    const writes: number[] = [];
    const store = {
      read: () => ({ w: new Float32Array([w]) }) as unknown as WeightSnapshot,
      write: (s: WeightSnapshot) => {
        w = (s as unknown as { w: Float32Array }).w[0];
        writes.push(w);
      },
    };
    const opt = { getState: () => ({ algorithm: 'sgd', step: w, vars: {} }) as OptimizerState, setState: () => undefined };
    return { store, opt, writes, set: (v: number) => void (w = v) };
  }

  it('vetoes a NaN step from afterBackward: rolls back to the last good weights, cuts the rate, says so in one line', () => {
    const f = fake();
    const lines: string[] = [];
    const g = new DivergenceGuardCallback(config, Math.log(2), f.store, f.opt, (l) => lines.push(l));
    g.beforeBatch(at(0));
    g.afterBackward(backward(at(0), 0.7)); // good: the copy of step 0 (w = 1) is the rollback point
    f.set(5); // the step moved the weights
    g.beforeBatch(at(1));
    f.set(99); // a wreck written by the forward pass
    let veto: unknown;
    try {
      g.afterBackward(backward(at(1), NaN));
    } catch (e) {
      veto = e;
    }
    expect(veto).to.be.instanceOf(CancelStep);
    expect((veto as CancelStep).retryEmptyEpoch).to.equal(true);
    // the staged copy of step 1 never checked out: back to step 0's weights
    expect(f.writes).to.deep.equal([1]);
    expect(lines).to.deep.equal([
      "warning: divergence at epoch 1, step 1 (loss is NaN): rolled back to the weights of step 0 and cut every group's rate to ×0.500 of the schedule (retry 1/2)",
    ]);
    const ctl = { epoch: 0, step: 1, batchInEpoch: 1, batchesPerEpoch: 2, examples: 4, lrFactor: 0.3 };
    g.beforeStep(ctl);
    expect(ctl.lrFactor).to.equal(0.15);
    expect(g.guard.events.map((e) => e.step)).to.deep.equal([1]);
  });

  it('only a step’s first batch stages a copy; the retry limit ends the run with a TrainingError', () => {
    const f = fake();
    const g = new DivergenceGuardCallback({ ...config, maxRetries: 0 }, Math.log(2), f.store, f.opt, () => undefined);
    g.beforeBatch(at(0, 0));
    g.afterBackward(backward(at(0, 0), 0.7));
    f.set(3);
    g.beforeBatch(at(0, 1)); // second batch of the same step: no new copy
    expect(() => g.afterBackward(backward(at(0, 1), Infinity))).to.throw(/^training diverged at epoch 1, step 0 \(loss is Infinity\) after 0 rate cut/);
  });
});
