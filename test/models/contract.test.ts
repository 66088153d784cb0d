import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { loadBackbone } from '../../src/models/registry';
import { attachHead, splitAtStage } from '../../src/models/network';
import { disposeLoaded } from '../../src/models/torch-source';

const PARITY = path.join(__dirname, '..', 'fixtures', 'parity');

describe('models: built backbones satisfy the Backbone contract the trainer uses', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('wasm');
  });

  for (const [name, size] of [
    ['mobilenet_v2', 96],
    ['resnet18', 64],
  ] as const) {
    it(`${name}: a new head attaches, and cutting at every stage gives prefix∘suffix = the whole network`, async () => {
      const b = await loadBackbone(path.join(PARITY, `${name}.safetensors`), { inputSize: size });
      const net = attachHead(b, ['a', 'b', 'c'], { dropout: 0.2, seed: 1 });
      const x = tf.randomUniform([2, size, size, 3], -1, 1, 'float32', 4);
      const whole = net.train.predict(x) as tf.Tensor;
      expect(whole.shape).to.deep.equal([2, 3]);
      for (let s = 0; s < b.stages.length; s++) {
        const { prefix, suffix } = splitAtStage(net, s);
        const diff = tf.tidy(() => (suffix.predict(prefix.predict(x) as tf.Tensor) as tf.Tensor).sub(whole).abs().max().dataSync()[0]);
        expect(diff, `stage ${s}`).to.be.below(1e-5);
      }
      // every weight-owning backbone layer belongs to a stage before the head
      const weighted = b.model.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
      for (const l of weighted) expect(net.stageOf.get(l)!, l).to.be.below(b.stages.length);
      tf.dispose([x, whole]);
      disposeLoaded(b);
    });
  }
});
