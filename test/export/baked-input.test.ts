import { expect } from 'chai';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { attachHead, type Network } from '../../src/models/network';
import { LayersModelExporter } from '../../src/export/exporter';
import { rgb255Affine, tmAffine } from '../../src/export/input-affine';
import { fileHandler } from '../../src/models/io';
import { decodeImage } from '../../src/data/decode';
import { preprocessBatch } from '../../src/data/preprocess';
import { loadClassifier, predictFiles } from '../../src/predict';
import type { Preprocess } from '../../src/models/types';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');
const SHIPPED = path.join(ROOT, 'models', 'mobilenet_v1_0.25_224');
const FLOWERS = path.join(ROOT, 'data', 'flowers');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
const IMAGENET: Preprocess = { kind: 'normalize', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

describe('preprocessing inside the exported graph', function () {
  this.timeout(180000);
  let files: string[];
  const nets: Record<string, Network> = {};
  before(async () => {
    await tf.setBackend('cpu');
    for (const [k, pre] of [
      ['scale', null],
      ['normalize', IMAGENET],
    ] as const) {
      const b = await loadLayersFolder(SHIPPED, { inputSize: 96 });
      const net = attachHead(pre ? { ...b, preprocess: pre } : b, CLASSES, { dropout: 0.2, seed: 3 });
      const dense = net.train.getLayer('lt_head_dense');
      dense.setWeights(dense.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.1, 'float32', 11)));
      nets[k] = net;
      // the first call builds tfjs-layers' cached constants, which would read as a leak below
      tf.dispose(net.infer.predict(tf.zeros([1, 96, 96, 3])) as tf.Tensor);
    }
    files = CLASSES.map((c) => path.join(FLOWERS, c, fs.readdirSync(path.join(FLOWERS, c))[0]));
  });

  it('turns each preprocessing into the per-channel affine on 0-255 pixels (hand-computed)', () => {
    // MobileNet [-1, 1]: y = x·2/255 − 1
    expect(rgb255Affine({ kind: 'scale', low: -1, high: 1 })).to.deep.equal({ scale: [2 / 255, 2 / 255, 2 / 255], offset: [-1, -1, -1] });
    // torchvision: y = (x/255 − mean)/std, so scale 1/(255·std) and offset −mean/std; red: 1/58.395, −2.1179
    const r = rgb255Affine(IMAGENET);
    expect(r.scale[0]).to.be.closeTo(1 / 58.395, 1e-12);
    expect(r.offset[0]).to.be.closeTo(-0.485 / 0.229, 1e-12);
    expect(r.offset[2]).to.be.closeTo(-0.406 / 0.225, 1e-12);
    // Teachable Machine feeds t = x/127 − 1; the affine on t must give what the model expects of x, at x = 0, 127, 255
    for (const p of [{ kind: 'scale', low: -1, high: 1 } as Preprocess, IMAGENET]) {
      const t = tmAffine(p);
      const want = rgb255Affine(p);
      for (const x of [0, 127, 255]) {
        for (let c = 0; c < 3; c++) expect(t.scale[c] * (x / 127 - 1) + t.offset[c]).to.be.closeTo(want.scale[c] * x + want.offset[c], 1e-12);
      }
    }
  });

  for (const kind of ['scale', 'normalize'] as const) {
    it(`${kind}: plain tfjs loads the baked export, which takes raw 0-255 RGB and gives the float32 model's probabilities`, async () => {
      const net = nets[kind];
      const dir = path.join(tmpDir('lt-bake-'), 'model');
      const before = tf.memory().numTensors;
      await new LayersModelExporter().export(net, dir, { trainingConfig: {}, metrics: {} }, { settings: { bakePreprocessing: true } });
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8'));
      expect(meta.inputConvention).to.equal('rgb255');
      const model = await tf.loadLayersModel(fileHandler(path.join(dir, 'model.json')));
      expect(model.layers[1].getClassName()).to.equal('DepthwiseConv2D');
      expect(model.layers[1].trainable).to.equal(false);
      const px = await Promise.all(files.map((f) => decodeImage(f, { size: 96 })));
      const all = new Uint8Array(px.length * px[0].length);
      px.forEach((p, i) => all.set(p, i * p.length));
      const raw = tf.tensor4d(Float32Array.from(all), [files.length, 96, 96, 3]);
      const x = preprocessBatch(all, files.length, 96, net.backbone.preprocess);
      const want = net.infer.predict(x) as tf.Tensor;
      const got = model.predict(raw) as tf.Tensor;
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(want, got))));
      expect(diff.dataSync()[0]).to.be.below(1e-5);
      tf.dispose([raw, x, want, got, diff]);
      model.dispose();
      expect(tf.memory().numTensors).to.equal(before);
      // predict reads the convention and feeds pixels: same answers as the unbaked export
      const plainDir = path.join(tmpDir('lt-bake-'), 'model');
      await new LayersModelExporter().export(net, plainDir, { trainingConfig: {}, metrics: {} });
      const a = await predictFiles(await loadClassifier(dir), files, 5);
      const b = await predictFiles(await loadClassifier(plainDir), files, 5);
      a.forEach((p, i) => p.top.forEach((t, j) => expect(t.probability).to.be.closeTo(b[i].top[j].probability, 1e-5)));
    });
  }

  it("writes Teachable Machine's metadata fields, and @teachablemachine/image's own load() and capture() give predict's top-1", async () => {
    const net = nets.normalize;
    const dir = path.join(tmpDir('lt-tm-'), 'model');
    await new LayersModelExporter().export(net, dir, { trainingConfig: {}, metrics: {} }, { settings: { format: 'tm' } });
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8'));
    // every field of a real Teachable Machine export (shared/models/tm_mobilenet_v2_0.35_3class) is there
    const tmReal = ['tfjsVersion', 'tmVersion', 'packageVersion', 'packageName', 'timeStamp', 'userMetadata', 'modelName', 'labels', 'imageSize'];
    for (const k of tmReal) expect(meta, k).to.have.property(k);
    expect(meta).to.include({ imageSize: 96, grayscale: false, inputConvention: 'tm', tfjsVersion: tf.version.tfjs });
    expect(meta.labels).to.deep.equal(CLASSES);
    // TM's loadFromFiles takes exactly one weights file
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')).weightsManifest;
    expect(manifest.map((g: { paths: string[] }) => g.paths)).to.deep.equal([['weights.bin']]);

    const server = http.createServer((req, res) => {
      const f = path.join(dir, path.basename(req.url ?? ''));
      if (!fs.existsSync(f)) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': f.endsWith('.json') ? 'application/json' : 'application/octet-stream' }).end(fs.readFileSync(f));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const tmImage = require('@teachablemachine/image');
      const tmTf = require('@teachablemachine/image/dist/utils/tf');
      const tm = await tmImage.load(`${base}/model.json`, `${base}/metadata.json`);
      expect(tm.getTotalClasses()).to.equal(CLASSES.length);
      // TM crops the centre square on a canvas; under Node the same centre crop comes from layertune's decoder
      const ours = await predictFiles(await loadClassifier(dir, undefined, 'center', { cropPct: 1 }), files, 5);
      for (let i = 0; i < files.length; i++) {
        const rgb = await decodeImage(files[i], { size: 96, crop: 'center' });
        // tfjs's PixelData is RGBA, as a canvas gives it
        const data = new Uint8Array(96 * 96 * 4).fill(255);
        for (let j = 0; j < 96 * 96; j++) data.set(rgb.subarray(3 * j, 3 * j + 3), 4 * j);
        const y = tf.tidy(() => tm.model.predict(tmTf.capture({ data, width: 96, height: 96 }, false)) as tf.Tensor);
        const p = y.dataSync();
        y.dispose();
        const top = [...p].indexOf(Math.max(...p));
        expect(CLASSES[top]).to.equal(ours[i].top[0].label);
        expect(p[top]).to.be.closeTo(ours[i].top[0].probability, 1e-5);
      }
      expect(new Set(ours.map((o) => o.top[0].label)).size).to.be.greaterThan(1);
      tm.model.dispose();
    } finally {
      server.close();
    }
  });
});
