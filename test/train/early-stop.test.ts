import { expect } from 'chai';
import * as path from 'node:path';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { loadCheckpoint } from '../../src/train/checkpoint/store';
import { modelWeights } from '../../src/schedules/weights';
import type { WeightSnapshot } from '../../src/schedules/weights';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

const same = (a: WeightSnapshot, b: WeightSnapshot) =>
  a.length === b.length && a.every((w, i) => w.name === b[i].name && Buffer.from(w.values.buffer).equals(Buffer.from(b[i].values.buffer)));

describe('early stopping and the plateau stop, wired from the job config', function () {
  this.timeout(300000);
  const source = () => new MemorySource(['a', 'b'], 6, 2);
  const base = (out: string) => ({ model: { size: 32 }, train: { epochs: 6, batch: 4 }, backend: 'wasm', out });

  it('earlyStopping stops the run, prints why, and restoreBestWeights exports the best epoch (= checkpoints/best)', async () => {
    const out = tmpDir('lt-es-');
    const lines: string[] = [];
    // minDelta 100: nothing after the first epoch counts as an improvement
    const res = await runJob({ ...base(out), earlyStopping: { monitor: 'val_loss', patience: 2, minDelta: 100, restoreBestWeights: true } } as JobInput, {
      log: (l) => lines.push(l),
      container: dataContainer(source),
    });
    expect(res.fit.history).to.have.length(3);
    expect(res.fit.stoppedEarly).to.match(/^early stopping: val_loss has not improved by more than 100 for 2 epochs \(best [\d.]+ at epoch 0\)$/);
    expect(lines).to.include(`stopped after epoch 3: ${res.fit.stoppedEarly}`);
    expect(lines).to.include('early stopping: restored the weights of epoch 1, the best one');
    const best = loadCheckpoint(path.join(out, 'checkpoints', 'best'));
    const last = loadCheckpoint(path.join(out, 'checkpoints', 'last'));
    expect(best.trainer.epoch).to.equal(1);
    expect(last.trainer.epoch).to.equal(3);
    const final = modelWeights(res.network.train).read();
    expect(same(final, best.weights)).to.equal(true);
    expect(same(final, last.weights)).to.equal(false);

    // resuming a run that stopped does not train further
    const again = await runJob({}, { log: () => undefined, resume: out, container: dataContainer(source) });
    expect(again.fit.history).to.have.length(3);
    expect(again.fit.stoppedEarly).to.equal(res.fit.stoppedEarly);
    expect(same(modelWeights(again.network.train).read(), best.weights)).to.equal(true);
  });

  it("the plateau stage's stop (maxReductions used up) ends training after that epoch and the reason is printed", async () => {
    const out = tmpDir('lt-plateau-');
    const lines: string[] = [];
    const res = await runJob(
      { ...base(out), plateau: { monitor: 'val_loss', patience: 1, threshold: 100, thresholdMode: 'abs', maxReductions: 0 } } as JobInput,
      { log: (l) => lines.push(l), container: dataContainer(source) },
    );
    expect(res.fit.history).to.have.length(3);
    expect(res.fit.stoppedEarly).to.equal('plateau: val_loss has not improved for 2 epochs and all 0 reductions are used');
    expect(lines).to.include(`stopped after epoch 3: ${res.fit.stoppedEarly}`);
    const counts = res.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors ${counts}`).to.equal(1);
  });

  it('without validation images the val_* monitors read the training metrics, and the run says so', async () => {
    const lines: string[] = [];
    const res = await runJob({ ...base(tmpDir('lt-noval-')), train: { epochs: 2, batch: 4 }, plateau: {}, earlyStopping: { patience: 5 } } as JobInput, {
      log: (l) => lines.push(l),
      container: dataContainer(() => new MemorySource(['a', 'b'], 6, 0)),
    });
    expect(res.fit.history).to.have.length(2);
    expect(res.fit.history[0].val).to.equal(undefined);
    expect(lines).to.include('warning: no validation images: plateau.monitor "val_loss", earlyStopping.monitor "val_loss" read the training metrics instead');
  });
});
