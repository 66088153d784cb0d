import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { ConfigError, ModelFormatError } from '../../src/errors';
import { buildArch, type BuiltArch, KNOWN_ARCHS } from '../../src/models/arch';
import { makeDivisible } from '../../src/models/arch/common';
import { mobileNetV2Channels } from '../../src/models/arch/mobilenet-v2';
import { fileHandler } from '../../src/models/io';
import { loadKerasWeights, weightsOfLayersModel } from '../../src/models/keras-weights';
import { chainPoints } from '../../src/models/stages';
import { disposeBuilt } from '../../src/models/torch-source';

const ROOT = path.join(__dirname, '..', '..');

function trainableParams(m: tf.LayersModel): number {
  return m.trainableWeights.reduce((n, w) => n + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

describe('models: architectures in code', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('wasm');
  });

  describe('parameter counts match the publishers (1000 classes)', () => {
    // torchvision docs count parameters only (BatchNorm running statistics are buffers)
    const torchvision: Array<[string, number]> = [
      ['resnet18', 11_689_512],
      ['resnet34', 21_797_672],
      ['resnet50', 25_557_032],
      ['mobilenet_v2_1.0', 3_504_872],
    ];
    for (const [arch, n] of torchvision) {
      it(`${arch} (torch): ${n.toLocaleString('en')} trainable`, () => {
        const built = buildArch(arch, { convention: 'torch', numClasses: 1000 });
        expect(trainableParams(built.classifier!)).to.equal(n);
        disposeBuilt(built);
      });
    }
    // keras.applications' table counts every weight, moving statistics included
    const keras: Array<[string, number]> = [
      ['mobilenet_v1_1.0', 4_253_864],
      ['mobilenet_v1_0.25', 475_544], // also the shipped tfjs model's count (shared/README)
      ['mobilenet_v2_1.0', 3_538_984],
      ['resnet50', 25_636_712],
    ];
    for (const [arch, n] of keras) {
      it(`${arch} (keras): ${n.toLocaleString('en')} in all`, () => {
        const built = buildArch(arch, { convention: 'keras', numClasses: 1000 });
        expect(built.classifier!.countParams()).to.equal(n);
        disposeBuilt(built);
      });
    }
  });

  it('MobileNetV2 channel rounding follows each framework (Keras truncates c·α first)', () => {
    expect(makeDivisible(11.2)).to.equal(16); // 8 would be < 90% of 11.2
    expect(makeDivisible(44.8)).to.equal(48);
    expect(mobileNetV2Channels(0.35, 'torch')).to.deep.include({ stem: 16, head: 1280 });
    expect(mobileNetV2Channels(1.4, 'torch')).to.deep.include({ stem: 48, head: 1792 });
    expect(mobileNetV2Channels(1.4, 'torch').blocks.slice(-1)).to.deep.equal([448]);
  });

  describe('stages', () => {
    // feature-map side after each stage at 224 input, from the papers' tables
    const expected: Array<[string, number[]]> = [
      ['mobilenet_v1_0.5', [112, 112, 56, 28, 14, 7]],
      ['mobilenet_v2_0.35', [112, 112, 56, 28, 14, 7]],
      ['resnet18', [56, 56, 28, 14, 7]],
      ['resnet50', [56, 56, 28, 14, 7]],
    ];
    for (const [arch, sides] of expected) {
      it(`${arch}: stem + stages end where one tensor flows on, at sides ${sides.join('/')}`, () => {
        const built = buildArch(arch);
        const names = built.stages.map((s) => s.name);
        expect(names[0]).to.equal('stem');
        expect(names.slice(1)).to.deep.equal(sides.slice(1).map((_, i) => `stage${i + 1}`));
        const cuts = new Set(chainPoints(built.features));
        for (const s of built.stages) expect(cuts.has(s.endLayer), s.endLayer).to.equal(true);
        expect(built.stages.map((s) => (built.features.getLayer(s.endLayer).outputShape as number[])[1])).to.deep.equal(sides);
        expect(built.stages[built.stages.length - 1].endLayer).to.equal(built.features.outputLayers[0].name);
        disposeBuilt(built);
      });
    }
  });

  it('ResNet-50 puts the stride where the weights expect it: 3×3 for torchvision (v1.5), first 1×1 for Keras (v1)', () => {
    const conf = (b: BuiltArch, name: string) => b.features.getLayer(name).getConfig() as { strides: number[]; padding: string; useBias: boolean };
    const torch = buildArch('resnet50', { convention: 'torch' });
    expect(conf(torch, 'conv3_block1_1_conv').strides).to.deep.equal([1, 1]);
    expect(conf(torch, 'conv3_block1_2_conv')).to.deep.include({ strides: [2, 2], padding: 'valid', useBias: false });
    // symmetric 1-pixel padding in front of the strided 3×3, as torch's padding=1
    const pad = torch.features.getLayer('conv3_block1_2_conv_pad').getConfig() as { padding: number[][] };
    expect(pad.padding).to.deep.equal([
      [1, 1],
      [1, 1],
    ]);
    const keras = buildArch('resnet50', { convention: 'keras' });
    expect(conf(keras, 'conv3_block1_1_conv')).to.deep.include({ strides: [2, 2], useBias: true });
    expect(conf(keras, 'conv3_block1_2_conv')).to.deep.include({ strides: [1, 1], padding: 'same' });
    expect(() => keras.features.getLayer('conv3_block1_2_conv_pad')).to.throw();
    [torch, keras].forEach(disposeBuilt);
  });

  it('MobileNet v1 builds at input sizes 128–224', () => {
    for (const size of [128, 160, 192, 224]) {
      const built = buildArch('mobilenet_v1_0.25', { inputSize: size });
      expect(built.features.outputs[0].shape).to.deep.equal([null, size / 32, size / 32, 256]);
      disposeBuilt(built);
    }
  });

  it('unknown architecture names are typed errors naming the field or the file', () => {
    expect(() => buildArch('resnet19')).to.throw(ConfigError, /^model\.arch: unknown architecture "resnet19"; known: .*resnet18/);
    expect(() => buildArch('mobilenet_v2_0.6', {}, 'w.safetensors')).to.throw(
      ModelFormatError,
      /^w\.safetensors: field arch: unknown architecture "mobilenet_v2_0\.6"/,
    );
    expect(KNOWN_ARCHS).to.include.members([
      'mobilenet_v1_0.25',
      'mobilenet_v1_1.0',
      'mobilenet_v2_0.35',
      'mobilenet_v2_1.4',
      'resnet18',
      'resnet34',
      'resnet50',
    ]);
    expect(() => buildArch('resnet18', { inputSize: 8 })).to.throw(ConfigError, /^model\.inputSize: /);
  });

  describe('Keras convention reproduces Google/Keras pretrained tfjs models', () => {
    it('MobileNet v1 0.25 (the shipped model): features and softmax within 1e-5', async () => {
      const full = await tf.loadLayersModel(fileHandler(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224', 'model.json')));
      const built = buildArch('mobilenet_v1_0.25', { convention: 'keras', numClasses: 1000 });
      loadKerasWeights(built, weightsOfLayersModel(full), 'mobilenet_v1_0.25_224');
      const refFeatures = tf.model({ inputs: full.inputs, outputs: full.getLayer('conv_pw_13_relu').output as tf.SymbolicTensor });
      const x = tf.randomUniform([2, 224, 224, 3], -1, 1, 'float32', 7);
      const [fa, fb] = [built.features.predict(x) as tf.Tensor, refFeatures.predict(x) as tf.Tensor];
      expect(maxAbsDiff(fa, fb)).to.be.below(1e-5);
      const probs = tf.tidy(() => tf.softmax(built.classifier!.predict(x) as tf.Tensor));
      const ref = full.predict(x) as tf.Tensor;
      expect(maxAbsDiff(probs, ref)).to.be.below(1e-5);
      tf.dispose([x, fa, fb, probs, ref]);
      disposeBuilt(built);
      full.dispose();
    });

    it('MobileNetV2 0.35 (a Teachable Machine backbone): pooled features within 1e-4', async () => {
      const full = await tf.loadLayersModel(fileHandler(path.join(ROOT, 'test', 'fixtures', 'models', 'tm_mobilenet_v2_0.35_3class', 'model.json')));
      const backbone = full.layers[0] as tf.LayersModel; // sequential: [MobileNetV2, global pooling]
      const built = buildArch('mobilenet_v2_0.35', { convention: 'keras' });
      const head = new Set(full.layers[1].weights.map((w) => w.originalName));
      loadKerasWeights(built, weightsOfLayersModel(backbone), 'tm_mobilenet_v2_0.35_3class', { allowUnused: (n) => head.has(n) });
      const x = tf.randomUniform([2, 224, 224, 3], -1, 1, 'float32', 3);
      const ours = tf.tidy(() => (built.features.predict(x) as tf.Tensor).mean([1, 2]));
      const ref = backbone.predict(x) as tf.Tensor;
      expect(ours.shape).to.deep.equal([2, 1280]);
      const scale = tf.tidy(() => ref.abs().max().dataSync()[0]);
      expect(scale).to.be.greaterThan(0.1);
      expect(maxAbsDiff(ours, ref)).to.be.below(1e-4 * scale);
      tf.dispose([x, ours, ref]);
      disposeBuilt(built);
      full.dispose();
    });

    it('reports weights that do not fit instead of loading them', async () => {
      const full = await tf.loadLayersModel(fileHandler(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224', 'model.json')));
      const built: BuiltArch = buildArch('mobilenet_v1_0.5', { convention: 'keras', numClasses: 1000 });
      expect(() => loadKerasWeights(built, weightsOfLayersModel(full), 'v1_025.json')).to.throw(
        ModelFormatError,
        /^v1_025\.json: \d+ weight problem\(s\) loading mobilenet_v1_0\.5: weight "conv1\/kernel"\.shape: \[3,3,3,8\] does not match mobilenet_v1_0\.5 \(needs \[3,3,3,16\]\)/,
      );
      disposeBuilt(built);
      full.dispose();
    });
  });
});
