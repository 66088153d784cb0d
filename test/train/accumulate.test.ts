import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare, type Prepared } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { Trainer } from '../../src/train/trainer';
import { tinyTrainerOptions } from '../helpers/trainer';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

const quiet = { log: () => undefined };

/** One epoch over 16 images; returns the trainable weights before and after, and the tensor count around fit(). */
async function trainOnce(batch: number, accumulate: number) {
  const source = new MemorySource(['a', 'b'], 8, 0);
  const p: Prepared = await prepare(
    // BatchNorm frozen and no dropout: then a batch of 8 and two batches of 4 see exactly the same function
    {
      model: { size: 32, batchNorm: 'frozen', dropout: 0 },
      data: { flip: false },
      train: { epochs: 1, batch, accumulate, seed: 3 },
      backend: 'cpu',
      out: tmpDir(),
    } as JobInput,
    { ...quiet, container: dataContainer(() => source) },
  );
  const read = () => Object.fromEntries(Object.entries(p.trainableVars).map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
  const before = read();
  const opt = p.stages.optimizer.create(p.plan.groups, p.job);
  const steps: number[] = [];
  const t = new Trainer(
    tinyTrainerOptions(p, {
      optimizer: opt,
      lr: { factor: (s, e) => p.schedule.factor(s, e) },
      callbacks: [{ afterStep: (b) => void steps.push(b.examples) }],
      epochs: 1,
      batch,
      seed: 3,
      accumulate,
    }),
  );
  const n0 = tf.memory().numTensors;
  await t.fit();
  opt.dispose();
  const n1 = tf.memory().numTensors;
  return { p, before, after: read(), steps, leaked: n1 - n0 };
}

function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let m = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
  return m;
}

describe('gradient accumulation', function () {
  this.timeout(300000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('accumulate 2 × batch 4 makes the same update as batch 8 (cpu backend), and the schedule sees batch 8', async () => {
    const big = await trainOnce(8, 1);
    const acc = await trainOnce(4, 2);
    const small = await trainOnce(4, 1);
    // same effective batch → same linear scaling and the same number of optimizer steps
    expect(acc.p.schedule.resolved.lr.effectiveBatch).to.equal(8);
    expect(acc.p.stepsPerEpoch).to.equal(2);
    expect(acc.p.batchesPerEpoch).to.equal(4);
    expect(acc.p.schedule.factor(0, 0)).to.equal(big.p.schedule.factor(0, 0));
    expect(big.steps).to.deep.equal([8, 8]);
    expect(acc.steps).to.deep.equal([8, 8]);
    const update = maxDiff(big.before, big.after);
    const accVsBig = maxDiff(acc.after, big.after);
    const smallVsBig = maxDiff(small.after, big.after);
    expect(update).to.be.greaterThan(1e-4);
    // float32 summation order is the only difference
    expect(accVsBig, `acc vs big ${accVsBig}, update ${update}`).to.be.lessThan(1e-6 + 1e-3 * update);
    // control: four steps of batch 4 without accumulation land elsewhere
    expect(smallVsBig).to.be.greaterThan(0.05 * update);
    for (const r of [big, acc, small]) expect(r.leaked, 'tensors left after fit + optimizer dispose').to.equal(0);
  });

  it('weights a short last batch by its images: 3 batches of 4 with accumulate 2 → steps of 8 and 4 images', async () => {
    const source = new MemorySource(['a', 'b'], 6, 0);
    const p = await prepare(
      {
        model: { size: 32, batchNorm: 'frozen', dropout: 0 },
        data: { flip: false },
        train: { epochs: 2, batch: 4, accumulate: 2 },
        backend: 'cpu',
        out: tmpDir(),
      } as JobInput,
      { ...quiet, container: dataContainer(() => source) },
    );
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const seen: Array<[number, number]> = [];
    const t = new Trainer(tinyTrainerOptions(p, { optimizer: opt, callbacks: [{ afterStep: (b) => void seen.push([b.step, b.examples]) }], accumulate: 2 }));
    const fit = await t.fit();
    opt.dispose();
    expect(p.stepsPerEpoch).to.equal(2);
    expect(seen).to.deep.equal([
      [0, 8],
      [1, 4],
      [2, 8],
      [3, 4],
    ]);
    expect(fit.history.map((h) => h.step)).to.deep.equal([2, 4]);
    expect(fit.history[0].numTensors).to.equal(fit.history[1].numTensors);
  });
});
