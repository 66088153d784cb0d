import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { resolveJob } from '../../src/config/load';
import { ImageFolderData } from '../../src/container';
import { decodeImage } from '../../src/data/decode';
import { rawBatches } from '../../src/data/batches';
import { ImageFolderSource } from '../../src/data/image-folder';
import { Rng } from '../../src/data/rng';
import type { DataSource, Example } from '../../src/data/source';
import { SplitDataView } from '../../src/tune/parts';
import { preprocessBatch } from '../../src/data/preprocess';
import { LayersModelExporter } from '../../src/export/exporter';
import { readExportMetadata } from '../../src/export/metadata-schema';
import { attachHead, type Network } from '../../src/models/network';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { loadClassifier, predictFiles } from '../../src/predict';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');
const SHIPPED = path.join(ROOT, 'models', 'mobilenet_v1_0.25_224');
const FLOWERS = path.join(ROOT, 'data', 'flowers');
const CLASSES = ['daisy', 'rose'];
const SIZE = 64;

describe('evaluation crop in the export: recorded in metadata.json, applied by predict as validation applied it', function () {
  this.timeout(120000);
  let net: Network;
  let data: string;
  before(async () => {
    await tf.setBackend('cpu');
    net = attachHead(await loadLayersFolder(SHIPPED, { inputSize: SIZE }), CLASSES, { dropout: 0, seed: 3 });
    const dense = net.train.getLayer('lt_head_dense');
    dense.setWeights(dense.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.5, 'float32', 11)));
    // flowers photos are not square, so fill and center see different pixels
    data = tmpDir('lt-evalcrop-data-');
    for (const c of CLASSES) {
      fs.mkdirSync(path.join(data, c));
      for (const f of fs.readdirSync(path.join(FLOWERS, c)).slice(0, 4)) fs.copyFileSync(path.join(FLOWERS, c, f), path.join(data, c, f));
    }
  });
  after(() => net.train.dispose());

  /** Validation's inputs: the batches an evaluation pass (no RNG) builds, as the trainer and the export check build them. */
  async function validationPixels(source: DataSource, examples: Example[]): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const b of rawBatches(source, examples, { size: SIZE, batch: 3, shuffle: false, flip: false }, null)) parts.push(b.pixels);
    return Buffer.concat(parts);
  }

  /** The probabilities validation during training computes: those batches through the in-memory model. */
  async function validationProbs(source: ImageFolderSource): Promise<number[][]> {
    const all = await validationPixels(source, source.val);
    return tf.tidy(() => (net.infer.predict(preprocessBatch(all, source.val.length, SIZE, net.backbone.preprocess)) as tf.Tensor).arraySync() as number[][]);
  }

  for (const evalCrop of [
    { mode: 'center', cropPct: 0.875 },
    { mode: 'fill', cropPct: 0.875 },
  ] as const) {
    it(`${evalCrop.mode}: predict on the export gives validation's probabilities; metadata round-trips`, async () => {
      const out = path.join(tmpDir('lt-evalcrop-export-'), 'model');
      await new LayersModelExporter().export(net, out, { trainingConfig: {}, metrics: {}, evalCrop });
      const meta = readExportMetadata(path.join(out, 'metadata.json'), CLASSES.length);
      expect(meta.evalCrop).to.deep.equal(evalCrop);
      const c = await loadClassifier(out);
      expect([c.crop, c.cropPct]).to.deep.equal([evalCrop.mode, evalCrop.cropPct]);
      const source = new ImageFolderSource({ root: data, valFraction: 0.5, seed: 1, evalCrop });
      expect(source.val.length).to.be.greaterThan(1);
      const want = await validationProbs(source);
      const got = await predictFiles(
        c,
        source.val.map((e) => e.key),
        CLASSES.length,
      );
      got.forEach((p, i) => p.top.forEach((t) => expect(t.probability, p.file).to.be.closeTo(want[i][t.index], 1e-5)));
      c.model.dispose();
    });
  }

  it('the crop matters: center and fill validation inputs differ on non-square photos; training passes never centre-crop', async () => {
    const a = new ImageFolderSource({ root: data, valFraction: 0.5, seed: 1, evalCrop: { mode: 'center', cropPct: 0.875 } });
    const b = new ImageFolderSource({ root: data, valFraction: 0.5, seed: 1 });
    expect(Buffer.from(await validationPixels(a, a.val)).equals(Buffer.from(await validationPixels(b, b.val)))).to.equal(false);
    const train = async (s: DataSource) => {
      const parts: Uint8Array[] = [];
      for await (const x of rawBatches(s, s.train, { size: SIZE, batch: 4, shuffle: true, flip: false }, new Rng(1))) parts.push(x.pixels);
      return Buffer.concat(parts);
    };
    expect((await train(a)).equals(await train(b))).to.equal(true);
    // a k-fold view over the source evaluates its own validation fold with the crop too
    const fold = new SplitDataView(a, a.val, a.train);
    const want = await Promise.all(a.train.map((e) => decodeImage(e.key, { size: SIZE, crop: 'center', cropPct: 0.875 })));
    expect(Buffer.from(await validationPixels(fold, fold.val)).equals(Buffer.concat(want))).to.equal(true);
  });

  it('a job with eval.crop center gives a data source whose validation images are centre-cropped (the job is no longer refused)', async () => {
    const job = resolveJob({ data: { dir: data, valFraction: 0.5 }, eval: { crop: 'center', cropPct: 0.8 } });
    const source = new ImageFolderData().create(job);
    const want = await Promise.all(source.val.map((e) => decodeImage(e.key, { size: SIZE, crop: 'center', cropPct: 0.8 })));
    expect(Buffer.from(await validationPixels(source, source.val)).equals(Buffer.concat(want))).to.equal(true);
  });

  it('without evalCrop (exports before it) predict squashes (fill); a damaged evalCrop is refused in one line', async () => {
    const out = path.join(tmpDir('lt-evalcrop-old-'), 'model');
    await new LayersModelExporter().export(net, out, { trainingConfig: {}, metrics: {} });
    const file = path.join(out, 'metadata.json');
    const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
    // the eval section's defaults when the caller says nothing
    expect(meta.evalCrop).to.deep.equal({ mode: 'fill', cropPct: 0.875 });
    delete meta.evalCrop;
    fs.writeFileSync(file, JSON.stringify(meta));
    fs.rmSync(path.join(out, 'checksums.sha256'));
    const c = await loadClassifier(out);
    expect([c.crop, c.cropPct]).to.deep.equal(['fill', 1]);
    c.model.dispose();
    fs.writeFileSync(file, JSON.stringify({ ...meta, evalCrop: { mode: 'center', cropPct: 2 } }));
    let message = '';
    try {
      await loadClassifier(out);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).to.match(/metadata\.json: bad metadata: evalCrop\.cropPct: /);
    expect(message.split('\n')).to.have.length(1);
  });
});
