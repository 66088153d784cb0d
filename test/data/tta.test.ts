import { expect } from 'chai';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { decodeImage, flipHorizontal } from '../../src/data/decode';
import { cutRect } from '../../src/data/eval-crop';
import { preprocessBatch } from '../../src/data/preprocess';
import { meanOverViews, ttaViews } from '../../src/data/tta';
import type { Preprocess } from '../../src/models/types';
import { type Classifier, predictFiles } from '../../src/predict';
import { noisePng, tmpDir } from '../helpers/images';

const PRE: Preprocess = { kind: 'scale', low: -1, high: 1 };
const SIZE = 20;

/** Softmax over global average pooling: a mirror image pools to the same features, so flips cannot change it. */
function symmetricModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 4, kernelSize: 1, kernelInitializer: tf.initializers.randomNormal({ seed: 1 }) }));
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.randomNormal({ seed: 2 }) }));
  return m;
}

/** Softmax over every pixel: position matters, so the mirror scores differently. */
function generalModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ inputShape: [SIZE, SIZE, 3] }));
  m.add(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.randomNormal({ seed: 3, stddev: 0.05 }) }));
  return m;
}

const classifier = (model: tf.LayersModel, over: Partial<Classifier>): Classifier => ({
  model,
  labels: ['a', 'b', 'c'],
  size: SIZE,
  preprocess: PRE,
  crop: 'center',
  cropPct: 1,
  tta: 'none',
  ...over,
});

function scores(model: tf.LayersModel, views: Uint8Array[]): number[][] {
  const all = new Uint8Array(views.length * SIZE * SIZE * 3);
  views.forEach((v, i) => all.set(v, i * v.length));
  return tf.tidy(() => (model.predict(preprocessBatch(all, views.length, SIZE, PRE)) as tf.Tensor).arraySync() as number[][]);
}

describe('test-time augmentation (--tta flip | crops)', () => {
  const dir = tmpDir('lt-tta-');
  let files: string[];
  let raws: Uint8Array[];
  before(async () => {
    await tf.setBackend('cpu');
    files = [path.join(dir, 'a.png'), path.join(dir, 'b.png'), path.join(dir, 'c.png')];
    // 40×24: at size 20 and cropPct 20/24 the five-crop base is the photo itself (short side 24), so views are exact windows
    raws = await Promise.all(files.map((f, i) => noisePng(f, 40, 24, 5 + i)));
  });

  it('the mean over views is the per-class mean of each image’s rows (hand numbers)', () => {
    const p = Float32Array.from([0.2, 0.8, 0.6, 0.4, 1, 0, 0.5, 0.5]);
    expect(Array.from(meanOverViews(p, 0, 2, 2)).map((v) => Number(v.toFixed(6)))).to.deep.equal([0.4, 0.6]);
    expect(Array.from(meanOverViews(p, 1, 2, 2)).map((v) => Number(v.toFixed(6)))).to.deep.equal([0.75, 0.25]);
  });

  it('flip on a mirror-symmetric model gives the same probabilities as no TTA', async () => {
    const m = symmetricModel();
    const plain = await predictFiles(classifier(m, {}), files, 3);
    const flip = await predictFiles(classifier(m, { tta: 'flip' }), files, 3);
    plain.forEach((p, i) => p.top.forEach((t, k) => expect(flip[i].top[k].probability).to.be.closeTo(t.probability, 1e-6)));
    m.dispose();
  });

  it('flip on a general model is the hand average of the image and its mirror; it differs from either alone', async () => {
    const m = generalModel();
    const got = await predictFiles(classifier(m, { tta: 'flip' }), files, 3);
    for (let i = 0; i < files.length; i++) {
      const px = await decodeImage(files[i], { size: SIZE, crop: 'center' });
      const [a, b] = scores(m, [px, flipHorizontal(px, SIZE)]);
      expect(Math.max(...a.map((v, j) => Math.abs(v - b[j])))).to.be.greaterThan(1e-3);
      for (const t of got[i].top) expect(t.probability).to.be.closeTo((a[t.index] + b[t.index]) / 2, 1e-6);
    }
    m.dispose();
  });

  it('crops: the five views are FiveCrop windows (corners, then centre) and the result is their mean', async () => {
    const m = generalModel();
    const crop = { mode: 'center' as const, cropPct: SIZE / 24 };
    const views = await ttaViews(files[0], SIZE, crop, 'crops');
    // hand-placed windows in the 40×24 photo: corners, and the centre at top 2, left 10
    const rects: Array<[number, number, number, number]> = [
      [0, 0, 20, 20],
      [0, 20, 20, 20],
      [4, 0, 20, 20],
      [4, 20, 20, 20],
      [2, 10, 20, 20],
    ];
    rects.forEach((r, k) => expect(Buffer.from(views[k]).equals(Buffer.from(cutRect(raws[0], 40, r))), `view ${k}`).to.equal(true));
    // under `center` the fifth view is the single-crop input itself
    expect(Buffer.from(views[4]).equals(Buffer.from(await decodeImage(files[0], { size: SIZE, crop: 'center', cropPct: SIZE / 24 })))).to.equal(true);
    const got = await predictFiles(classifier(m, { tta: 'crops', cropPct: SIZE / 24 }), files, 3, 7);
    for (let i = 0; i < files.length; i++) {
      const s = scores(
        m,
        rects.map((r) => cutRect(raws[i], 40, r)),
      );
      for (const t of got[i].top) expect(t.probability).to.be.closeTo(s.reduce((acc, row) => acc + row[t.index], 0) / 5, 1e-6);
    }
    m.dispose();
  });

  it('no tensors leak across repeated TTA passes', async () => {
    const m = generalModel();
    await predictFiles(classifier(m, { tta: 'crops' }), files, 3);
    const before = tf.memory().numTensors;
    for (let r = 0; r < 3; r++)
      for (const tta of ['none', 'flip', 'crops'] as const) await predictFiles(classifier(m, { tta, crop: r % 2 ? 'fill' : 'center' }), files, 3, 4);
    expect(tf.memory().numTensors).to.equal(before);
    m.dispose();
  });
});
