import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { JobInput } from '../../src/config/schema';
import { ImageFolderSource } from '../../src/data/image-folder';
import { prepare, runJob } from '../../src/job';
import { ConfigError } from '../../src/errors';
import * as tf from '@tensorflow/tfjs';
import { loadClassifier, predictFiles } from '../../src/predict';
import type { Callback } from '../../src/train/callbacks';
import { tmpDir } from '../helpers/images';

const quiet = { log: () => undefined };
class Crash extends Error {}
const crashAt = (step: number): Callback => ({
  afterStep(b) {
    if (b.step === step) throw new Crash(`simulated crash at step ${step}`);
  },
});
const bytes = (f: string) => fs.readFileSync(f);

/** Two classes of non-square photos (a horizontal vs a vertical gradient, with noise), so crops and the centre crop matter. */
async function photoFolder(): Promise<string> {
  const root = tmpDir('lt-presize-data-');
  let s = 17;
  for (const [c, vertical] of [
    ['h', false],
    ['v', true],
  ] as const) {
    fs.mkdirSync(path.join(root, c));
    for (let i = 0; i < 5; i++) {
      const w = 48 + 4 * i;
      const h = 36;
      const px = new Uint8Array(w * h * 3);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let k = 0; k < 3; k++) {
            s = (s * 1103515245 + 12345) % 2147483648;
            px[(y * w + x) * 3 + k] = Math.min(255, (vertical ? y * 7 : x * 5) + (s >> 26));
          }
      await sharp(px, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(path.join(root, c, `${i}.png`));
    }
  }
  return root;
}

describe('presized random crops and centre-crop validation in a real run', function () {
  this.timeout(300000);
  let data: string;
  before(async () => {
    data = await photoFolder();
  });
  const job = (out: string): JobInput =>
    ({
      model: { size: 32 },
      data: { dir: data, valFraction: 0.4, presize: 40, augment: { randomResizedCrop: { scale: [0.35, 1] } } },
      eval: { crop: 'center', cropPct: 0.875 },
      groups: { strategy: 'stepped', rules: [{ match: '^conv(1|_(dw|pw)_[1-5])(_bn)?$', freeze: true }] },
      train: { epochs: 3, batch: 3, seed: 4 },
      backend: 'wasm',
      out,
      checkpoint: { everyEpochs: 1 },
    }) as JobInput;

  it('resumes bit for bit, keeps numTensors flat, and predict on the export reproduces the run’s validation accuracy', async () => {
    const logs: string[] = [];
    const a = tmpDir('lt-presize-a-');
    const full = await runJob(job(a), { log: (l: string) => void logs.push(l), report: false });
    expect(logs.join('\n')).to.contain(
      'inputs: training crops from copies presized to short side 40, aspect kept; validation: short side 36 (cropPct 0.875), centre 32×32',
    );
    const counts = full.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);
    const meta = JSON.parse(fs.readFileSync(path.join(a, 'model', 'metadata.json'), 'utf8'));
    expect(meta.evalCrop).to.deep.equal({ mode: 'center', cropPct: 0.875 });

    // the export applies what metadata.json says, so its top-1 on the validation photos is the run's own
    const c = await loadClassifier(path.join(a, 'model'));
    const classes = ['h', 'v'];
    // the run's own split (data.splitSeed 42)
    const src = new ImageFolderSource({ root: data, valFraction: 0.4, seed: 42 });
    expect(src.val.length).to.be.greaterThan(2);
    const preds = await predictFiles(
      c,
      src.val.map((e) => e.key),
      1,
    );
    const correct = preds.filter((p, i) => p.top[0].label === classes[src.val[i].label]).length;
    expect(correct / src.val.length).to.equal(full.val!.accuracy);
    c.model.dispose();

    const b = tmpDir('lt-presize-b-');
    await runJob(job(b), { ...quiet, report: false, callbacks: [crashAt(3)] }).then(
      () => expect.fail('the crash callback should have stopped the run'),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    await runJob({}, { ...quiet, report: false, resume: b });
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(bytes(path.join(b, f)).equals(bytes(path.join(a, f))), f).to.equal(true);
    }
  });

  it("refuses a presize below the model's own input size (no model.size) in one line, holding no tensors after", async () => {
    const before = tf.memory().numTensors;
    let message = '';
    try {
      await prepare({ data: { dir: data, presize: 100 }, backend: 'wasm', out: tmpDir('lt-presize-bad-') }, quiet);
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message).to.equal('config.data.presize: 100 is below the input size 224');
    expect(tf.memory().numTensors).to.equal(before);
  });
});
