import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { prepare, runJob } from '../../src/job';
import { ConfigError } from '../../src/errors';
import { loadBackbone } from '../../src/models/registry';
import { fileHandler } from '../../src/models/io';
import { attachHead, splitAtStage } from '../../src/models/network';
import { chainGraphHead, checkHeadOnly, isGraphHeadExport, loadFrozenEmbedder, GRAPH_LAYER, type GraphEmbeddingLayer } from '../../src/models/graph-source';
import { inspectBackbone } from '../../src/models/inspect';
import { namedVariables } from '../../src/optim/named';
import { preprocessBatch } from '../../src/data/preprocess';
import { Trainer } from '../../src/train/trainer';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

const GRAPH = path.join(__dirname, '..', 'fixtures', 'models', 'mobilenet_v1_0.25_224_graph');
const quiet = { log: () => undefined };

/** Counts the images the GraphModel is executed on (the costly part head-only training should do once). */
function countGraphImages(): { images: () => number; restore: () => void } {
  const orig = tf.GraphModel.prototype.execute;
  let n = 0;
  tf.GraphModel.prototype.execute = function (this: tf.GraphModel, inputs: unknown, outputs?: unknown) {
    n += (inputs as tf.Tensor).shape[0];
    return orig.call(this, inputs as tf.Tensor, outputs as string);
  } as typeof orig;
  return { images: () => n, restore: () => void (tf.GraphModel.prototype.execute = orig) };
}

describe('models: a GraphModel (@tensorflow-models/mobilenet) as a head-only backbone', function () {
  this.timeout(240_000);
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('loads as a weightless wrapper layer: [0,1] input, pooled 256-d embedding, one stage, headOnly reason', async () => {
    const b = await loadBackbone(GRAPH);
    expect(b.arch).to.equal('mobilenet_v1_graph');
    expect(b.preprocess).to.deep.equal({ kind: 'scale', low: 0, high: 1 });
    expect(b.model.outputs[0].shape).to.deep.equal([null, 256]);
    expect(b.model.trainableWeights).to.have.length(0);
    expect(b.model.weights).to.have.length(0);
    expect(b.stages).to.deep.equal([{ name: 'graph', endLayer: GRAPH_LAYER }]);
    expect(b.headOnly).to.match(/GraphModel .*only a new head can be trained/);
    // the wrapper computes exactly the embedder's embedding
    const e = await loadFrozenEmbedder(GRAPH);
    const x = tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const a = b.model.predict(x) as tf.Tensor;
    const r = e.embed(x);
    expect(tf.tidy(() => a.sub(r).abs().max().dataSync()[0])).to.equal(0);
    tf.dispose([x, a, r]);
    e.dispose();
    // inspect: no backbone parameters, only the head in the default plan
    const i = inspectBackbone(b, { classes: 3 });
    expect(i.params).to.equal(0);
    expect(i.groups.filter((g) => g.params > 0).map((g) => g.stages)).to.deep.equal([['head']]);
    expect(i.head.map((h) => h.className)).to.deep.equal(['Dropout', 'Dense']);
    b.model.dispose();
  });

  it('runJob trains only a new head on it, keeps numTensors flat, and exports a plain head over embeddings that predict chains after the graph', async () => {
    const out = tmpDir('lt-graph-');
    const source = new MemorySource(['red', 'green', 'blue'], 8, 2);
    const res = await runJob(
      { model: { source: GRAPH, dropout: 0 }, train: { epochs: 4, batch: 8 }, backend: 'wasm', out },
      { ...quiet, container: dataContainer(() => source) },
    );
    expect(Object.keys(namedVariables(res.network.train)).sort()).to.deep.equal(['lt_head_dense/bias', 'lt_head_dense/kernel']);
    expect(res.plan.trainable.sort()).to.deep.equal(['lt_head_dense/bias', 'lt_head_dense/kernel']);
    const counts = res.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);
    const losses = res.fit.history.map((h) => h.train.loss);
    expect(losses[losses.length - 1]).to.be.lessThan(losses[0]);
    expect(res.val!.accuracy).to.be.greaterThan(1 / 3);

    // the export: a plain tfjs LayersModel over the 256-d embedding, metadata naming the GraphModel
    const meta = JSON.parse(fs.readFileSync(path.join(res.exportDir, 'metadata.json'), 'utf8'));
    expect(meta.backbone.arch).to.equal('mobilenet_v1_graph');
    expect(path.resolve(meta.backbone.source)).to.equal(path.join(GRAPH, 'model.json'));
    expect(meta.preprocessing).to.deep.equal({ kind: 'scale', low: 0, high: 1 });
    const head = await tf.loadLayersModel(fileHandler(path.join(res.exportDir, 'model.json')));
    expect(head.inputs[0].shape).to.deep.equal([null, 256]);
    expect(head.outputs[0].shape).to.deep.equal([null, 3]);
    expect(isGraphHeadExport(head, meta)).to.equal(true);

    // what a plain tfjs program does (graph embedding, then the head), the chained model predict uses,
    // and the trained network's own softmax agree on the validation images
    const px = await Promise.all(source.val.map((ex) => source.pixels(ex, 224)));
    const all = new Uint8Array(px.length * 224 * 224 * 3);
    px.forEach((p, k) => all.set(p, k * p.length));
    const chained = await chainGraphHead(head, meta);
    const before = tf.memory().numTensors;
    // plain tfjs: the GraphModel's pooled embedding node (what @tensorflow-models/mobilenet's infer(img, true) returns)
    const graph = await tf.loadGraphModel(fileHandler(meta.backbone.source));
    const [plain, viaChain, own] = tf.tidy(() => {
      const x = preprocessBatch(all, px.length, 224, meta.preprocessing);
      const emb = (graph.execute(x, 'module_apply_default/MobilenetV1/Logits/global_pool') as tf.Tensor).reshape([px.length, 256]);
      return [head.predict(emb) as tf.Tensor, chained.predict(x) as tf.Tensor, tf.softmax(res.network.train.predict(x) as tf.Tensor)];
    });
    expect(tf.tidy(() => plain.sub(own).abs().max().dataSync()[0])).to.be.below(1e-5);
    expect(tf.tidy(() => viaChain.sub(own).abs().max().dataSync()[0])).to.be.below(1e-5);
    const argmax = tf.tidy(() => Array.from(own.argMax(-1).dataSync()));
    const correct = argmax.filter((a, i) => a === source.val[i].label).length;
    expect(correct / argmax.length).to.equal(res.val!.accuracy);
    tf.dispose([plain, viaChain, own]);
    graph.dispose();
    expect(tf.memory().numTensors).to.equal(before);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('with its stage cached, the Trainer executes the graph once per image over all epochs', async () => {
    const source = new MemorySource(['a', 'b'], 6, 2);
    const out = tmpDir('lt-graph-cache-');
    const p = await prepare(
      { model: { source: GRAPH }, train: { epochs: 3, batch: 4 }, backend: 'wasm', out },
      { ...quiet, container: dataContainer(() => source) },
    );
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const { prefix, suffix } = splitAtStage(p.network, 0);
    const trainer = new Trainer({
      network: p.network,
      data: p.data,
      vars: p.trainableVars,
      optimizer: opt,
      lr: { factor: () => 1 },
      callbacks: [],
      epochs: 3,
      batch: 4,
      size: 224,
      flip: false,
      seed: 1,
      cacheBytes: 64 * 1024 * 1024,
      spillDir: null,
      monitorNorms: false,
      prefix,
      suffix,
    });
    const spy = countGraphImages();
    try {
      const fit = await trainer.fit();
      expect(fit.history).to.have.length(3);
      expect(spy.images()).to.equal(source.train.length + source.val.length);
    } finally {
      spy.restore();
      opt.dispose();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('releaseGraph frees the GraphModel even after the wrapper was applied again (head, split)', async () => {
    const before = tf.memory().numTensors;
    const b = await loadBackbone(GRAPH);
    const net = attachHead(b, ['a', 'b'], { dropout: 0, seed: 1 });
    splitAtStage(net, 0);
    const layer = b.model.getLayer(GRAPH_LAYER) as GraphEmbeddingLayer;
    layer.releaseGraph();
    layer.releaseGraph();
    for (const w of net.train.weights) w.dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('asking to fine-tune it is refused plainly, naming the field; head settings and the defaults are fine', async () => {
    const b = await loadBackbone(GRAPH);
    const refused = (g: unknown, field: RegExp) => {
      expect(() => checkHeadOnly(b, g))
        .to.throw(ConfigError, field)
        .with.property('message')
        .that.matches(/cannot|inference-only.*only a new head can be trained/);
    };
    refused({ groups: 3 }, /^groups\.groups: groups: 3 /);
    refused({ strategy: 'auto', lrs: [0.001, 0.1] }, /^groups\.lrs: /);
    refused({ strategy: 'layerDecay', lr: 0.1 }, /^groups\.strategy: layerDecay/);
    // a rule aimed at the graph's own nodes or at the wrapper layer
    refused({ rules: [{ match: 'Conv2d_13_pointwise', lr: 0.01 }] }, /^groups\.rules\[0\]: the rule \/Conv2d_13_pointwise\//);
    refused({ rules: [{ match: '^graph', lrMult: 0.1 }] }, /^groups\.rules\[0\]/);
    for (const ok of [
      undefined,
      {},
      { top: 0.05 },
      { groups: 1 },
      { rules: [{ match: 'lt_head', lrMult: 2 }] },
      { rules: [{ match: '.*', decayMult: 0 }] },
      { rules: [{ match: 'Conv2d', freeze: true }] },
    ]) {
      expect(() => checkHeadOnly(b, ok), JSON.stringify(ok)).not.to.throw();
    }
    // a fine-tunable backbone is never refused
    const layers = await loadBackbone(path.join(__dirname, '..', '..', 'models', 'mobilenet_v1_0.25_224'));
    expect(() => checkHeadOnly(layers, { groups: 3 })).not.to.throw();
    layers.model.dispose();
    b.model.dispose();
  });
});
