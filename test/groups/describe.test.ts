import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../src/errors';
import { describeLayers, planGroups, roleOf } from '../../src/groups';
import { GroupedOptimizer, namedVariableGrads, namedVariables } from '../../src/optim';
import { readModelArtifacts } from '../../src/models/io';

/** Small conv net with fixed layer names: conv → bn → depthwise → bn → pool → dense head. */
function toyModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false, name: 's0_conv' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 's0_bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.depthwiseConv2d({ kernelSize: 3, name: 's1_dw' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 's1_bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  const y = tf.layers.dense({ units: 2, name: 'head_fc' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: y });
}
const stageOf = (n: string) => Number(/^s(\d)_/.exec(n)?.[1] ?? -1);

describe('describeLayers / namedVariables on real tfjs models', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('roles: kernels, biases, BatchNorm gamma/beta; moving statistics never appear; head after the last stage', () => {
    const m = toyModel();
    const layers = describeLayers(m, stageOf, new Set(['head_fc']));
    expect(layers.map((l) => [l.name, l.stage, l.isHead])).to.deep.equal([
      ['s0_conv', 0, false],
      ['s0_bn', 0, false],
      ['s1_dw', 1, false],
      ['s1_bn', 1, false],
      ['head_fc', 2, true],
    ]);
    expect(layers.flatMap((l) => l.variables.map((v) => `${v.name}:${v.role}`))).to.deep.equal([
      's0_conv/kernel:kernel',
      's0_bn/gamma:norm',
      's0_bn/beta:norm',
      's1_dw/depthwise_kernel:kernel',
      's1_dw/bias:bias',
      's1_bn/gamma:norm',
      's1_bn/beta:norm',
      'head_fc/kernel:kernel',
      'head_fc/bias:bias',
    ]);
    expect(layers[0].variables[0].shape).to.deep.equal([3, 3, 3, 4]);
    m.dispose();
  });

  it('a layer with no stage and not in the head is a ConfigError naming it', () => {
    const m = toyModel();
    expect(() => describeLayers(m, () => -1, new Set(['head_fc']))).to.throw(ConfigError, /^layers\.s0_conv: no backbone stage/);
    m.dispose();
  });

  it('names are stable when a model is built twice (originalName, not the uniquified .name)', () => {
    const a = toyModel();
    const b = toyModel();
    const lb = b.getLayer('s0_conv').trainableWeights[0];
    expect(lb.name).to.not.equal(lb.originalName); // tfjs renamed the second copy
    const da = describeLayers(a, stageOf, new Set(['head_fc']));
    const db = describeLayers(b, stageOf, new Set(['head_fc']));
    expect(db).to.deep.equal(da);
    const va = namedVariables(a);
    const vb = namedVariables(b);
    expect(Object.keys(vb)).to.deep.equal(Object.keys(va));
    expect(vb['s0_conv/kernel']).to.equal(lb.read());
    expect(vb['s0_conv/kernel']).to.not.equal(va['s0_conv/kernel']);
    a.dispose();
    b.dispose();
  });

  it('nested LayersModels are flattened', () => {
    const inner = toyModel();
    const outer = tf.sequential();
    outer.add(inner);
    outer.add(tf.layers.dense({ units: 3, name: 'outer_fc' }));
    const layers = describeLayers(outer, (n) => (n === 'head_fc' ? 2 : stageOf(n)), new Set(['outer_fc']));
    expect(layers.map((l) => l.name)).to.deep.equal(['s0_conv', 's0_bn', 's1_dw', 's1_bn', 'head_fc', 'outer_fc']);
    expect(layers.at(-1)!.stage).to.equal(3);
    outer.dispose();
  });

  it('namedVariableGrads: gradients keyed by our names equal tf.variableGrads; frozen variables are not differentiated', () => {
    const m = toyModel();
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1);
    const all = namedVariables(m);
    const plan = planGroups(describeLayers(m, stageOf, new Set(['head_fc'])), { groups: 2, rules: [{ match: '^s0_', freeze: true }] });
    const trainable = Object.fromEntries(plan.trainable.map((k) => [k, all[k]]));
    const loss = () => tf.mean(tf.square(m.predict(x) as tf.Tensor)) as tf.Scalar;
    const ours = namedVariableGrads(loss, trainable);
    expect(Object.keys(ours.grads).sort()).to.deep.equal(plan.trainable.slice().sort());
    expect(Object.keys(ours.grads)).to.not.include('s0_conv/kernel');
    const ref = tf.variableGrads(loss, Object.values(trainable));
    for (const [k, v] of Object.entries(trainable)) expect(Array.from(ours.grads[k].dataSync())).to.deep.equal(Array.from(ref.grads[v.name].dataSync()));
    // One optimizer step on exactly those: frozen weights unchanged, trainable ones moved.
    const frozenBefore = Array.from(all['s0_conv/kernel'].dataSync());
    const headBefore = Array.from(all['head_fc/kernel'].dataSync());
    const opt = new GroupedOptimizer(plan.groups, { algorithm: plan.algorithm });
    opt.step(ours.grads, trainable);
    expect(Array.from(all['s0_conv/kernel'].dataSync())).to.deep.equal(frozenBefore);
    expect(Array.from(all['head_fc/kernel'].dataSync())).to.not.deep.equal(headBefore);
    opt.dispose();
    tf.dispose([x, ours.value, ref.value, ...Object.values(ours.grads), ...Object.values(ref.grads)]);
    m.dispose();
  });

  it('namedVariableGrads leaves out variables the loss does not depend on', () => {
    const a = tf.variable(tf.tensor1d([1, 2]), true);
    const b = tf.variable(tf.tensor1d([3]), true);
    const { value, grads } = namedVariableGrads(() => tf.sum(tf.square(a)) as tf.Scalar, { used: a, unused: b });
    expect(Object.keys(grads)).to.deep.equal(['used']);
    expect(Array.from(grads.used.dataSync())).to.deep.equal([2, 4]);
    tf.dispose([a, b, value, ...Object.values(grads)]);
  });

  it('roleOf covers the Keras variable names', () => {
    expect(roleOf('Conv2D', 'c/kernel')).to.equal('kernel');
    expect(roleOf('SeparableConv2D', 'c/pointwise_kernel')).to.equal('kernel');
    expect(roleOf('DepthwiseConv2D', 'c/depthwise_bias')).to.equal('bias');
    expect(roleOf('LayerNormalization', 'ln/gamma')).to.equal('norm');
    expect(roleOf('BatchNormalization', 'bn/beta')).to.equal('norm');
  });

  it('the shipped MobileNet v1 0.25: every trainable variable of the manifest, default plan = 3 stepped groups, biases 2x', async () => {
    const file = path.join(__dirname, '..', '..', 'models', 'mobilenet_v1_0.25_224', 'model.json');
    const model = await tf.loadLayersModel(tf.io.fromMemory(readModelArtifacts(file)));
    // Expected from the file itself: every weight except BatchNorm moving statistics.
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')).weightsManifest as { weights: { name: string }[] }[];
    const expected = manifest.flatMap((g) => g.weights.map((w) => w.name)).filter((n) => !/moving_(mean|variance)$/.test(n));
    const stage = (n: string) => (n.startsWith('conv1') ? 0 : Number(/^conv_(?:dw|pw)_(\d+)/.exec(n)?.[1] ?? -1));
    const layers = describeLayers(model, stage, new Set(['conv_preds']));
    const names = layers.flatMap((l) => l.variables.map((v) => v.name));
    expect(names.slice().sort()).to.deep.equal(expected.slice().sort());
    const plan = planGroups(layers);
    expect(plan.layerGroups.map((g) => [g.name, g.lr, g.layers[0], g.layers.at(-1)])).to.deep.equal([
      ['g0', 0.001, 'conv1', 'conv_pw_4_bn'],
      ['g1', 0.01, 'conv_dw_5', 'conv_pw_9_bn'],
      ['g2', 0.1, 'conv_dw_10', 'conv_preds'],
    ]);
    const r = (n: string) => plan.rows.find((x) => x.name === n)!;
    expect(r('conv_preds/bias')).to.include({ lr: 0.2, weightDecay: 0, group: 'g2' });
    expect(r('conv_dw_3/depthwise_kernel')).to.include({ lr: 0.001, weightDecay: 5e-4, role: 'kernel' });
    expect(r('conv_pw_13_bn/gamma')).to.include({ lr: 0.1, weightDecay: 0, role: 'norm' });
    model.dispose();
  });
});
