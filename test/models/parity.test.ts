import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { checkParity, compareLogits } from '../../src/models/parity';
import { buildArch } from '../../src/models/arch';
import { encodeSafetensors, readSafetensors } from '../../src/models/safetensors';
import { disposeLoaded, loadTorchSafetensors } from '../../src/models/torch-source';
import { loadTorchWeights } from '../../src/models/torch-weights';
import * as ref from './torch-reference';

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
    const loaded = {
      arch: built.arch,
      model: built.features,
      classifier: built.classifier,
      stages: built.stages,
      preprocess: built.preprocess,
      inputSize: 224,
      source: 'x',
      numClasses: 10,
    };
    const r = checkParity('mobilenet_v2', loaded, path.join(DIR, 'mobilenet_v2.io.safetensors'));
    expect(r.ok, JSON.stringify(r)).to.equal(false);
    expect(r.maxAbsErr).to.be.greaterThan(1e-3 * r.maxAbsLogit);
    disposeLoaded(loaded);
  });
});

describe('models: ResNet-50 (Bottleneck, v1.5) against an independent naive torchvision forward pass', function () {
  this.timeout(300_000);
  it('random torchvision-named weights give the same logits (rel 1e-4) at a 40×40 input', async () => {
    await tf.setBackend('wasm');
    const W = ref.randomBottleneckWeights([3, 4, 6, 3], 10, 42);
    const file = path.join(os.tmpdir(), `layertune-resnet50-${process.pid}.safetensors`);
    fs.writeFileSync(
      file,
      encodeSafetensors([...W].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, bytes: new Uint8Array(t.data.buffer) }))),
    );
    try {
      const loaded = loadTorchSafetensors(file, { inputSize: 40 });
      expect(loaded.arch).to.equal('resnet50');
      const r = ref.rng(9);
      const nchw = Float32Array.from({ length: 3 * 40 * 40 }, () => 2 * r() - 1);
      const want = ref.resnetBottleneckForward({ c: 3, h: 40, w: 40, d: nchw }, W, [3, 4, 6, 3]);
      const got = tf.tidy(() => (loaded.classifier!.predict(tf.tensor(nchw, [1, 3, 40, 40]).transpose([0, 2, 3, 1])) as tf.Tensor).dataSync().slice());
      const result = compareLogits('resnet50', got, want, 10, 1e-4);
      expect(result.maxAbsLogit).to.be.greaterThan(0.1); // the random network is not degenerate
      expect(result.ok, JSON.stringify(result)).to.equal(true);
      disposeLoaded(loaded);
    } finally {
      fs.unlinkSync(file);
    }
  });
});
