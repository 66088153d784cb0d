/**
 * Batch and memory sanity before training (issue 13, items 6 and 7): a batch larger than the training set, or one
 * whose activations cannot fit, is settled before the learning rates are scaled; and the divergence guard survives
 * an epoch that is a single batch.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { prepare } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { ConfigError } from '../../src/errors';
import { fitBatch } from '../../src/train/batch-fit';
import { ACTIVATION_FACTOR, countModel, estimateMemory, largestBatch, memoryBudget, RUNTIME_BYTES, WASM_HEAP_BYTES } from '../../src/train/memory-estimate';
import { GuardSchema } from '../../src/train/guard';
import { Trainer } from '../../src/train/trainer';
import { MemorySource, dataContainer, prepareGuardJob } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';
import { tinyTrainerOptions } from '../helpers/trainer';

/** input 8×8×3 → conv 4 filters 3×3 same → flatten → dense 2 */
function tiny(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const c = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
  const f = tf.layers.flatten().apply(c) as tf.SymbolicTensor;
  const d = tf.layers.dense({ units: 2 }).apply(f) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: d });
}

describe('reliability: batch and memory sanity', function () {
  this.timeout(300000);

  it('the estimate matches a hand computation on a small model', () => {
    const c = countModel(tiny());
    // parameters: conv 3·3·3·4 + 4 = 112, dense 256·2 + 2 = 514
    expect(c.params).to.equal(626);
    expect(c.trainableParams).to.equal(626);
    // outputs per image: input 8·8·3 = 192, conv 8·8·4 = 256, flatten 256, dense 2
    expect(c.activationElements).to.equal(706);
    const e = estimateMemory(c, 4, 2);
    expect(e.weights).to.equal(4 * 626);
    expect(e.gradients).to.equal(4 * 626);
    expect(e.optimizer).to.equal(2 * 4 * 626);
    expect(e.total).to.equal(RUNTIME_BYTES + 4 * 626 * 4 + 4 * 706 * 4 * ACTIVATION_FACTOR);
    // the largest batch inside a budget inverts it
    expect(largestBatch(c, 2, e.total)).to.equal(4);
    expect(largestBatch(c, 2, e.total - 1)).to.equal(3);
  });

  it('on wasm the budget is never over the 4 GB heap', () => {
    expect(memoryBudget('wasm').bytes).to.be.at.most(WASM_HEAP_BYTES);
  });

  const counts = { params: 1e6, trainableParams: 1e6, activationElements: 1e6 };
  const big = { bytes: 1e15, limitedBy: 'test' };

  it('a batch larger than the training set is clamped to it, with a warning', () => {
    const f = fitBatch({ batch: 100000, accumulate: 1, trainImages: 9, model: counts, optimizerSlots: 1, size: 224, budget: big });
    expect(f.batch).to.equal(9);
    expect(f.warnings).to.deep.equal(['train.batch 100000 is larger than the 9 training images; using batch 9, and the learning rates are scaled for it']);
  });

  it('a batch that does not fit in memory is split and accumulated, keeping the effective batch', () => {
    // fixed part 300 MB + 12 MB; 12 MB per image: a budget of 3 images fits batch 2 of a split 8
    const budget = { bytes: estimateMemory(counts, 3, 1).total, limitedBy: 'the 4 GB wasm heap' };
    const f = fitBatch({ batch: 8, accumulate: 1, trainImages: 100, model: counts, optimizerSlots: 1, size: 1024, budget });
    expect([f.batch, f.accumulate]).to.deep.equal([2, 4]);
    expect(f.warnings[0]).to.match(
      /^size 1024 at batch 8 needs about .* over .*, the 4 GB wasm heap; using batch 2 × accumulate 4 \(the same effective batch 8\)$/,
    );
  });

  it('not even one image fits: refused with one line', () => {
    const budget = { bytes: estimateMemory(counts, 0, 1).total + 10, limitedBy: 'available memory' };
    expect(() => fitBatch({ batch: 8, accumulate: 1, trainImages: 100, model: counts, optimizerSlots: 1, size: 1024, budget })).to.throw(
      ConfigError,
      /^train\.batch: size 1024 at batch 8 needs about .*; not even one image fits: lower model\.size$/,
    );
  });

  it('`--batch 100000` on 9 images: linear scaling reads 9, not 100000 (×390)', async () => {
    const lines: string[] = [];
    const p = await prepare({ model: { size: 32 }, train: { batch: 100000, epochs: 1 }, backend: 'wasm', out: tmpDir() } as JobInput, {
      log: (l) => lines.push(l),
      container: dataContainer(() => new MemorySource(['a', 'b', 'c'], 3, 1)),
    });
    expect(p.job.train.batch).to.equal(9);
    expect(p.schedule.resolved.lr.effectiveBatch).to.equal(9);
    expect(lines).to.include('warning: train.batch 100000 is larger than the 9 training images; using batch 9, and the learning rates are scaled for it');
  });

  it('the divergence guard on a one-batch epoch: the rolled-back epoch is run again, not "no training image could be decoded"', async () => {
    const source = new MemorySource(['a', 'b'], 2, 1);
    const p = await prepareGuardJob(source, 4);
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const lines: string[] = [];
    const trainer = new Trainer(
      tinyTrainerOptions(p, {
        optimizer: opt,
        // step 1 (epoch 2's only batch) runs at a million times the rate: epoch 3's only batch sees the wreck
        lr: { factor: (step) => (step === 1 ? 1e6 : 1) },
        callbacks: [],
        epochs: 4,
        guard: GuardSchema.parse({ snapshotEvery: 1 }),
        log: (l) => lines.push(l),
      }),
    );
    const fit = await trainer.fit();
    opt.dispose();
    expect(fit.guardEvents.length, lines.join('\n')).to.be.at.least(1);
    expect(lines[0]).to.match(/^warning: divergence at epoch \d, step \d .*rolled back/);
    expect(fit.history).to.have.length(4);
    expect(fit.history.every((h) => Number.isFinite(h.train.loss))).to.equal(true);
  });
});
