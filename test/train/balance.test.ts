import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { JobInput } from '../../src/config/schema';
import { preprocessBatch } from '../../src/data/preprocess';
import type { Example } from '../../src/data/source';
import { prepare, runJob } from '../../src/job';
import type { Callback } from '../../src/train/callbacks';
import { tmpDir } from '../helpers/images';
import { dataContainer, MemorySource } from '../helpers/memory-source';

/** 6 images of "a", 2 of "b", 1 of "c": 6 to 1, weights 9/18, 9/6, 9/3. */
function imbalanced(): MemorySource {
  const s = new MemorySource(['a', 'b', 'c'], 6, 1);
  const keep = (e: Example) => e.label === 0 || (e.label === 1 && Number(e.key.split(':')[2]) < 2) || (e.label === 2 && e.key.endsWith(':0'));
  (s as unknown as { train: Example[] }).train = s.train.filter(keep);
  return s;
}

function ce(z: number[], q: number[]): number {
  const max = Math.max(...z);
  const lse = max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
  return -q.reduce((s, qk, k) => s + qk * (z[k] - lse), 0);
}

class Crash extends Error {}

describe('data.balance in training', function () {
  this.timeout(300000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('weights: the first-step loss is the class-weighted, label-smoothed cross-entropy of the logits; the run warns of nothing', async () => {
    const source = imbalanced();
    const logs: string[] = [];
    const p = await prepare(
      {
        model: { size: 32, batchNorm: 'frozen', dropout: 0 },
        data: { flip: false, balance: 'weights' },
        loss: { labelSmoothing: 0.1 },
        train: { epochs: 1, batch: 9, seed: 5 },
        backend: 'cpu',
        out: tmpDir(),
      } as JobInput,
      { log: (l) => void logs.push(l), container: dataContainer(() => source) },
    );
    expect(logs.join('\n')).to.not.contain('imbalanced');
    const px = new Uint8Array(9 * 32 * 32 * 3);
    for (let i = 0; i < 9; i++) px.set(await source.pixels(source.train[i], 32), i * 32 * 32 * 3);
    const logits = tf.tidy(() => (p.network.train.predict(preprocessBatch(px, 9, 32, p.network.backbone.preprocess)) as tf.Tensor).arraySync()) as number[][];
    const w = [0.5, 1.5, 3];
    const q = (l: number) => [0, 1, 2].map((k) => (k === l ? 0.9 : 0) + 0.1 / 3);
    const expected = logits.reduce((s, z, i) => s + w[source.train[i].label] * ce(z, q(source.train[i].label)), 0) / 9;
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const losses: number[] = [];
    const t = p.stages.trainer.create(p, {
      optimizer: opt,
      lr: { factor: () => 0 },
      callbacks: [{ afterStep: (b) => void losses.push(b.loss) }],
      spillDir: null,
    });
    const n0 = tf.memory().numTensors;
    await t.fit();
    opt.dispose();
    expect(tf.memory().numTensors).to.equal(n0);
    expect(losses).to.have.length(1);
    expect(losses[0]).to.be.closeTo(expected, 1e-5);
  });

  it('the run log warns once when a class outnumbers another more than 3 to 1, naming both and data.balance', async () => {
    const logs: string[] = [];
    await prepare({ model: { size: 32 }, train: { epochs: 1, batch: 9 }, backend: 'cpu', out: tmpDir() } as JobInput, {
      log: (l) => void logs.push(l),
      container: dataContainer(imbalanced),
    });
    const lines = logs.filter((l) => l.includes('imbalanced'));
    expect(lines).to.deep.equal([
      'warning: classes are imbalanced: "a" has 6 training images and "c" 1 (6.0 to 1); consider data.balance: weights (class-weighted loss) or sampler (balanced sampling)',
    ]);
  });

  it('sampler: a crashed run resumed from its checkpoint ends with the same bits; tensors stay flat across epochs', async () => {
    const job = (out: string): JobInput =>
      ({
        model: { size: 32 },
        data: { balance: 'sampler' },
        train: { epochs: 3, batch: 4, seed: 5 },
        backend: 'wasm',
        out,
        checkpoint: { everyEpochs: 1 },
      }) as JobInput;
    const a = tmpDir('lt-bal-a-');
    const full = await runJob(job(a), { log: () => undefined, container: dataContainer(imbalanced) });
    const counts = full.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);
    const b = tmpDir('lt-bal-b-');
    const crash: Callback = {
      afterStep(x) {
        if (x.step === 4) throw new Crash('simulated crash');
      },
    };
    await runJob(job(b), { log: () => undefined, container: dataContainer(imbalanced), callbacks: [crash] }).then(
      () => expect.fail('the crash callback should have stopped the run'),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    await runJob({}, { log: () => undefined, resume: b, container: dataContainer(imbalanced) });
    const bytes = (d: string) => fs.readFileSync(path.join(d, 'model/weights.bin'));
    expect(bytes(b).equals(bytes(a))).to.equal(true);
    // and the sampler changed the run: the same job without it ends elsewhere
    const c = tmpDir('lt-bal-c-');
    await runJob({ ...job(c), data: { balance: 'none' } } as JobInput, { log: () => undefined, container: dataContainer(imbalanced) });
    expect(bytes(c).equals(bytes(a))).to.equal(false);
  });
});
