import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { ModelFormatError } from '../../src/errors';
import { buildArch } from '../../src/models/arch';
import { fileHandler } from '../../src/models/io';
import { flipInputChannels } from '../../src/models/keras-h5';
import { loadBackbone } from '../../src/models/registry';
import { disposeBuilt, disposeLoaded } from '../../src/models/torch-source';
import { layersOf, writeKerasH5 } from './h5-writer';

const ROOT = path.join(__dirname, '..', '..');

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('models: Keras .h5 weights (h5wasm)', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    await tf.setBackend('wasm');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layertune-h5-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('MobileNet v1 0.25 weights in save_weights layout load and reproduce the tfjs model', async () => {
    const full = await tf.loadLayersModel(fileHandler(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224', 'model.json')));
    const file = path.join(dir, 'mobilenet_2_5_224_tf.h5');
    await writeKerasH5(file, layersOf(full));
    const before = tf.memory().numTensors;
    const loaded = await loadBackbone(file);
    expect(loaded.arch).to.equal('mobilenet_v1_0.25');
    expect(loaded.numClasses).to.equal(1000);
    expect(loaded.preprocess).to.deep.equal({ kind: 'scale', low: -1, high: 1 });
    expect(tf.memory().numTensors - before).to.equal(loaded.classifier!.weights.length);
    const x = tf.randomUniform([1, 224, 224, 3], -1, 1, 'float32', 11);
    const diff = tf.tidy(
      () =>
        tf
          .softmax(loaded.classifier!.predict(x) as tf.Tensor)
          .sub(full.predict(x) as tf.Tensor)
          .abs()
          .max()
          .dataSync()[0],
    );
    expect(diff).to.be.below(1e-5);
    x.dispose();
    disposeLoaded(loaded);
    full.dispose();
  });

  it('a full model.save() file (weights under /model_weights) loads too', async () => {
    const built = buildArch('mobilenet_v2_0.35', { convention: 'keras', numClasses: 5 });
    const file = path.join(dir, 'full.h5');
    await writeKerasH5(file, layersOf(built.classifier!), { under: 'model_weights' });
    const loaded = await loadBackbone(file);
    expect(loaded.arch).to.equal('mobilenet_v2_0.35');
    expect(loaded.numClasses).to.equal(5);
    const x = tf.randomUniform([1, 96, 96, 3], -1, 1, 'float32', 1);
    const small = await loadBackbone(file, { inputSize: 96 });
    const refSmall = buildArch('mobilenet_v2_0.35', { convention: 'keras', inputSize: 96, numClasses: 5 });
    refSmall.classifier!.setWeights(built.classifier!.getWeights());
    const diff = tf.tidy(
      () =>
        (small.classifier!.predict(x) as tf.Tensor)
          .sub(refSmall.classifier!.predict(x) as tf.Tensor)
          .abs()
          .max()
          .dataSync()[0],
    );
    expect(diff).to.equal(0);
    tf.dispose(x);
    [loaded, small].forEach(disposeLoaded);
    [built, refSmall].forEach(disposeBuilt);
  });

  it('ResNet50: the BGR/caffe convention is folded so the backbone takes RGB with a declared mean', async () => {
    const size = 64;
    const original = buildArch('resnet50', { convention: 'keras', inputSize: size });
    const file = path.join(dir, 'resnet50_notop.h5');
    await writeKerasH5(file, layersOf(original.features));
    const loaded = await loadBackbone(file, { inputSize: size });
    expect(loaded.arch).to.equal('resnet50');
    expect(loaded.numClasses).to.equal(0);
    const pre = loaded.preprocess;
    if (pre.kind !== 'normalize') throw new Error('expected normalize');
    const rgb = tf.randomUniform([1, size, size, 3], 0, 255, 'float32', 5);
    const [ours, keras] = tf.tidy(() => {
      // what keras.applications.resnet50.preprocess_input does: RGB→BGR, subtract BGR means
      const caffe = tf.reverse(rgb, -1).sub(tf.tensor1d([103.939, 116.779, 123.68]));
      const ourInput = rgb.div(255).sub(tf.tensor1d(pre.mean)).div(tf.tensor1d(pre.std));
      return [loaded.model.predict(ourInput) as tf.Tensor, original.features.predict(caffe) as tf.Tensor];
    });
    const scale = tf.tidy(() => keras.abs().max().dataSync()[0]);
    const diff = tf.tidy(() => ours.sub(keras).abs().max().dataSync()[0]);
    expect(scale).to.be.greaterThan(0);
    expect(diff).to.be.below(1e-4 * scale);
    tf.dispose([rgb, ours, keras]);
    disposeLoaded(loaded);
    disposeBuilt(original);
  });

  it('flipInputChannels reverses only the input-channel axis of an HWIO kernel', () => {
    // 1×1 kernel, 3 inputs × 2 outputs: rows are input channels
    expect(Array.from(flipInputChannels(new Float32Array([1, 2, 3, 4, 5, 6]), [1, 1, 3, 2]))).to.deep.equal([5, 6, 3, 4, 1, 2]);
  });

  describe('bad files', () => {
    it('not HDF5', async () => {
      const file = path.join(dir, 'fake.h5');
      fs.writeFileSync(file, 'hello, not hdf5');
      const e = await rejection(loadBackbone(file));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.equal(`${file}: not an HDF5 file (no HDF5 signature at byte 0)`);
    });
    it('HDF5 without layer_names (e.g. a Keras 3 .weights.h5)', async () => {
      const file = path.join(dir, 'nolayers.h5');
      await writeKerasH5(file, [{ name: 'dense', weights: [] }], { omitLayerNames: true });
      const e = await rejection(loadBackbone(file));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.match(new RegExp(`^${file.replace(/[.]/g, '\\.')}: field attrs\\.layer_names: missing`));
    });
    it('a weight whose shape does not match the architecture', async () => {
      const built = buildArch('mobilenet_v1_0.25', { convention: 'keras' });
      const layers = layersOf(built.features);
      const pw = layers.find((l) => l.name === 'conv_pw_3')!;
      pw.weights[0] = { ...pw.weights[0], shape: [1, 1, 32, 16], data: new Float32Array(32 * 16) };
      const file = path.join(dir, 'badshape.h5');
      await writeKerasH5(file, layers);
      const e = await rejection(loadBackbone(file));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.contain(file).and.contain('weight "conv_pw_3/kernel".shape: [1,1,32,16] does not match mobilenet_v1_0.25 (needs [1,1,32,32])');
      disposeBuilt(built);
    });
    it('layer names of no known architecture', async () => {
      const file = path.join(dir, 'other.h5');
      await writeKerasH5(file, [{ name: 'dense_7', weights: [{ name: 'dense_7/kernel:0', shape: [2, 2], data: new Float32Array(4) }] }]);
      const e = await rejection(loadBackbone(file));
      expect(e).to.be.instanceOf(ModelFormatError);
      expect(e.message).to.contain(file).and.contain('cannot tell the architecture');
      const forced = await rejection(loadBackbone(file, { arch: 'resnet19' }));
      expect(forced.message).to.contain('field arch: unknown architecture "resnet19"');
    });
  });
});
