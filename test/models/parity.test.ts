import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { checkParity, compareLogits } from '../../src/models/parity';
import { buildArch } from '../../src/models/arch';
import { readSafetensors } from '../../src/models/safetensors';
import { disposeLoaded, loadTorchSafetensors } from '../../src/models/torch-source';
import { loadTorchWeights } from '../../src/models/torch-weights';

const DIR = path.join(__dirname, '..', 'fixtures', 'parity');

describe('models: parity with torchvision (eval mode)', function () {
  this.timeout(300_000);
  let previous: string;
  before(async () => {
    await tf.ready();
    previous = tf.getBackend();
  });
  after(async () => {
    await tf.setBackend(previous);
  });

  for (const backend of ['wasm', 'cpu']) {
    for (const name of ['resnet18', 'mobilenet_v2']) {
      it(`${name} reproduces torchvision logits on ${backend}`, async () => {
        await tf.setBackend(backend);
        const before = tf.memory().numTensors;
        const loaded = loadTorchSafetensors(path.join(DIR, `${name}.safetensors`));
        // exactly the model's variables exist: loading leaked no temporaries
        expect(tf.memory().numTensors - before).to.equal(loaded.classifier!.weights.length);
        expect(loaded.numClasses).to.equal(10);
        const r = checkParity(name, loaded, path.join(DIR, `${name}.io.safetensors`));
        expect(r.argmaxAgree, JSON.stringify(r)).to.equal(true);
        expect(r.maxAbsErr, JSON.stringify(r)).to.be.at.most(1e-3 * r.maxAbsLogit);
        expect(r.ok).to.equal(true);
        disposeLoaded(loaded);
        expect(tf.memory().numTensors).to.equal(before);
      });
    }
  }
});

describe('models: compareLogits', () => {
  it('measures error against the reference scale and compares argmax per row', () => {
    const want = [1, 5, -2, /* row 2 */ 0, 0.5, 4];
    expect(compareLogits('m', want, want, 3)).to.deep.equal({ model: 'm', maxAbsErr: 0, maxAbsLogit: 5, argmaxAgree: true, ok: true });
    // 0.004 ≤ 1e-3·5 passes; 0.006 does not
    expect(compareLogits('m', [1.004, 5, -2, 0, 0.5, 4], want, 3).ok).to.equal(true);
    expect(compareLogits('m', [1.006, 5, -2, 0, 0.5, 4], want, 3).ok).to.equal(false);
    const swapped = compareLogits('m', [1, 5, -2, 0, 4.5, 4], want, 3);
    expect(swapped.argmaxAgree).to.equal(false);
    expect(swapped.ok).to.equal(false);
    expect(compareLogits('m', [NaN, 5, -2, 0, 0.5, 4], want, 3).ok).to.equal(false);
  });
});

describe('models: the parity check has teeth', function () {
  this.timeout(120_000);
  it('torchvision weights in a Keras-convention graph (asymmetric stride-2 padding, eps 1e-3) fail it', async () => {
    await tf.setBackend('wasm');
    const built = buildArch('mobilenet_v2_1.0', { convention: 'keras', numClasses: 10 });
    loadTorchWeights(built, readSafetensors(path.join(DIR, 'mobilenet_v2.safetensors')), 'torchvision');
    const loaded = { arch: built.arch, model: built.features, classifier: built.classifier, stages: built.stages, preprocess: built.preprocess, inputSize: 224, source: 'x', numClasses: 10 };
    const r = checkParity('mobilenet_v2', loaded, path.join(DIR, 'mobilenet_v2.io.safetensors'));
    expect(r.ok, JSON.stringify(r)).to.equal(false);
    expect(r.maxAbsErr).to.be.greaterThan(1e-3 * r.maxAbsLogit);
    disposeLoaded(loaded);
  });
});
