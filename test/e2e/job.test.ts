import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runJob, prepare } from '../../src/job';
import { createContainer, TOKENS, type DataSourceFactory } from '../../src/container';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';
import { Trainer } from '../../src/train/trainer';
import { tinyTrainerOptions } from '../helpers/trainer';

const quiet = { log: () => undefined };
const ROOT = path.join(__dirname, '..', '..');

describe('end-to-end job', function () {
  this.timeout(300000);

  it('fine-tunes the shipped MobileNet on the shipped photos, keeps numTensors flat, and exports', async () => {
    const out = tmpDir('lt-e2e-');
    const res = await runJob(
      { data: { dir: path.join(ROOT, 'data', 'flowers') }, model: { size: 64 }, train: { epochs: 3, batch: 16 }, backend: 'wasm', out },
      quiet,
    );
    expect(res.backend.chosen).to.equal('wasm');
    expect(res.fit.history).to.have.length(3);
    const counts = res.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);
    expect(res.val!.accuracy).to.be.within(0, 1);
    expect(fs.readdirSync(res.exportDir).sort()).to.deep.equal(['checksums.sha256', 'metadata.json', 'model.json', 'weights.bin']);
    const lines = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'epoch')).to.have.length(3);
    expect(lines.filter((l) => l.type === 'step')).to.have.length(3 * Math.ceil(120 / 16));
    // layer-wise: each step's logged rates keep the 1:10:100 ratio, scaled to batch 16
    const step = lines.find((l) => l.type === 'step');
    expect(step.lrs['g0/kernel']).to.be.closeTo((0.001 * 16) / 256, 1e-12);
    expect(step.lrs['g2/kernel']).to.be.closeTo((0.1 * 16) / 256, 1e-12);
    expect(step.lrs['g2/bias']).to.be.closeTo((0.2 * 16) / 256, 1e-12);
  });

  it('runs unchanged with the data stage replaced by an in-memory source (inversify binding)', async () => {
    const container = createContainer();
    const source = new MemorySource(['red', 'green', 'blue'], 8, 2, ['broken.jpg']);
    container.rebind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => source });
    const out = tmpDir('lt-mem-');
    const res = await runJob({ model: { size: 32 }, train: { epochs: 2, batch: 8 }, backend: 'wasm', out }, { ...quiet, container });
    expect(res.network.classes).to.deep.equal(['red', 'green', 'blue']);
    expect(JSON.parse(fs.readFileSync(path.join(res.exportDir, 'metadata.json'), 'utf8')).labels).to.deep.equal(['red', 'green', 'blue']);
    // the undecodable example is skipped, counted and reported, not fatal
    expect(res.skipped.map((s) => s.file)).to.deep.equal(['bad:broken.jpg']);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).skipped).to.have.length(1);
  });

  for (const mode of ['frozen', 'batch'] as const) {
    it(`BatchNorm '${mode}': moving statistics ${mode === 'frozen' ? 'do not move' : 'follow the batches'} during training`, async () => {
      const source = new MemorySource(['a', 'b'], 4, 1);
      const p = await prepare(
        { model: { size: 32, batchNorm: mode }, train: { epochs: 1, batch: 8 }, backend: 'cpu', out: tmpDir() },
        { ...quiet, container: dataContainer(() => source) },
      );
      const bn = p.network.train.getLayer('conv_pw_13_bn');
      const before = bn.getWeights().map((w) => w.arraySync());
      const opt = p.stages.optimizer.create(p.plan.groups, p.job);
      const trainer = new Trainer(tinyTrainerOptions(p, { optimizer: opt, callbacks: [], epochs: 1, batch: 8 }));
      await trainer.fit();
      const after = bn.getWeights().map((w) => w.arraySync());
      // weights: gamma, beta, moving_mean, moving_variance
      if (mode === 'frozen') {
        expect(after[2]).to.deep.equal(before[2]);
        expect(after[3]).to.deep.equal(before[3]);
      } else {
        expect(after[2]).to.not.deep.equal(before[2]);
        expect(after[3]).to.not.deep.equal(before[3]);
      }
      expect(after[0]).to.not.deep.equal(before[0]); // gamma trains in both modes
      opt.dispose();
    });
  }
});
