import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { modelFrom } from '../../src/engine/inference-host';
import { buildArch, type Convention } from '../../src/models/arch';
import { FoldedModel, foldablePairs, foldKernel } from '../../src/models/fold-batchnorm';
import { readSafetensors, tensorAsFloat32 } from '../../src/models/safetensors';
import { disposeBuilt, disposeLoaded, loadTorchSafetensors } from '../../src/models/torch-source';

const PARITY = path.join(__dirname, '..', 'fixtures', 'parity');

function maxAbs(a: tf.Tensor, b?: tf.Tensor): number {
  return tf.tidy(() => (b ? tf.sub(a, b) : a).abs().max().dataSync()[0]);
}

/** Pretrained-like BatchNorm statistics, so folding has something to fold (fresh layers are the identity). */
function randomiseBatchNorms(model: tf.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const ranges: Array<[number, number]> = [
      [0.5, 1.5], // gamma
      [-0.2, 0.2], // beta
      [-0.2, 0.2], // moving mean
      [0.5, 2], // moving variance
    ];
    const w = layer.getWeights().map((t, i) => tf.randomUniform(t.shape, ranges[i][0], ranges[i][1], 'float32', s++));
    layer.setWeights(w);
    tf.dispose(w);
  }
}

describe('models: BatchNorm folding for inference', function () {
  this.timeout(300_000);
  let previous: string;
  before(async () => {
    await tf.ready();
    previous = tf.getBackend();
    await tf.setBackend('wasm');
  });
  after(async () => {
    await tf.setBackend(previous);
  });

  it('folds a 1-channel conv + BN by hand: kernel·γ/√(σ²+ε), (b−μ)·γ/√(σ²+ε)+β', () => {
    // σ²+ε = 3.99+0.01 = 4, so the scale is γ/2 = 1.5
    const bn = { gamma: [3], beta: [0.25], mean: [1.5], variance: [3.99], epsilon: 0.01 };
    const out = foldKernel([1, 2, -1, 0.5], [0.5], bn, 1);
    expect(Array.from(out.kernel)).to.deep.equal([1.5, 3, -1.5, 0.75]);
    expect(out.bias[0]).to.be.closeTo((0.5 - 1.5) * 1.5 + 0.25, 1e-7); // -1.25

    // the same layer pair as a model: input [[1,2],[3,4]] → conv 1+4−3+2+0.5 = 4.5 → BN (4.5−1.5)·1.5+0.25 = 4.75
    const before = tf.memory().numTensors;
    const input = tf.input({ shape: [2, 2, 1] });
    const conv = tf.layers.conv2d({ filters: 1, kernelSize: 2, useBias: true, name: 'c' });
    const norm = tf.layers.batchNormalization({ epsilon: 0.01, name: 'n' });
    const model = tf.model({ inputs: input, outputs: norm.apply(conv.apply(input)) as tf.SymbolicTensor });
    const w = [tf.tensor4d([1, 2, -1, 0.5], [2, 2, 1, 1]), tf.tensor1d([0.5]), tf.tensor1d([3]), tf.tensor1d([0.25]), tf.tensor1d([1.5]), tf.tensor1d([3.99])];
    model.setWeights(w);
    tf.dispose(w);
    const f = FoldedModel.create(model)!;
    expect(f.pairs).to.deep.equal([{ conv: 'c', bn: 'n' }]);
    expect(f.model.layers.map((l) => l.getClassName())).to.deep.equal(['InputLayer', 'Conv2D']);
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const [plain, fold] = [model.predict(x) as tf.Tensor, f.model.predict(x) as tf.Tensor];
    expect(plain.dataSync()[0]).to.be.closeTo(4.75, 1e-6);
    expect(fold.dataSync()[0]).to.be.closeTo(4.75, 1e-6);
    tf.dispose([x, plain, fold]);
    f.dispose();
    model.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('maps depthwise output channels in·multiplier+m to their own BN channel, with BN scale/center off', () => {
    const input = tf.input({ shape: [5, 5, 2] });
    const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, useBias: false, padding: 'same', name: 'dw' });
    const bn = tf.layers.batchNormalization({ name: 'bn', scale: false });
    const model = tf.model({ inputs: input, outputs: bn.apply(dw.apply(input)) as tf.SymbolicTensor });
    const w = [tf.tensor1d([-0.3, 0.1, 0.2, 0.4]), tf.tensor1d([0.5, -1, 2, 0]), tf.tensor1d([0.2, 4, 1, 9])];
    bn.setWeights(w);
    tf.dispose(w);
    const f = FoldedModel.create(model)!;
    const x = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 3);
    const [a, b] = [model.predict(x) as tf.Tensor, f.model.predict(x) as tf.Tensor];
    // per channel, so a channel mix-up would be off by O(1)
    expect(maxAbs(a)).to.be.greaterThan(0.5);
    expect(maxAbs(a, b)).to.be.lessThan(1e-5);
    tf.dispose([x, a, b]);
    f.dispose();
    model.dispose();
  });

  it('leaves alone what does not fold exactly: a fused activation, a conv output read twice, nothing to fold', () => {
    const input = tf.input({ shape: [4, 4, 3] });
    const relu = tf.layers.conv2d({ filters: 3, kernelSize: 1, activation: 'relu', name: 'relu_conv' }).apply(input) as tf.SymbolicTensor;
    const a = tf.layers.batchNormalization({ name: 'bn_a' }).apply(relu) as tf.SymbolicTensor;
    const raw = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'shared_out' }).apply(a) as tf.SymbolicTensor;
    const b = tf.layers.batchNormalization({ name: 'bn_b' }).apply(raw) as tf.SymbolicTensor;
    const sum = tf.layers.add().apply([raw, b]) as tf.SymbolicTensor;
    const last = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'ok_conv' }).apply(sum) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.batchNormalization({ name: 'bn_c' }).apply(last) as tf.SymbolicTensor });
    expect(foldablePairs(model)).to.deep.equal([{ conv: 'ok_conv', bn: 'bn_c' }]);
    const flat = tf.model({ inputs: input, outputs: relu });
    expect(FoldedModel.create(flat)).to.equal(null);
    model.dispose();
  });

  it('merges a ReLU/ReLU6 after a convolution into it: one fused kernel per layer, same outputs, the rest left alone', async () => {
    const input = tf.input({ shape: [6, 6, 4] });
    const bnRelu = (x: tf.SymbolicTensor, n: string, act: tf.layers.Layer) =>
      act.apply(tf.layers.batchNormalization({ name: `${n}_bn` }).apply(x)) as tf.SymbolicTensor;
    let x = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'dw' }).apply(input) as tf.SymbolicTensor;
    x = bnRelu(x, 'dw', tf.layers.activation({ activation: 'relu6', name: 'dw_relu' }));
    x = tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'pw' }).apply(x) as tf.SymbolicTensor;
    x = bnRelu(x, 'pw', tf.layers.reLU({ maxValue: 6, name: 'pw_relu' }));
    x = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'c3' }).apply(x) as tf.SymbolicTensor;
    x = bnRelu(x, 'c3', tf.layers.reLU({ name: 'c3_relu' }));
    // a conv read by two layers keeps its activation layers (and a ceiling other than 6 is no fused activation)
    x = tf.layers.conv2d({ filters: 8, kernelSize: 1, name: 'c4' }).apply(x) as tf.SymbolicTensor;
    const capped = tf.layers.reLU({ maxValue: 4, name: 'c4_relu4' }).apply(x) as tf.SymbolicTensor;
    const both = tf.layers.add({ name: 'sum' }).apply([tf.layers.reLU({ name: 'c4_relu' }).apply(x) as tf.SymbolicTensor, capped]) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(both) as tf.SymbolicTensor });
    randomiseBatchNorms(model, 3);
    const f = FoldedModel.create(model)!;
    expect(f.mergedActivations).to.deep.equal(['dw_relu', 'pw_relu', 'c3_relu']);
    const convs = f.model.layers.filter((l) => ['Conv2D', 'DepthwiseConv2D'].includes(l.getClassName()));
    expect(convs.map((l) => [l.name, (l.getConfig() as { activation: string }).activation])).to.deep.equal([
      ['dw', 'relu6'],
      ['pw', 'relu6'],
      ['c3', 'relu'],
      ['c4', 'linear'],
    ]);
    // the fused kernels ran, and no separate bias add or clamp for the merged layers (c4's two ReLUs remain)
    const xs = tf.randomUniform([2, 6, 6, 4], -3, 3, 'float32', 9);
    const kernels = async (m: tf.LayersModel) =>
      (await tf.profile(() => m.predict(xs) as tf.Tensor)).kernels.map((k) => k.name).filter((n) => !n.endsWith('__op'));
    const ran = await kernels(f.model);
    expect(ran.filter((n) => n === 'FusedDepthwiseConv2D').length).to.equal(1);
    expect(ran.filter((n) => n === 'FusedConv2D').length).to.equal(3);
    expect(ran.filter((n) => n === 'Add').length, 'only the Add layer').to.equal(1);
    expect(ran.length, `kernels: ${ran.join(' ')}`).to.be.below((await kernels(model)).length - 6);
    expect(maxAbs(f.model.predict(xs) as tf.Tensor, model.predict(xs) as tf.Tensor)).to.be.lessThan(1e-5);
    // an inference worker rebuilds the model from its save, and binds the same fused calls
    let a: tf.io.ModelArtifacts | undefined;
    await f.model.save({ save: async (m) => ((a = m), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }) });
    const rebuilt = await modelFrom({
      modelTopology: a!.modelTopology as object,
      weightSpecs: a!.weightSpecs!,
      weightData: a!.weightData as ArrayBuffer,
    } as never);
    expect(await kernels(rebuilt)).to.deep.equal(ran);
    expect(maxAbs(rebuilt.predict(xs) as tf.Tensor, f.model.predict(xs) as tf.Tensor)).to.equal(0);
    // the export's copy keeps its activation layers
    const keep = FoldedModel.create(model, { fuseActivations: false })!;
    expect(keep.mergedActivations).to.deep.equal([]);
    expect(keep.model.layers.map((l) => l.name)).to.include.members(['dw_relu', 'pw_relu', 'c3_relu']);
    tf.dispose(xs);
    for (const m of [rebuilt, keep, f, model]) m.dispose();
  });

  it('refresh re-reads weights changed after the fold (validation after each epoch)', () => {
    const built = buildArch('mobilenet_v1_0.25', { inputSize: 64, numClasses: 4 });
    const m = built.classifier!;
    const f = FoldedModel.create(m)!;
    randomiseBatchNorms(m, 11);
    const x = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 2);
    const stale = maxAbs(m.predict(x) as tf.Tensor, f.model.predict(x) as tf.Tensor);
    f.refresh();
    const fresh = maxAbs(m.predict(x) as tf.Tensor, f.model.predict(x) as tf.Tensor);
    expect(stale).to.be.greaterThan(1e-3);
    expect(fresh).to.be.lessThan(1e-5);
    x.dispose();
    f.dispose();
    disposeBuilt(built);
  });

  it('a folded model saves and loads with plain tf.loadLayersModel, same outputs', async () => {
    const built = buildArch('mobilenet_v2_0.35', { inputSize: 64, numClasses: 3 });
    randomiseBatchNorms(built.classifier!, 5);
    const f = FoldedModel.create(built.classifier!)!;
    let artifacts: tf.io.ModelArtifacts | undefined;
    await f.model.save({
      save: async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      },
    });
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.layers.some((l) => l.getClassName() === 'BatchNormalization')).to.equal(false);
    const x = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 4);
    expect(maxAbs(loaded.predict(x) as tf.Tensor, built.classifier!.predict(x) as tf.Tensor)).to.be.lessThan(1e-5);
    x.dispose();
    loaded.dispose();
    f.dispose();
    disposeBuilt(built);
  });

  describe('logit parity with the unfolded model (≤ 1e-5) on every backbone layertune builds', () => {
    for (const name of ['resnet18', 'mobilenet_v2']) {
      it(`${name}, torchvision weights (parity fixture)`, () => {
        const before = tf.memory().numTensors;
        const loaded = loadTorchSafetensors(path.join(PARITY, `${name}.safetensors`));
        const io = readSafetensors(path.join(PARITY, `${name}.io.safetensors`));
        const f = FoldedModel.create(loaded.classifier!)!;
        expect(f.model.layers.filter((l) => l.getClassName() === 'BatchNormalization')).to.have.length(0);
        const r = tf.tidy(() => {
          const x = tf.tensor(tensorAsFloat32(io, 'input_nhwc'), io.tensors.get('input_nhwc')!.shape, 'float32');
          const want = loaded.classifier!.predict(x) as tf.Tensor;
          return { err: maxAbs(f.model.predict(x) as tf.Tensor, want), scale: maxAbs(want) };
        });
        console.log(`      ${name}: max |Δlogit| ${r.err.toExponential(2)} (max |logit| ${r.scale.toFixed(2)})`);
        expect(r.scale).to.be.greaterThan(0.1);
        expect(r.err).to.be.at.most(1e-5);
        f.dispose();
        disposeLoaded(loaded);
        expect(tf.memory().numTensors).to.equal(before);
      });
    }

    const builds: Array<[string, Convention, number]> = [
      ['mobilenet_v1_0.25', 'keras', 224],
      ['mobilenet_v1_1.0', 'keras', 128],
      ['mobilenet_v2_1.0', 'keras', 128],
      ['mobilenet_v2_1.0', 'torch', 128],
      ['resnet18', 'torch', 128],
      ['resnet34', 'torch', 96],
      ['resnet50', 'torch', 96],
      ['resnet50', 'keras', 96],
    ];
    for (const [arch, convention, size] of builds) {
      it(`${arch} (${convention}) at ${size}, BN statistics randomised`, () => {
        const before = tf.memory().numTensors;
        const built = buildArch(arch, { convention, inputSize: size, numClasses: 10 });
        randomiseBatchNorms(built.classifier!, 7);
        const bns = built.classifier!.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;
        const f = FoldedModel.create(built.classifier!)!;
        // every BN in these architectures follows a conv
        expect(f.pairs).to.have.length(bns);
        const r = tf.tidy(() => {
          const x = tf.randomUniform([2, size, size, 3], -1, 1, 'float32', 9);
          const want = built.classifier!.predict(x) as tf.Tensor;
          return { err: maxAbs(f.model.predict(x) as tf.Tensor, want), scale: maxAbs(want) };
        });
        console.log(`      ${arch}: max |Δlogit| ${r.err.toExponential(2)} (max |logit| ${r.scale.toExponential(2)})`);
        expect(r.scale).to.be.greaterThan(1e-3);
        expect(r.err).to.be.at.most(1e-5);
        f.dispose();
        disposeBuilt(built);
        expect(tf.memory().numTensors).to.equal(before);
      });
    }
  });
});
