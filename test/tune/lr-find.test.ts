import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { prepare } from '../../src/job';
import { lrRangeTest, lrFind } from '../../src/tune/lr-find';
import { disposeNetwork } from '../../src/tune/parts';
import { modelWeights } from '../../src/schedules/weights';
import type { BatchInfo, Callback } from '../../src/train/callbacks';
import { ConfigError } from '../../src/errors';
import { tmpDir } from '../helpers/images';
import { MemorySource, tinyJob, withData } from './memory-source';

describe('lr-find on the shipped MobileNet (32 px, in-memory data)', function () {
  this.timeout(120000);

  it('restores weights, BatchNorm moving statistics and optimizer state bit for bit; tensors flat', async () => {
    const out = tmpDir();
    const p = await prepare(tinyJob(out), withData(new MemorySource()));
    try {
      // give the optimizer real momentum slots first, so "restored" means something
      const opt = p.stages.optimizer.create(p.plan.groups, p.job);
      const { grads } = tf.tidy(() => {
        const x = tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 1);
        const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3);
        const r = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, p.network.train.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          Object.values(p.trainableVars),
        );
        return { grads: r.grads };
      });
      const byOurName = Object.fromEntries(
        Object.entries(p.trainableVars)
          .filter(([, v]) => grads[v.name])
          .map(([k, v]) => [k, grads[v.name]]),
      );
      opt.step(byOurName, p.trainableVars, 1e-3);
      tf.dispose(grads);
      const before = modelWeights(p.network.train).read();
      const stateBefore = opt.getState();
      const tensors0 = tf.memory().numTensors;
      // prove the sweep really moves BN statistics (else the check below could not fail)
      const mm = p.network.train.weights.find((w) => /moving_mean/.test(w.originalName))!;
      const mm0 = (mm.read().dataSync() as Float32Array).slice();
      let movedDuring = false;
      const probe: Callback = {
        afterStep(b: BatchInfo) {
          if (b.step === 5) movedDuring = !(mm.read().dataSync() as Float32Array).every((v, i) => v === mm0[i]);
        },
      };
      const r = await lrRangeTest(p, { steps: 12 }, { optimizer: opt, callbacks: [probe] });
      expect(r.losses.length).to.be.greaterThan(5);
      expect(movedDuring, 'BN moving mean changed during the sweep').to.equal(true);
      const after = modelWeights(p.network.train).read();
      expect(after.length).to.equal(before.length);
      expect(before.some((w) => /moving_variance/.test(w.name))).to.equal(true);
      for (let i = 0; i < before.length; i++) {
        expect(after[i].name).to.equal(before[i].name);
        expect(Buffer.from(after[i].values.buffer).equals(Buffer.from(before[i].values.buffer)), before[i].name).to.equal(true);
      }
      const stateAfter = opt.getState();
      expect(stateAfter.step).to.equal(stateBefore.step);
      expect(Object.keys(stateAfter.vars).sort()).to.deep.equal(Object.keys(stateBefore.vars).sort());
      for (const [name, v] of Object.entries(stateBefore.vars)) {
        for (const [slot, s] of Object.entries(v.slots)) {
          expect(Buffer.from(stateAfter.vars[name].slots[slot].values.buffer).equals(Buffer.from(s.values.buffer)), `${name}/${slot}`).to.equal(true);
        }
      }
      expect(tf.memory().numTensors).to.equal(tensors0);
      opt.dispose();
    } finally {
      disposeNetwork(p.network);
    }
  });

  it('sweeps all groups together, reads a suggestion, writes lr_find.json and a PNG', async () => {
    const out = tmpDir();
    // (numTensors is checked around lrRangeTest above: loading a model leaks the cut-off classifier's 2
    // tensors in the model loader, outside the sweep)
    const r = await lrFind(tinyJob(out), { ...withData(new MemorySource({ perClass: 8 })), lrFind: { start: 1e-5, end: 100, steps: 40 } });
    // the other groups keep their ratio to the top group (stepped 10x, biases 2x)
    expect(r.groupRatios['g2/kernel']).to.equal(1);
    expect(r.groupRatios['g1/kernel']).to.be.closeTo(0.1, 1e-12);
    expect(r.groupRatios['g2/bias']).to.be.closeTo(2, 1e-12);
    expect(r.lrs[0]).to.be.closeTo(1e-5, 1e-18);
    for (let i = 1; i < r.lrs.length; i++) expect(r.lrs[i] / r.lrs[i - 1]).to.be.closeTo((100 / 1e-5) ** (1 / 39), 1e-9);
    // 100 at batch 6 blows any network up: the sweep stops early on 4x the minimum (or NaN)
    expect(r.stoppedBy).to.not.equal('end');
    expect(r.losses.length).to.be.lessThan(40);
    expect(r.suggestion.lr, r.suggestion.reason).to.be.a('number');
    // the suggestion lies at or before the minimum of the curve it is read from (the centred mean, within
    // fastai's trimmed stretch) and config units undo the batch scaling (6/256)
    const lo = Math.floor(40 / 10);
    let iMin = lo;
    for (let i = lo; i < r.centred.length - 5; i++) if (r.centred[i] < r.centred[iMin]) iMin = i;
    expect(r.suggestion.index!).to.be.within(lo, iMin);
    expect(r.lrs[r.suggestion.index!]).to.equal(r.suggestion.lr);
    expect(r.scale).to.be.closeTo(6 / 256, 1e-12);
    expect(r.configLr! * r.scale).to.be.closeTo(r.suggestion.lr!, 1e-15);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'lr_find.json'), 'utf8'));
    expect(saved.suggestion.lr).to.equal(r.suggestion.lr);
    const meta = await sharp(path.join(out, 'lr_find.png')).metadata();
    expect(meta.format).to.equal('png');
    expect(meta.width).to.be.greaterThan(300);
  });

  it('reports plainly that it cannot decrease the loss (rates far too small), with no suggestion', async () => {
    const out = tmpDir();
    // identical images per class, one batch = the whole set, no dropout or flips: every step sees the same
    // loss up to float summation order, and rates of 1e-12 cannot move it (one thread: on two, BatchNorm's
    // per-shard statistics would follow the shuffle)
    const r = await lrFind(tinyJob(out, { model: { dropout: 0 }, data: { flip: false }, train: { batch: 18, threads: 1 } }), {
      ...withData(new MemorySource({ noise: 0 })),
      lrFind: { start: 1e-12, end: 1e-10, steps: 20 },
    });
    expect(r.stoppedBy).to.equal('end');
    expect(r.suggestion.lr).to.equal(null);
    expect(r.suggestion.reason).to.match(/never fell/);
    expect(r.valley.lr).to.equal(null);
    expect(r.configLr).to.equal(null);
    const png = path.join(out, 'lr_find.png');
    expect(fs.existsSync(png)).to.equal(true);
  });

  it('a loss that turns NaN ends the sweep as "nan", and the weights still come back', async () => {
    const p = await prepare(tinyJob(tmpDir()), withData(new MemorySource()));
    try {
      const before = modelWeights(p.network.train).read();
      const n0 = tf.memory().numTensors;
      // the 4x rule switched off: only a non-finite loss can stop this sweep to 1e12
      const r = await lrRangeTest(p, { start: 1e-2, end: 1e12, steps: 30, stopFactor: 1e300 });
      expect(r.stoppedBy).to.equal('nan');
      expect(Number.isFinite(r.losses[r.losses.length - 1])).to.equal(false);
      expect(r.losses.length).to.be.lessThan(30);
      const after = modelWeights(p.network.train).read();
      for (let i = 0; i < before.length; i++) expect(Buffer.from(after[i].values.buffer).equals(Buffer.from(before[i].values.buffer))).to.equal(true);
      expect(tf.memory().numTensors).to.equal(n0);
    } finally {
      disposeNetwork(p.network);
    }
  });

  it("reads the job's tune.lrFind section; the call's settings override it", async () => {
    const p = await prepare(tinyJob(tmpDir(), { tune: { lrFind: { steps: 8, start: 1e-6, end: 1e-3 } } }), withData(new MemorySource()));
    try {
      const a = await lrRangeTest(p);
      expect(a.plannedSteps).to.equal(8);
      expect(a.losses).to.have.length(8);
      expect(a.lrs[7]).to.be.closeTo(1e-3, 1e-15);
      const b = await lrRangeTest(p, { steps: 6 });
      expect(b.plannedSteps).to.equal(6);
      expect(b.config.start).to.equal(1e-6);
    } finally {
      disposeNetwork(p.network);
    }
  });

  it('bad sweep settings are ConfigErrors naming the field', async () => {
    const p = await prepare(tinyJob(tmpDir()), withData(new MemorySource()));
    try {
      let err: unknown;
      try {
        await lrRangeTest(p, { start: 1, end: 0.1 });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).path).to.equal('tune.lrFind.end');
    } finally {
      disposeNetwork(p.network);
    }
  });
});
