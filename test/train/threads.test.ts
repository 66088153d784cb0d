import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare, type Prepared } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { Trainer } from '../../src/train/trainer';
import { tinyTrainerOptions } from '../helpers/trainer';
import { MIN_MULTIPLY_ADDS_FOR_THREADS, resolveThreads } from '../../src/engine/threads';
import { resolveJob } from '../../src/config/load';
import { ConfigError } from '../../src/errors';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';
import { initWasm } from '../engine/wasm_setup';

const quiet = { log: () => undefined };

/** One epoch over 16 images on wasm with `threads` gradient threads; weights before/after, threads seen, leaks. */
async function trainOnce(threads: number, model: { batchNorm: 'frozen' | 'batch'; dropout: number }, epochs = 1) {
  const source = new MemorySource(['a', 'b'], 8, 0);
  const p: Prepared = await prepare(
    { model: { size: 32, ...model }, data: { flip: false }, train: { epochs, batch: 8, seed: 3, threads }, backend: 'wasm', out: tmpDir() } as JobInput,
    { ...quiet, container: dataContainer(() => source) },
  );
  const read = () => Object.fromEntries(Object.entries(p.trainableVars).map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
  const stats = () => p.network.train.weights.filter((w) => /moving_mean/.test(w.originalName)).map((w) => w.read().dataSync().slice() as Float32Array);
  const before = read();
  const opt = p.stages.optimizer.create(p.plan.groups, p.job);
  const seen: number[] = [];
  const workerMemory: Array<Array<{ numTensors: number; numBytes: number }>> = [];
  const t: Trainer = new Trainer(
    tinyTrainerOptions(p, {
      optimizer: opt,
      lr: { factor: (s, e) => p.schedule.factor(s, e) },
      callbacks: [{ afterStep: () => void seen.push(t.threads), afterEpoch: () => void workerMemory.push(t.workerMemory) }],
      epochs,
      batch: 8,
      seed: 3,
      threads,
    }),
  );
  const n0 = tf.memory().numTensors;
  const fit = await t.fit();
  opt.dispose();
  const leaked = tf.memory().numTensors - n0;
  return { before, after: read(), stats: stats(), seen, after_threads: t.threads, leaked, fit, workerMemory };
}

function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let m = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
  return m;
}

describe('training on worker threads (wasm)', function () {
  this.timeout(300000);
  before(async () => {
    await initWasm();
    await tf.setBackend('wasm');
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('2 threads make the same updates as 1 when nothing depends on the batch split (BN frozen, no dropout)', async () => {
    const one = await trainOnce(1, { batchNorm: 'frozen', dropout: 0 });
    const two = await trainOnce(2, { batchNorm: 'frozen', dropout: 0 });
    expect(one.seen).to.deep.equal([1, 1]);
    expect(two.seen, 'threads in use during fit').to.deep.equal([2, 2]);
    expect(two.after_threads, 'workers stopped after fit').to.equal(1);
    const update = maxDiff(one.before, one.after);
    const d = maxDiff(two.after, one.after);
    expect(update).to.be.greaterThan(1e-4);
    // float32 summation order is the only difference
    expect(d, `2 vs 1 thread ${d}, update ${update}`).to.be.lessThan(1e-6 + 1e-3 * update);
    expect(one.leaked).to.equal(0);
    expect(two.leaked).to.equal(0);
  });

  it('with batch statistics and dropout: deterministic run to run, different from 1 thread, tensors flat', async () => {
    const a = await trainOnce(2, { batchNorm: 'batch', dropout: 0.5 }, 4);
    const b = await trainOnce(2, { batchNorm: 'batch', dropout: 0.5 }, 4);
    const one = await trainOnce(1, { batchNorm: 'batch', dropout: 0.5 }, 4);
    expect(maxDiff(a.after, b.after), 'same seed, same run').to.equal(0);
    expect(a.stats).to.deep.equal(b.stats);
    // per-shard BatchNorm statistics and per-shard dropout masks: a different (equally valid) run
    expect(maxDiff(a.after, one.after)).to.be.greaterThan(1e-6);
    expect(a.fit.history[0].numTensors).to.equal(a.fit.history[1].numTensors);
    // the worker's own heap: flat from epoch to epoch too
    expect(a.workerMemory).to.have.length(4);
    expect(a.workerMemory[0]).to.have.length(1);
    expect(a.workerMemory[0][0].numTensors).to.be.greaterThan(0);
    for (const m of a.workerMemory) expect(m, 'worker tensors after each epoch').to.deep.equal(a.workerMemory[0]);
    expect(a.leaked).to.equal(0);
  });
});

describe('resolveThreads', () => {
  it('auto: one per core, at most 4, at least 8 images each, wasm only', () => {
    expect(resolveThreads('auto', 'wasm', 16, 2).threads).to.equal(2);
    expect(resolveThreads('auto', 'wasm', 16, 8).threads).to.equal(2); // 8 images each
    expect(resolveThreads('auto', 'wasm', 64, 8).threads).to.equal(4);
    expect(resolveThreads('auto', 'wasm', 8, 2).threads).to.equal(1);
    expect(resolveThreads('auto', 'wasm', 32, 1).threads).to.equal(1);
    expect(resolveThreads('auto', 'tensorflow', 64, 8).threads).to.equal(1);
    expect(resolveThreads('auto', 'cpu', 64, 8).threads).to.equal(1);
  });

  it('auto keeps one thread for a model under MIN_MULTIPLY_ADDS_FOR_THREADS per image; an explicit count still wins', () => {
    // mobilenet_v1_0.25 at 128 px (13.4M) did not pay for a second thread; at 160 px (20.9M) and 224 px (41M) it did
    const small = resolveThreads('auto', 'wasm', 16, 2, 13.4e6);
    expect(small.threads).to.equal(1);
    expect(small.reason).to.equal('1 (auto: 13M multiply-adds per image, under the 16M a second thread needs)');
    expect(resolveThreads('auto', 'wasm', 16, 2, 41e6).threads).to.equal(2);
    expect(resolveThreads('auto', 'wasm', 16, 2, 300e6).threads).to.equal(2);
    expect(resolveThreads('auto', 'wasm', 16, 2, MIN_MULTIPLY_ADDS_FOR_THREADS).threads).to.equal(2);
    expect(resolveThreads('auto', 'wasm', 16, 2, MIN_MULTIPLY_ADDS_FOR_THREADS - 1).threads).to.equal(1);
    expect(resolveThreads(2, 'wasm', 16, 2, 7.5e6).threads).to.equal(2);
    // the batch rule still applies to big models
    expect(resolveThreads('auto', 'wasm', 8, 2, 2e9).threads).to.equal(1);
  });

  it('an explicit count is capped by the batch and ignored off wasm, with the reason', () => {
    expect(resolveThreads(3, 'wasm', 16, 2).threads).to.equal(3);
    expect(resolveThreads(6, 'wasm', 4, 2)).to.deep.include({ threads: 4 });
    expect(resolveThreads(6, 'wasm', 4, 2).reason).to.match(/batch of 4/);
    const native = resolveThreads(2, 'tensorflow', 16, 8);
    expect(native.threads).to.equal(1);
    expect(native.reason).to.match(/wasm backend only/);
  });

  it('the config accepts auto or a positive integer and names the field otherwise', () => {
    expect(resolveJob({}).train.threads).to.equal('auto');
    expect(resolveJob({ train: { threads: 3 } }).train.threads).to.equal(3);
    for (const bad of [0, 1.5, 'many', 99]) {
      expect(() => resolveJob({ train: { threads: bad } } as never)).to.throw(ConfigError, /train\.threads/);
    }
  });
});
