import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { expect } from 'chai';
import { ConfigError, ModelFormatError } from '../../src/errors';
import { loadFrozenEmbedder, refuseUnfreeze } from '../../src/models/graph-source';

const FIX = path.join(__dirname, '..', 'fixtures', 'models');

/** top1 of the GraphModel (1001 outputs, minus 1 for background) from shared/data/imagenet-samples/labels.tsv */
const EXPECTED: Array<[string, number]> = [
  ['tfjs_converter_demo_cat.jpg', 281],
  ['tfjs_nodegl_demo_dog.jpg', 208],
  ['tfjs_rn_catsmall.jpg', 283],
  ['tfjs_tflite_demo_cat.jpg', 281],
  ['tfjs_tflite_demo_pizza.jpg', 963],
];

async function photo(file: string): Promise<tf.Tensor4D> {
  // shorter side to 224, centre crop, RGB; then [0,1] as TF-Hub image modules expect
  const { data } = await sharp(path.join(FIX, 'photos', file))
    .resize(224, 224, { fit: 'cover' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return tf.tidy(() => tf.tensor(new Uint8Array(data), [1, 224, 224, 3], 'int32').toFloat().div(255) as tf.Tensor4D);
}

describe('models: GraphModel as a frozen embedder (@tensorflow-models/mobilenet)', function () {
  this.timeout(60_000);
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('classifies the tfjs sample photos as labels.tsv says, and embeds to 256-d', async () => {
    const e = await loadFrozenEmbedder(path.join(FIX, 'mobilenet_v1_0.25_224_graph'));
    expect(e).to.include({ kind: 'frozen', arch: 'mobilenet_v1_graph', embeddingSize: 256, inputSize: 224 });
    expect(e.preprocess).to.deep.equal({ kind: 'scale', low: 0, high: 1 });
    const before = tf.memory().numTensors;
    let agree = 0;
    for (const [file, top1] of EXPECTED) {
      const x = await photo(file);
      const logits = e.logits(x);
      const emb = e.embed(x);
      expect(logits.shape).to.deep.equal([1, 1001]);
      expect(emb.shape).to.deep.equal([1, 256]);
      const got = tf.tidy(() => logits.argMax(-1).dataSync()[0]) - 1;
      if (got === top1) agree++;
      tf.dispose([x, logits, emb]);
    }
    expect(tf.memory().numTensors).to.equal(before);
    expect(agree).to.equal(EXPECTED.length);
    e.dispose();
  });

  it('asking to unfreeze it is a ConfigError naming the field and the alternative', async () => {
    const e = await loadFrozenEmbedder(path.join(FIX, 'mobilenet_v1_0.25_224_graph'));
    expect(() => refuseUnfreeze(e, 'groups.unfreeze', 'unfreeze: 3 stages')).to.throw(
      ConfigError,
      /^groups\.unfreeze: unfreeze: 3 stages asks to fine-tune .*inference-only.*only a new head can be trained, on its cached embeddings/,
    );
    e.dispose();
  });

  it('refuses sources that are not GraphModels', async () => {
    let err: unknown;
    try {
      await loadFrozenEmbedder(path.join(__dirname, '..', '..', 'models', 'mobilenet_v1_0.25_224'));
    } catch (x) {
      err = x;
    }
    expect(err).to.be.instanceOf(ModelFormatError);
    expect((err as Error).message).to.match(/model\.json: is a tfjs-layers source, not a tfjs GraphModel; load it with loadBackbone/);
  });
});
