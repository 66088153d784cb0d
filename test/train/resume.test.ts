import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { ConfigError } from '../../src/errors';
import { modelWeights } from '../../src/schedules/weights';
import { planResume } from '../../src/train/checkpoint/resume';
import type { Callback } from '../../src/train/callbacks';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';
import { writeChecksums } from '../../src/io/checksum';

const quiet = { log: () => undefined };

class Crash extends Error {}

/** Dies inside a step, the way a killed process would stop: mid-epoch, after the last checkpoint. */
function crashAt(step: number): Callback {
  return {
    afterStep(b) {
      if (b.step === step) throw new Crash(`simulated crash at step ${step}`);
    },
  };
}

const bytes = (f: string) => fs.readFileSync(f);

describe('exact resume', function () {
  this.timeout(300000);
  const source = () => new MemorySource(['a', 'b'], 6, 2);
  // 12 train images, batch 4: 3 steps per epoch. Everything stateful is on: dropout, flips, BatchNorm batch
  // statistics, momentum, a plateau stage that reduces, early stopping with restoreBestWeights, the guard.
  const job = (out: string): JobInput =>
    ({
      model: { size: 32 },
      train: { epochs: 4, batch: 4, seed: 5 },
      backend: 'wasm',
      out,
      plateau: { monitor: 'val_accuracy', mode: 'max', patience: 0, factor: 0.5, stopAtFraction: null },
      earlyStopping: { monitor: 'val_loss', patience: 10, restoreBestWeights: true },
      checkpoint: { everyEpochs: 2 },
    }) as JobInput;

  it('a run killed in epoch 3 and resumed from its epoch-2 checkpoint ends with the same weights and optimizer state, bit for bit', async () => {
    const a = tmpDir('lt-resume-a-');
    const full = await runJob(job(a), { ...quiet, container: dataContainer(source) });
    const counts = full.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);

    const b = tmpDir('lt-resume-b-');
    let err: unknown;
    try {
      await runJob(job(b), { ...quiet, container: dataContainer(source), callbacks: [crashAt(7)] });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(Crash);
    const lastState = JSON.parse(fs.readFileSync(path.join(b, 'checkpoints', 'last', 'state.json'), 'utf8'));
    expect(lastState.trainer.epoch).to.equal(2);
    expect(lastState.trainer.step).to.equal(6);
    // the plateau stage had already cut the rate, so its restored state matters
    expect(lastState.schedule.plateau.multiplier).to.be.lessThan(1);
    expect(fs.existsSync(path.join(b, 'model'))).to.equal(false);

    const resumed = await runJob({}, { ...quiet, resume: b, container: dataContainer(source) });
    expect(resumed.resumedFrom).to.equal(path.join(b, 'checkpoints', 'last'));
    expect(resumed.fit.history.map((h) => h.epoch)).to.deep.equal([0, 1, 2, 3]);
    expect(Math.min(...Object.values(full.fit.history[3].lrs))).to.be.lessThan(Math.min(...Object.values(full.fit.history[0].lrs)));

    // the state at the end of the last epoch (before restoreBestWeights): weights incl. BN statistics, optimizer slots
    for (const f of ['weights.bin', 'optimizer.bin']) {
      expect(bytes(path.join(b, 'checkpoints', 'last', f)).equals(bytes(path.join(a, 'checkpoints', 'last', f))), f).to.equal(true);
    }
    const sa = JSON.parse(fs.readFileSync(path.join(a, 'checkpoints', 'last', 'state.json'), 'utf8'));
    const sb = JSON.parse(fs.readFileSync(path.join(b, 'checkpoints', 'last', 'state.json'), 'utf8'));
    for (const k of ['schedule', 'earlyStopping', 'best']) expect(sb[k], k).to.deep.equal(sa[k]);
    expect(sb.trainer.rng).to.equal(sa.trainer.rng);
    expect(sb.trainer.guard).to.deep.equal(sa.trainer.guard);
    // and the final model (the best epoch's weights put back), every weight, every bit
    const wa = modelWeights(full.network.train).read();
    const wb = modelWeights(resumed.network.train).read();
    expect(wb.map((w) => w.name)).to.deep.equal(wa.map((w) => w.name));
    expect(wa.some((w) => /moving_mean/.test(w.name))).to.equal(true);
    wa.forEach((w, i) => expect(Buffer.from(wb[i].values.buffer).equals(Buffer.from(w.values.buffer)), w.name).to.equal(true));
    expect(bytes(path.join(b, 'model', 'weights.bin')).equals(bytes(path.join(a, 'model', 'weights.bin')))).to.equal(true);
  });

  it('is exact with a frozen, cached prefix too: the resumed run recomputes the cache from other batches and gets the same bits', async () => {
    const frozen = (out: string) =>
      ({ ...job(out), groups: { strategy: 'stepped', rules: [{ match: '^conv(1|_(dw|pw)_([1-9]|1[01]))(_bn)?$', freeze: true }] } }) as JobInput;
    const a = tmpDir('lt-resume-fa-');
    const full = await runJob(frozen(a), { ...quiet, container: dataContainer(source) });
    expect(full.cachedStages).to.be.greaterThan(0);
    const b = tmpDir('lt-resume-fb-');
    await runJob(frozen(b), { ...quiet, container: dataContainer(source), callbacks: [crashAt(7)] }).catch((e) => expect(e).to.be.instanceOf(Crash));
    await runJob({}, { ...quiet, resume: b, container: dataContainer(source) });
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(bytes(path.join(b, f)).equals(bytes(path.join(a, f))), f).to.equal(true);
    }
  });

  it('an interrupted run is not the same as a fresh one from the checkpoint weights alone (the test can fail)', async () => {
    // resuming with another data-order seed changes the result: so bit-equality above is not vacuous
    const a = tmpDir('lt-resume-c-');
    await runJob({ ...job(a), train: { epochs: 2, batch: 4, seed: 5 } } as JobInput, { ...quiet, container: dataContainer(source) });
    const b = tmpDir('lt-resume-d-');
    await runJob({ ...job(b), train: { epochs: 2, batch: 4, seed: 5 } } as JobInput, {
      ...quiet,
      container: dataContainer(source),
      callbacks: [crashAt(4)],
    }).catch(() => undefined);
    // tamper with the saved RNG state, as a resume that forgot the data order would
    const stateFile = path.join(b, 'checkpoints', 'last', 'state.json');
    const s = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    s.trainer.rng = (s.trainer.rng + 1) >>> 0;
    fs.writeFileSync(stateFile, JSON.stringify(s));
    // a consistent edit: the checksum list is brought up to date, or the resume would refuse the file
    writeChecksums(path.dirname(stateFile));
    await runJob({}, { ...quiet, resume: b, container: dataContainer(source) });
    expect(bytes(path.join(b, 'checkpoints', 'last', 'weights.bin')).equals(bytes(path.join(a, 'checkpoints', 'last', 'weights.bin')))).to.equal(false);
  });

  it('writes last, best and every-N checkpoints atomically (no temporary folders left)', async () => {
    const out = tmpDir('lt-ck-');
    await runJob({ ...job(out), train: { epochs: 4, batch: 4, seed: 5 } } as JobInput, { ...quiet, container: dataContainer(source) });
    const names = fs.readdirSync(path.join(out, 'checkpoints')).sort();
    expect(names).to.deep.equal(['best', 'epoch-0002', 'epoch-0004', 'last']);
    for (const n of names)
      expect(fs.readdirSync(path.join(out, 'checkpoints', n)).sort()).to.deep.equal(['checksums.sha256', 'optimizer.bin', 'state.json', 'weights.bin']);
    const best = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'best', 'state.json'), 'utf8'));
    const last = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'state.json'), 'utf8'));
    // best is the epoch early stopping considers best, by val_loss
    const hist = last.trainer.history as Array<{ epoch: number; val: { loss: number } }>;
    const bestEpoch = hist.reduce((b, h) => (h.val.loss < hist[b].val.loss ? h.epoch : b), 0);
    expect(best.trainer.epoch).to.equal(bestEpoch + 1);
    expect(last.earlyStopping.bestEpoch).to.equal(bestEpoch);
  });

  it('refuses to resume with a changed config, naming each changed field, unless forced', async () => {
    const out = tmpDir('lt-resume-cfg-');
    await runJob({ ...job(out), train: { epochs: 1, batch: 4, seed: 5 } } as JobInput, { ...quiet, container: dataContainer(source) });
    let err: unknown;
    try {
      planResume(out, { train: { epochs: 3 }, optimizer: { momentum: 0.5 } }, undefined, false);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.match(/^resume: the config differs/);
    expect((err as Error).message).to.contain('train.epochs: 1 → 3');
    expect((err as Error).message).to.contain('optimizer.momentum: (unset) → 0.5');
    const forced = planResume(out, { train: { epochs: 3 } }, undefined, true);
    expect(forced.changes.map((c) => c.path)).to.deep.equal(['train.epochs']);
    expect(forced.job.train.epochs).to.equal(3);
    // the same config (or none) is fine
    expect(planResume(out, { train: { epochs: 1 } }, undefined, false).changes).to.deep.equal([]);
    expect(() => planResume(out, { out: tmpDir() }, undefined, false)).to.throw(ConfigError, /^out: /);
    expect(() => planResume(tmpDir(), {}, undefined, false)).to.throw(ConfigError, /no checkpoint to resume from/);
  });
});
