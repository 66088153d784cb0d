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
 * Two epochs on wasm over 16 train / 16 val images at batch 4 (4 validation batches), training on one thread;
 * validation on `valThreads`. What each epoch reported, the validation threads and worker tensors seen per epoch.
 */
async function run(valThreads: number, failAfterEpoch = false) {
  const source = new MemorySource(['a', 'b'], 8, 8);
  const p = await prepare({ model: { size: 32 }, train: { epochs: 2, batch: 4, seed: 7, threads: 1 }, backend: 'wasm', out: tmpDir('lt-pval-') } as JobInput, {
    ...quiet,
    container: dataContainer(() => source),
  });
  const opt = p.stages.optimizer.create(p.plan.groups, p.job);
  const seen: Array<{ threads: number; workerTensors: number[] }> = [];
  const t = new LoopTrainerFactory().create(p, {
    optimizer: opt,
    lr: { factor: (s, e) => p.schedule.factor(s, e) },
    valThreads,
    spillDir: null,
    callbacks: [
      {
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
  const history = await t.fit().then(
    (f) => f.history,
    (e) => {
      error = e;
      return [] as EpochInfo[];
    },
  );
  opt.dispose();
  return { history, seen, after: t.validation, leaked: tf.memory().numTensors - n0, error };
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
    expect(two.seen[1].workerTensors, 'worker tensors flat across epochs').to.deep.equal(two.seen[0].workerTensors);
    expect(two.after.workerTensors, 'pool disposed at the end of fit').to.deep.equal([]);
  });

  it('disposes the pool when the fit fails', async () => {
    const r = await run(2, true);
    expect((r.error as Error)?.message).to.equal('callback failure');
    expect(r.seen[0].threads).to.equal(2);
    expect(r.after.workerTensors).to.deep.equal([]);
  });
});
