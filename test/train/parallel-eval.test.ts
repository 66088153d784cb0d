import type { WorkerOptions } from 'node:worker_threads';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { LoopTrainerFactory } from '../../src/train/build';
import type { EpochInfo } from '../../src/train/callbacks';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

const quiet = { log: () => undefined };

/**
 * The scripts of the worker threads this thread starts while `fn` runs (the module's Worker replaced meanwhile, which
 * the sources' `new Worker` reaches through the module object), by file name.
 */
async function workersStartedDuring<T>(fn: () => Promise<T>): Promise<{ result: T; scripts: string[] }> {
  // the module object itself (an import's namespace is read-only)
  const wt = require('node:worker_threads') as typeof import('node:worker_threads');
  const Original = wt.Worker;
  const scripts: string[] = [];
  wt.Worker = class extends Original {
    constructor(script: string | URL, options?: WorkerOptions) {
      super(script, options);
      scripts.push(String(script).split('/').pop() as string);
    }
  };
  try {
    return { result: await fn(), scripts };
  } finally {
    wt.Worker = Original;
  }
}

/**
 * Two epochs on wasm over 16 train / 16 val images at batch 4 (4 validation batches), training on `trainThreads`;
 * validation on `valThreads`. What each epoch reported, the validation threads and worker tensors seen per epoch,
 * the gradient threads during fit, and the worker threads the fit started (their scripts).
 */
async function run(valThreads: number, failAfterEpoch = false, trainThreads = 1) {
  const source = new MemorySource(['a', 'b'], 8, 8);
  const job = { model: { size: 32 }, train: { epochs: 2, batch: 4, seed: 7, threads: trainThreads }, backend: 'wasm', out: tmpDir('lt-pval-') };
  const p = await prepare(job as JobInput, {
    ...quiet,
    container: dataContainer(() => source),
  });
  const opt = p.stages.optimizer.create(p.plan.groups, p.job);
  const seen: Array<{ threads: number; placement: string; workerTensors: number[] }> = [];
  const trainingThreads: number[] = [];
  const t = new LoopTrainerFactory().create(p, {
    optimizer: opt,
    lr: { factor: (s, e) => p.schedule.factor(s, e) },
    valThreads,
    spillDir: null,
    callbacks: [
      {
        afterStep: () => void trainingThreads.push(t.threads),
        afterEpoch: (e: EpochInfo) => {
          seen.push({ ...t.validation });
          if (failAfterEpoch && e.epoch === 0) throw new Error('callback failure');
        },
      },
    ],
    log: () => {},
  });
  const n0 = tf.memory().numTensors;
  let error: unknown = null;
  const { result: history, scripts: threadsStarted } = await workersStartedDuring(() =>
    t.fit().then(
      (f) => f.history,
      (e) => {
        error = e;
        return [] as EpochInfo[];
      },
    ),
  );
  opt.dispose();
  return { history, seen, trainingThreads: new Set(trainingThreads), threadsStarted, after: t.validation, leaked: tf.memory().numTensors - n0, error };
}

describe('validation on worker threads (InferencePool)', function () {
  this.timeout(300000);

  it('gives the one-thread metrics on two threads (loss within 1e-6, same accuracy), numTensors flat, the pool gone after fit', async () => {
    const one = await run(1);
    const two = await run(2);
    expect(one.seen.map((s) => s.threads)).to.deep.equal([1, 1]);
    expect(
      two.seen.map((s) => s.threads),
      'the pool ran',
    ).to.deep.equal([2, 2]);
    expect(two.history.length).to.equal(2);
    two.history.forEach((h, i) => {
      expect(h.val!.loss, `epoch ${i + 1} loss`).to.be.closeTo(one.history[i].val!.loss, 1e-6);
      expect(h.val!.accuracy, `epoch ${i + 1} accuracy`).to.equal(one.history[i].val!.accuracy);
    });
    // the weights moved between the epochs, so the second pass really used the pushed weights
    expect(two.history[1].val!.loss).to.not.equal(two.history[0].val!.loss);
    expect(new Set(two.history.map((h) => h.numTensors)).size, 'numTensors per epoch').to.equal(1);
    expect(two.seen[0].workerTensors.length).to.equal(1);
    expect(two.threadsStarted, "the pool's one worker").to.deep.equal(['inference-worker.ts']);
    expect(two.seen[1].workerTensors, 'worker tensors flat across epochs').to.deep.equal(two.seen[0].workerTensors);
    expect(two.after.workerTensors, 'pool disposed at the end of fit').to.deep.equal([]);
  });

  it('while training on two threads, validates on the gradient worker: no thread of its own, the in-thread metrics exactly', async () => {
    const inThread = await run(1, false, 2);
    const lent = await run(2, false, 2);
    expect([...inThread.trainingThreads], 'gradient threads during fit').to.deep.equal([2]);
    expect([...lent.trainingThreads]).to.deep.equal([2]);
    expect(inThread.seen.map((s) => s.placement)).to.deep.equal(['this thread', 'this thread']);
    expect(lent.seen.map((s) => [s.threads, s.placement])).to.deep.equal([
      [2, 'gradient workers'],
      [2, 'gradient workers'],
    ]);
    // the gradient worker alone: a pool of its own would have started an inference worker besides
    expect(inThread.threadsStarted, 'threads started by the in-thread fit').to.deep.equal(['parallel-worker.ts']);
    expect(lent.threadsStarted, 'threads started by the lent fit').to.deep.equal(['parallel-worker.ts']);
    // same kernels on the same inputs in either wasm instance: the metrics are the in-thread ones bit for bit, and
    // hosting a model copy leaves the worker's training steps as they were
    expect(lent.history.map((h) => h.val)).to.deep.equal(inThread.history.map((h) => h.val));
    expect(lent.history.map((h) => h.train)).to.deep.equal(inThread.history.map((h) => h.train));
    expect(lent.history[1].val!.loss).to.not.equal(lent.history[0].val!.loss);
    expect(new Set(lent.history.map((h) => h.numTensors)).size, 'numTensors per epoch').to.equal(1);
    expect(lent.leaked, 'tensors left on this thread').to.equal(0);
    expect(lent.seen[1].workerTensors, "the gradient worker's tensors flat across epochs").to.deep.equal(lent.seen[0].workerTensors);
    expect(lent.after.workerTensors, 'the lent pool let go at the end of fit').to.deep.equal([]);
  });

  it('disposes the pool when the fit fails', async () => {
    const r = await run(2, true);
    expect((r.error as Error)?.message).to.equal('callback failure');
    expect(r.seen[0].threads).to.equal(2);
    expect(r.after.workerTensors).to.deep.equal([]);
  });
});
