import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { TrainingError } from '../../src/errors';
import { allFinite, DivergenceGuard, GuardSchema, median } from '../../src/train/guard';
import { Trainer } from '../../src/train/trainer';
import { tinyTrainerOptions } from '../helpers/trainer';
import { loadCheckpoint } from '../../src/train/checkpoint/store';
import { modelWeights } from '../../src/schedules/weights';
import type { WeightSnapshot } from '../../src/schedules/weights';
import { MemorySource, dataContainer, prepareGuardJob } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

const quiet = { log: () => undefined };
const allFiniteSnap = (s: WeightSnapshot) => s.every((w) => Array.from(w.values).every(Number.isFinite));
const sameSnap = (a: WeightSnapshot, b: WeightSnapshot) =>
  a.length === b.length && a.every((w, i) => w.name === b[i].name && Buffer.from(w.values.buffer).equals(Buffer.from(b[i].values.buffer)));

describe('divergence guard', function () {
  this.timeout(300000);

  describe('decisions', () => {
    const cfg = GuardSchema.parse({ spikeFactor: 10, window: 4, minHistory: 2, maxRetries: 2, lrCut: 0.1 });

    it('flags NaN/Inf losses and non-finite gradients at once, spikes only against a running median above chance', () => {
      const g = new DivergenceGuard(cfg, Math.log(5));
      expect(g.check(NaN, true)).to.match(/loss is NaN/);
      expect(g.check(Infinity, true)).to.match(/loss is Infinity/);
      expect(g.check(1, false)).to.match(/gradient/);
      // no history yet: a big loss is not a spike
      expect(g.check(100, true)).to.equal(null);
      g.accept(2);
      g.accept(3);
      // median 2.5: the threshold is 25
      expect(g.check(24, true)).to.equal(null);
      expect(g.check(26, true)).to.match(/above 10× its running median 2\.5/);
      // a median near 0 (a well-fit model): the threshold stays at 10 × chance (ln 5 = 1.609)
      for (const l of [0.01, 0.01, 0.01, 0.01]) g.accept(l);
      expect(g.check(15, true)).to.equal(null);
      expect(g.check(16.2, true)).to.match(/above 10× the chance-level loss 1\.609 \(running median 0\.01/);
      // the window keeps the last 4: the median follows the loss down
      expect(g.getState().recent).to.deep.equal([0.01, 0.01, 0.01, 0.01]);
      expect(median([3, 1, 2])).to.equal(2);
      expect(median([4, 1, 2, 3])).to.equal(2.5);
    });

    it('checks every gradient for NaN/Inf in one device-side reduction', () => {
      const ok = { a: tf.tensor1d([1, 2]), b: tf.tensor2d([[3]]) };
      const bad = { a: tf.tensor1d([1, 2]), b: tf.tensor2d([[NaN]]) };
      const inf = { a: tf.tensor1d([Infinity, 2]) };
      const n0 = tf.memory().numTensors;
      const flags = [ok, bad, inf, {}].map((g) => {
        const t = allFinite(g);
        const v = t.dataSync()[0];
        t.dispose();
        return v;
      });
      expect(flags).to.deep.equal([1, 0, 0, 1]);
      expect(tf.memory().numTensors).to.equal(n0);
      tf.dispose([ok.a, ok.b, bad.a, bad.b, inf.a]);
    });

    it('cuts the multiplier by lrCut per divergence and stops with a TrainingError after maxRetries', () => {
      const g = new DivergenceGuard(cfg, Math.log(2));
      g.accept(1);
      expect(g.diverged('loss is NaN', { step: 3, epoch: 0 }).multiplier).to.be.closeTo(0.1, 1e-15);
      expect(g.getState().recent).to.deep.equal([]);
      expect(g.diverged('loss is NaN', { step: 5, epoch: 0 }).multiplier).to.be.closeTo(0.01, 1e-15);
      expect(() => g.diverged('loss is NaN', { step: 9, epoch: 1 })).to.throw(TrainingError, /diverged at epoch 2, step 9 \(loss is NaN\) after 2 rate cut/);
      const copy = new DivergenceGuard(cfg, Math.log(2));
      copy.setState(g.getState());
      expect(copy.multiplier).to.equal(g.multiplier);
      expect(copy.events.map((e) => e.step)).to.deep.equal([3, 5]);
    });
  });

  it('recovers from a one-step rate blow-up: rolls back to the last good weights (every model weight, bit for bit), cuts the rate by 10, finishes', async () => {
    const source = new MemorySource(['a', 'b'], 8, 2);
    const p = await prepareGuardJob(source, 2);
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const store = modelWeights(p.network.train);
    let afterStep1: WeightSnapshot | null = null;
    let atRollback: WeightSnapshot | null = null;
    const factors: number[] = [];
    const lines: string[] = [];
    const trainer = new Trainer(
      tinyTrainerOptions(p, {
        optimizer: opt,
        // step 2 runs at a million times the rate: the weights it leaves are wrecked
        lr: { factor: (step) => (step === 2 ? 1e6 : 1) },
        callbacks: [
          {
            afterStep: (b) => {
              factors.push(b.lrs['g2/kernel'] / p.plan.groups.find((g) => g.name === 'g2/kernel')!.lr);
              if (b.step === 1) afterStep1 = store.read();
            },
          },
        ],
        flip: true,
        guard: GuardSchema.parse({ snapshotEvery: 1 }),
        log: (l) => {
          lines.push(l);
          atRollback ??= store.read();
        },
      }),
    );
    const fit = await trainer.fit();
    opt.dispose();
    expect(fit.guardEvents, JSON.stringify(fit.guardEvents) + lines.join('\n')).to.have.length(1);
    const ev = fit.guardEvents[0];
    expect(ev.step).to.equal(3);
    expect(ev.multiplier).to.be.closeTo(0.1, 1e-15);
    expect(lines[0]).to.match(/divergence at epoch 1, step 3 .*rolled back to the weights of step 2 .*×0\.1/);
    // the rollback point is the state right after step 1 (= before step 2), every weight and BN statistic, bit for bit
    expect(sameSnap(atRollback!, afterStep1!)).to.equal(true);
    // steps after the event run at a tenth of the schedule; the wrecked step itself is not counted as applied
    expect(factors.slice(0, 3)).to.deep.equal([1, 1, 1e6]);
    expect(factors.slice(3).every((f) => Math.abs(f - 0.1) < 1e-12)).to.equal(true);
    expect(allFiniteSnap(store.read())).to.equal(true);
    expect(fit.history).to.have.length(2);
    expect(fit.history[0].numTensors).to.equal(fit.history[1].numTensors);
    expect(Number.isFinite(fit.history[1].train.loss)).to.equal(true);
  });

  it('an absurd learning rate: stops with a clear TrainingError after the retries, and writes nothing from a diverged state', async () => {
    const out = tmpDir('lt-guard-');
    const source = new MemorySource(['a', 'b'], 12, 2);
    let err: unknown;
    try {
      await runJob(
        {
          model: { size: 32 },
          train: { epochs: 3, batch: 4 },
          groups: { strategy: 'stepped', top: 1e7 },
          backend: 'wasm',
          out,
          guard: { maxRetries: 2 },
        } as JobInput,
        { ...quiet, container: dataContainer(() => source) },
      );
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TrainingError);
    expect((err as Error).message).to.match(
      /^training diverged at epoch \d+, step \d+ \(.+\) after 2 rate cut\(s\) to ×0\.0100 of the scheduled rates; stopped with nothing written from the diverged state/,
    );
    expect(fs.existsSync(path.join(out, 'model'))).to.equal(false);
    expect(fs.existsSync(path.join(out, 'summary.json'))).to.equal(false);
    // any checkpoint that exists was written from rolled-back, finite weights
    const ckDir = path.join(out, 'checkpoints');
    for (const n of fs.existsSync(ckDir) ? fs.readdirSync(ckDir) : []) {
      const ck = loadCheckpoint(path.join(ckDir, n));
      expect(allFiniteSnap(ck.weights), n).to.equal(true);
    }
  });
});
