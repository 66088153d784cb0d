import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import YAML from 'yaml';
import sharp from 'sharp';
import { search } from '../../src/tune/search';
import { resolveJob } from '../../src/config/load';
import { ConfigError } from '../../src/errors';
import { tmpDir } from '../helpers/images';
import { MemorySource, tinyJob, withData } from './memory-source';

describe('search (32 px MobileNet, in-memory data)', function () {
  this.timeout(240000);
  const small = { lr: { min: 1e-3, max: 1 }, weightDecay: { min: 1e-6, max: 1e-3 }, oneMinusMomentum: { min: 0.01, max: 0.1 }, factor: { min: 3, max: 10 } };

  it('runs 4 random trials with 2-fold CV, writes the table, the best job file and plots; tensors flat per trial; a rerun resumes', async () => {
    const out = tmpDir();
    const src = new MemorySource({ classes: 3, perClass: 4, valPerClass: 2 });
    const tensorsAtTrialEnd: number[] = [];
    const lines: string[] = [];
    const log = (s: string) => {
      lines.push(s);
      if (s.startsWith('trial ')) tensorsAtTrialEnd.push(tf.memory().numTensors);
    };
    const base = tinyJob(path.join(out, 'job'), { train: { epochs: 2 } });
    const opts = { ...withData(src), log, out, search: { trials: 4, folds: 2, seed: 3, space: small, medianMinTrials: 2 } };
    const r = await search(base, opts);
    expect(r.trials).to.have.length(4);
    expect(tensorsAtTrialEnd).to.have.length(4);
    expect(new Set(tensorsAtTrialEnd).size, `numTensors after each trial: ${tensorsAtTrialEnd}`).to.equal(1);
    for (const t of r.trials) {
      expect(['done', 'pruned', 'diverged']).to.include(t.status);
      if (t.status === 'done') {
        expect(t.foldScores).to.have.length(2);
        expect(t.score).to.be.closeTo((t.foldScores[0] + t.foldScores[1]) / 2, 1e-12);
        expect(t.curve).to.have.length(2);
      }
    }
    expect(r.best).to.not.equal(null);
    expect(r.best!.score).to.equal(Math.max(...r.ranking.map((t) => t.score!)));
    const csv = fs.readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).to.equal('trial,status,lr_effective,weightDecay,momentum,factor,score,score_std,val_accuracy,val_loss,folds,epochs,seconds');
    expect(csv).to.have.length(5);
    // the best config is a ready job file carrying the best trial's values
    const best = YAML.parse(fs.readFileSync(r.files.best, 'utf8'));
    const job = resolveJob(best);
    // lr is searched as the effective rate: the job carries it at the reference batch (batch 6 of 256)
    expect(job.groups.strategy === 'stepped' && job.groups.top).to.be.closeTo(r.best!.params.lr! / (6 / 256), 1e-12);
    expect(job.optimizer.weightDecay).to.equal(r.best!.params.weightDecay);
    expect(job.optimizer.momentum).to.equal(r.best!.params.momentum);
    for (const p of ['lr', 'weightDecay', 'momentum', 'factor']) {
      expect((await sharp(path.join(out, `scatter_${p}.png`)).metadata()).format).to.equal('png');
    }
    // rerun: every trial is reused, nothing decoded or trained again
    const decoded = src.decoded;
    const again = await search(base, { ...opts, log: () => {} });
    expect(again.resumed).to.equal(4);
    expect(src.decoded).to.equal(decoded);
    expect(again.best!.id).to.equal(r.best!.id);
    // asking for more trials runs only the new ones (trial i does not depend on the count)
    const more = await search(base, { ...opts, log: () => {}, search: { ...opts.search, trials: 5 } });
    expect(more.resumed).to.equal(4);
    expect(more.trials).to.have.length(5);
  });

  it('shards (what --workers runs) split the trials and share them through the trial files', async () => {
    const out = tmpDir();
    const src = new MemorySource({ classes: 2, perClass: 3, valPerClass: 1 });
    const opts = { ...withData(src), out, search: { trials: 3, space: small, medianStop: false } };
    const base = tinyJob(path.join(out, 'j'));
    const a = await search(base, { ...opts, shard: { index: 0, count: 2 } });
    expect(a.trials.map((t) => t.id)).to.deep.equal([0, 2]);
    expect(a.files).to.deep.equal({}); // a worker writes no summary
    const b = await search(base, { ...opts, shard: { index: 1, count: 2 } });
    expect(b.trials.map((t) => t.id)).to.deep.equal([0, 1, 2]);
    const all = await search(base, opts);
    expect(all.resumed).to.equal(3);
    expect(fs.existsSync(all.files.csv)).to.equal(true);
  });

  it('a changed base job invalidates the stored trials', async () => {
    const out = tmpDir();
    const src = new MemorySource({ classes: 2, perClass: 3, valPerClass: 1 });
    const opts = { ...withData(src), out, search: { trials: 1, space: small } };
    await search(tinyJob(path.join(out, 'j')), opts);
    const r = await search(tinyJob(path.join(out, 'j'), { model: { dropout: 0.5 } }), opts);
    expect(r.resumed).to.equal(0);
  });

  it('bad search input is a ConfigError', async () => {
    const out = tmpDir();
    const opts = { ...withData(new MemorySource()), out };
    let err: unknown;
    try {
      await search(tinyJob(out), { ...opts, search: { space: { lr: { min: 1, max: 0.1 } } } });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.match(/tune\.search\.space\.lr\.min: min 1 is greater than max 0\.1/);
    err = undefined;
    try {
      await search(tinyJob(out, { groups: { strategy: 'geometric' } }), { ...opts, search: { trials: 1 } });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
  });
});
