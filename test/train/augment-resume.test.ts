import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import type { Callback } from '../../src/train/callbacks';
import { MEASURED_AUGMENT } from '../../src/data/augment-rule';
import type { DecodedImage } from '../../src/data/decode';
import type { Example } from '../../src/data/source';
import { dataContainer, MemorySource } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

const quiet = { log: () => undefined };
class Crash extends Error {}
const crashAt = (step: number): Callback => ({
  afterStep(b) {
    if (b.step === step) throw new Crash(`simulated crash at step ${step}`);
  },
});
const bytes = (f: string) => fs.readFileSync(f);

describe('augmented training: reproducible and resumed bit for bit', function () {
  this.timeout(300000);
  const source = () => new MemorySource(['a', 'b'], 6, 2);
  // every implemented transform on, a frozen prefix (which must then run on each augmented view), label smoothing
  const job = (out: string, seed = 5): JobInput =>
    ({
      model: { size: 32 },
      data: {
        augment: {
          randomResizedCrop: { scale: [0.35, 1] },
          vflip: 0.3,
          affine: { degrees: 15, translate: [0.1, 0.1], scale: [0.9, 1.1], shear: 5, p: 0.7 },
          colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
          grayscale: 0.2,
          randAugment: { n: 2, m: 9, mstd: 0.5 },
          randomErasing: { p: 0.5, value: 'random' },
          mix: { mixupAlpha: 0.8, cutmixAlpha: 1, prob: 0.8 },
        },
      },
      loss: { labelSmoothing: 0.1 },
      groups: { strategy: 'stepped', rules: [{ match: '^conv(1|_(dw|pw)_[1-5])(_bn)?$', freeze: true }] },
      train: { epochs: 3, batch: 4, seed },
      backend: 'wasm',
      out,
      checkpoint: { everyEpochs: 1 },
    }) as JobInput;

  it('a crashed run resumed from its checkpoint ends with the same bits as the uninterrupted one; the same seed repeats, another differs', async () => {
    const logs: string[] = [];
    const a = tmpDir('lt-aug-a-');
    const full = await runJob(job(a), { log: (l: string) => void logs.push(l), container: dataContainer(source) });
    expect(full.cachedStages).to.be.greaterThan(0);
    expect(logs.join('\n')).to.contain('outputs recomputed every batch, not cached: MixUp/CutMix blend images before the prefix');
    const counts = full.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);

    const b = tmpDir('lt-aug-b-');
    await runJob(job(b), { ...quiet, container: dataContainer(source), callbacks: [crashAt(4)] }).then(
      () => expect.fail('the crash callback should have stopped the run'),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    await runJob({}, { ...quiet, resume: b, container: dataContainer(source) });
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(bytes(path.join(b, f)).equals(bytes(path.join(a, f))), f).to.equal(true);
    }

    const c = tmpDir('lt-aug-c-');
    await runJob(job(c), { ...quiet, container: dataContainer(source) });
    expect(bytes(path.join(c, 'model/weights.bin')).equals(bytes(path.join(a, 'model/weights.bin')))).to.equal(true);
    const d = tmpDir('lt-aug-d-');
    await runJob(job(d, 6), { ...quiet, container: dataContainer(source) });
    expect(bytes(path.join(d, 'model/weights.bin')).equals(bytes(path.join(a, 'model/weights.bin')))).to.equal(false);
  });

  it("the default rule's small-set augmentation from presized copies (host crop, byte flips, colour kernel) resumes bit for bit", async () => {
    let copies = 0;
    /** MemorySource with 4:3 presized copies, so crops take the host path training takes on image folders. */
    class Presized extends MemorySource {
      async presized(ex: Example, size: number): Promise<DecodedImage> {
        copies++;
        const height = Math.ceil(size * 1.15);
        const width = Math.round((height * 4) / 3);
        const i = Number(ex.key.split(':')[2]);
        const pixels = new Uint8Array(width * height * 3).map((_, k) => (k % 3 === ex.label % 3 ? 100 : 0) + ((k * 7 + i * 13) % 97));
        return { pixels, width, height };
      }
    }
    const rule = (out: string): JobInput =>
      ({
        model: { size: 32 },
        data: { augment: { ...MEASURED_AUGMENT } },
        train: { epochs: 3, batch: 4, seed: 5 },
        backend: 'wasm',
        out,
        checkpoint: { everyEpochs: 1 },
      }) as JobInput;
    const presized = () => new Presized(['a', 'b'], 6, 2);
    const a = tmpDir('lt-rule-a-');
    const full = await runJob(rule(a), { ...quiet, container: dataContainer(presized) });
    expect(copies, 'crops came from presized copies').to.be.greaterThan(0);
    const counts = full.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);
    const b = tmpDir('lt-rule-b-');
    await runJob(rule(b), { ...quiet, container: dataContainer(presized), callbacks: [crashAt(4)] }).then(
      () => expect.fail('the crash callback should have stopped the run'),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    await runJob({}, { ...quiet, resume: b, container: dataContainer(presized) });
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(bytes(path.join(b, f)).equals(bytes(path.join(a, f))), f).to.equal(true);
    }
    const c = tmpDir('lt-rule-c-');
    await runJob(rule(c), { ...quiet, container: dataContainer(presized) });
    expect(bytes(path.join(c, 'model/weights.bin')).equals(bytes(path.join(a, 'model/weights.bin')))).to.equal(true);
  });
});
