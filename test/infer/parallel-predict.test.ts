import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/engine/backend';
import { InferencePool } from '../../src/engine/inference-pool';
import { MIN_BATCHES_PER_INFER_THREAD, resolveInferenceThreads } from '../../src/engine/inference-threads';
import { LayersModelExporter } from '../../src/export/exporter';
import { loadsFrom, Prefetch, runInOrder } from '../../src/infer/pipeline';
import { attachHead } from '../../src/models/network';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { classifyFiles, evaluateFolder, loadClassifier, type Classifier } from '../../src/predict';
import { decodeImage } from '../../src/data/decode';
import { preprocessBatch } from '../../src/data/preprocess';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');
const FLOWERS = path.join(ROOT, 'data', 'flowers');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('inference: batches in order with decode ahead (pipeline.ts)', () => {
  it('returns results in batch order although lanes finish out of order', async () => {
    // batch i takes (5 - i) * 3 ms: later batches finish first
    const out = await runInOrder(
      5,
      async (i) => i * 10,
      async (v, i) => {
        await sleep((5 - i) * 3);
        return v + 1;
      },
      { lanes: 3, depth: 2 },
    );
    expect(out).to.deep.equal([1, 11, 21, 31, 41]);
  });

  it('starts loads depth batches ahead of the one being computed, never further', async () => {
    const startedAt: number[] = [];
    let started = -1;
    await runInOrder(
      6,
      async (i) => {
        started = Math.max(started, i);
        return i;
      },
      async (i) => {
        startedAt[i] = started;
        await sleep(1);
        return i;
      },
      { lanes: 1, depth: 2 },
    );
    // while batch i runs, i+1 and i+2 are loading (capped at the last batch, 5)
    expect(startedAt).to.deep.equal([2, 3, 4, 5, 5, 5]);
  });

  it('a failed load is rethrown once, the other loads settle, nothing is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    let ran = 0;
    try {
      const err = await runInOrder(
        8,
        async (i) => {
          if (i === 3) throw new Error('bad image 3');
          return i;
        },
        async (i) => {
          ran++;
          await sleep(2);
          return i;
        },
        { lanes: 2, depth: 3 },
      ).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).to.equal('bad image 3');
      await sleep(20);
      expect(unhandled).to.deep.equal([]);
      // batches after the failure are not computed
      expect(ran).to.be.below(8);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an async generator of batches feeds runInOrder through loadsFrom, in order, with loads ahead', async () => {
    let produced = 0;
    async function* batches() {
      for (let i = 0; i < 5; i++) {
        await sleep(1);
        produced++;
        yield { i, rows: [i, i * i] };
      }
    }
    const out = await runInOrder(5, loadsFrom(batches()), async (b) => b.rows[1] - b.rows[0], { lanes: 2, depth: 2 });
    expect(out).to.deep.equal([0, 0, 2, 6, 12]);
    expect(produced).to.equal(5);
    const short = loadsFrom(batches());
    await Promise.all([0, 1, 2, 3, 4].map((i) => short(i)));
    await short(5).then(
      () => expect.fail('a sixth batch'),
      (e: Error) => expect(e.message).to.equal('the batches ended before batch 5'),
    );
  });

  it('Prefetch refuses an index taken twice', () => {
    const p = new Prefetch(3, async (i) => i, 1);
    void p.get(0);
    expect(() => p.get(0)).to.throw(RangeError, /already taken/);
  });
});

describe('inference threads: the auto rule (pure)', () => {
  it('one thread off wasm; on wasm two only when each thread gets enough batches', () => {
    expect(resolveInferenceThreads('auto', 'cpu', 1000, 2).threads).to.equal(1);
    expect(resolveInferenceThreads('auto', 'tensorflow', 1000, 8).threads).to.equal(1);
    expect(resolveInferenceThreads('auto', 'wasm', 2 * MIN_BATCHES_PER_INFER_THREAD, 2).threads).to.equal(2);
    expect(resolveInferenceThreads('auto', 'wasm', 2 * MIN_BATCHES_PER_INFER_THREAD - 1, 2).threads).to.equal(1);
    // never beyond two on auto, never on one core
    expect(resolveInferenceThreads('auto', 'wasm', 1000, 16).threads).to.equal(2);
    expect(resolveInferenceThreads('auto', 'wasm', 1000, 1).threads).to.equal(1);
  });

  it('an explicit count is honoured on any backend, capped by the batch count', () => {
    expect(resolveInferenceThreads(3, 'cpu', 10, 2)).to.deep.equal({ threads: 3, reason: '3 (--threads)' });
    expect(resolveInferenceThreads(4, 'wasm', 2, 2)).to.deep.equal({ threads: 2, reason: '2 (--threads 4, but 2 batch(es))' });
  });
});

describe('inference: worker threads give the single-thread results', function () {
  this.timeout(300_000);
  let c: Classifier;
  let files: string[];
  let dataDir: string;
  before(async () => {
    await selectBackend('wasm');
    const net = attachHead(await loadLayersFolder(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'), { inputSize: 96 }), CLASSES, { dropout: 0, seed: 3 });
    const dense = net.train.getLayer('lt_head_dense');
    dense.setWeights(dense.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.1, 'float32', 11)));
    const model = path.join(tmpDir('lt-par-pred-'), 'model');
    await new LayersModelExporter().export(net, model, { trainingConfig: {}, metrics: {} });
    c = await loadClassifier(model);
    // 4 images of each class, in a labelled copy for evaluate too
    dataDir = tmpDir('lt-par-eval-');
    files = [];
    for (const cls of CLASSES) {
      fs.mkdirSync(path.join(dataDir, cls));
      for (const f of fs.readdirSync(path.join(FLOWERS, cls)).slice(0, 4)) {
        fs.copyFileSync(path.join(FLOWERS, cls, f), path.join(dataDir, cls, f));
        files.push(path.join(dataDir, cls, f));
      }
    }
  });

  it('predict: 20 images in 5 batches of 4 on 1 and 2 threads: same top-5 order, probabilities within 1e-6, tensors flat', async () => {
    const before = tf.memory().numTensors;
    const one = await classifyFiles(c, files, { topK: 5, batch: 4, threads: 1 });
    const mid = tf.memory().numTensors;
    const two = await classifyFiles(c, files, { topK: 5, batch: 4, threads: 2 });
    expect(tf.memory().numTensors).to.equal(before);
    expect(mid).to.equal(before);
    expect(one.summary.threads).to.equal(1);
    expect(two.summary.threads).to.equal(2);
    expect(two.predictions.map((p) => p.file)).to.deep.equal(files);
    let spread = 0;
    two.predictions.forEach((p, i) => {
      expect(p.top.map((t) => t.index)).to.deep.equal(one.predictions[i].top.map((t) => t.index));
      p.top.forEach((t, k) => expect(t.probability).to.be.closeTo(one.predictions[i].top[k].probability, 1e-6));
      spread = Math.max(spread, p.top[0].probability - p.top[4].probability);
    });
    // a head that says something, so a mix-up of rows would show
    expect(spread).to.be.greaterThan(0.05);
    // and the rows really belong to their files: a hand-run forward pass of the last batch (images 16..19)
    const px = await Promise.all(files.slice(16).map((f) => decodeImage(f, { size: c.size, crop: c.crop })));
    const all = new Uint8Array(px.length * px[0].length);
    px.forEach((p, k) => all.set(p, k * p.length));
    const want = tf.tidy(() => (c.inference!.predict(preprocessBatch(all, 4, c.size, c.preprocess)) as tf.Tensor).arraySync() as number[][]);
    want.forEach((row, j) => {
      const got = two.predictions[16 + j].top[0];
      expect(got.probability).to.be.closeTo(row[got.index], 1e-6);
    });
    for (const s of [one.summary, two.summary]) {
      expect(s.images).to.equal(20);
      expect(s.imagesPerSecond).to.be.closeTo(s.images / s.seconds, 1e-9);
    }
  });

  it('evaluate: same confusion matrix on 1 and 2 threads', async () => {
    const a = await evaluateFolder(c, dataDir, { batch: 4, threads: 1 });
    const b = await evaluateFolder(c, dataDir, { batch: 4, threads: 2 });
    expect(b.summary.threads).to.equal(2);
    expect(b.n).to.equal(20);
    expect(b.confusion).to.deep.equal(a.confusion);
    expect(b.accuracy).to.equal(a.accuracy);
  });

  it("the pool keeps each worker's tensor count flat across batches, and takes new weights without a restart", async () => {
    const model = c.inference!;
    const pool = await InferencePool.create(model, { threads: 2, size: c.size, preprocess: c.preprocess });
    try {
      const x = () => tf.tidy(() => tf.randomUniform([2, c.size, c.size, 3], -1, 1, 'float32', 5).dataSync() as Float32Array);
      const shape = [2, c.size, c.size, 3];
      const first = await pool.run({ x: x(), shape });
      const counts: number[][] = [];
      for (let i = 0; i < 6; i++) {
        await pool.run({ x: x(), shape });
        counts.push(pool.workerTensors);
      }
      expect(counts.every((n) => n.join() === counts[counts.length - 1].join())).to.equal(true);
      // same input, new weights (the head scaled by 3): the outputs follow the model given to setWeights
      const dense = model.getLayer('lt_head_dense');
      const old = dense.getWeights().map((w) => w.clone());
      const scaled = old.map((w) => tf.mul(w, 3));
      dense.setWeights(scaled);
      await pool.setWeights(model);
      const after = await pool.run({ x: x(), shape });
      const want = tf.tidy(() => (model.predict(tf.tensor(x(), shape)) as tf.Tensor).dataSync() as Float32Array);
      let moved = 0;
      for (let i = 0; i < want.length; i++) {
        expect(after[i]).to.be.closeTo(want[i], 1e-6);
        moved = Math.max(moved, Math.abs(after[i] - first[i]));
      }
      expect(moved).to.be.greaterThan(1e-3);
      dense.setWeights(old);
      tf.dispose([...scaled, ...old]);
    } finally {
      await pool.dispose();
    }
  });
});
