import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { buildArch } from '../../src/models/arch';
import { layerMultiplyAdds, multiplyAddsPerImage, trainedMultiplyAdds } from '../../src/models/macs';
import { attachHead } from '../../src/models/network';
import { disposeBuilt } from '../../src/models/torch-source';

describe('models: multiply-adds per image', function () {
  this.timeout(120_000);

  it('counts conv, depthwise and dense by hand; other layers are free', () => {
    // 8x8x3 → conv 3x3 'same' 4 filters: 8·8·4·9·3 = 6912; depthwise 3x3 stride 2 ×2: 4·4·8·9 = 1152;
    // pooled 8 → dense 5: 40; BatchNorm and pooling: 0
    const input = tf.input({ shape: [8, 8, 3] });
    const c = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.batchNormalization().apply(c) as tf.SymbolicTensor;
    const d = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2 }).apply(b) as tf.SymbolicTensor;
    const p = tf.layers.globalAveragePooling2d({}).apply(d) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 5 }).apply(p) as tf.SymbolicTensor });
    expect(multiplyAddsPerImage(model)).to.equal(6912 + 1152 + 40);
    expect(layerMultiplyAdds({ className: 'Conv2D', config: { kernelSize: [1, 3] }, inputShape: [null, 2, 2, 5], outputShape: [null, 2, 2, 7] })).to.equal(
      2 * 2 * 7 * 3 * 5,
    );
    model.dispose();
  });

  // published counts at 224: MobileNet v1 0.25 41M and v2 1.0 300M (the papers' tables), ResNet-18 1.8G (torchvision)
  for (const [arch, want] of [
    ['mobilenet_v1_0.25', 41e6],
    ['mobilenet_v2_1.0', 300e6],
    ['resnet18', 1.82e9],
  ] as const) {
    it(`${arch} at 224 is within 5% of its published ${want / 1e6}M`, () => {
      const built = buildArch(arch, { inputSize: 224, numClasses: 1000 });
      const got = multiplyAddsPerImage(built.classifier!);
      console.log(`      ${arch}: ${(got / 1e6).toFixed(1)}M multiply-adds per image`);
      expect(Math.abs(got / want - 1)).to.be.below(0.05);
      disposeBuilt(built);
    });
  }

  it('what training computes leaves out the cached frozen stages', () => {
    const built = buildArch('mobilenet_v1_0.25', { inputSize: 128 });
    const net = attachHead(
      { arch: 'mobilenet_v1_0.25', model: built.features, stages: built.stages, preprocess: built.preprocess, inputSize: 128, source: 'test' },
      ['a', 'b'],
      { dropout: 0, seed: 1 },
    );
    const all = trainedMultiplyAdds(net, 0);
    expect(all).to.equal(multiplyAddsPerImage(net.train));
    const some = trainedMultiplyAdds(net, 2);
    expect(some).to.be.greaterThan(0);
    expect(some).to.be.below(all);
    // the head alone (every backbone stage cached): pooled features · classes
    const last = built.features.outputs[0].shape[3] as number;
    expect(trainedMultiplyAdds(net, built.stages.length)).to.equal(last * 2);
    net.train.dispose();
  });

  it('a layer called by two models at different input sizes counts each model at its own size', () => {
    // the shipped backbone re-applied at a job's 32 px: tfjs's layer.outputShape throws for a layer with two calls
    const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' });
    const a = tf.input({ shape: [8, 8, 2] });
    const big = tf.model({ inputs: a, outputs: conv.apply(a) as tf.SymbolicTensor });
    const b = tf.input({ shape: [4, 4, 2] });
    const small = tf.model({ inputs: b, outputs: conv.apply(b) as tf.SymbolicTensor });
    expect(multiplyAddsPerImage(big)).to.equal(8 * 8 * 4 * 9 * 2);
    expect(multiplyAddsPerImage(small)).to.equal(4 * 4 * 4 * 9 * 2);
    big.dispose();
  });
});
