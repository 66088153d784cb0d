import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { decodeImage } from '../../src/data/decode';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');

/** The README's plain-tfjs recipe, run as written, so the documented code cannot drift from what predict does. */
function readmeRecipe(): (img: tf.Tensor3D, meta: unknown) => tf.Tensor3D {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /```js\n([^`]*function evalInput[^`]*)```/.exec(readme);
  expect(block, 'README has the evalInput recipe').to.not.equal(null);
  return new Function('tf', `${block![1].replace(/^ {2}/gm, '')}\nreturn evalInput;`)(tf);
}

async function upright(file: string): Promise<tf.Tensor3D> {
  const { data, info } = await sharp(file).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return tf.tensor3d(Float32Array.from(data), [info.height, info.width, 3]);
}

describe("the README's evaluation-crop recipe for plain tfjs", () => {
  const evalInput = readmeRecipe();
  before(() => tf.setBackend('cpu'));

  it('cuts the same window as predict when no resampling is involved (exact)', async () => {
    const f = path.join(tmpDir('lt-recipe-'), 'n.png');
    const px = new Uint8Array(40 * 24 * 3).map((_, i) => (i * 53) % 256);
    await sharp(px, { raw: { width: 40, height: 24, channels: 3 } })
      .png()
      .toFile(f);
    const img = await upright(f);
    const got = tf.tidy(() => Array.from(evalInput(img, { inputSize: 21, evalCrop: { mode: 'center', cropPct: 0.875 } }).dataSync()));
    img.dispose();
    expect(got).to.deep.equal(Array.from(await decodeImage(f, { size: 21, crop: 'center', cropPct: 0.875 })));
  });

  it('on real photos it matches predict up to resampling differences (tfjs bilinear against libvips)', async () => {
    const flowers = path.join(ROOT, 'data', 'flowers', 'rose');
    for (const name of fs.readdirSync(flowers).slice(0, 3)) {
      const f = path.join(flowers, name);
      const img = await upright(f);
      const got = tf.tidy(() => evalInput(img, { inputSize: 96, evalCrop: { mode: 'center', cropPct: 0.875 } }).dataSync());
      img.dispose();
      const want = await decodeImage(f, { size: 96, crop: 'center', cropPct: 0.875 });
      const squashed = await decodeImage(f, { size: 96 });
      const wider = await decodeImage(f, { size: 96, crop: 'center', cropPct: 0.8 });
      const mad = (a: ArrayLike<number>) => {
        let sum = 0;
        for (let i = 0; i < a.length; i++) sum += Math.abs(got[i] - a[i]);
        return sum / a.length;
      };
      expect(got.length).to.equal(want.length);
      // tfjs's bilinear resize does not widen its filter when shrinking (libvips does), which costs a few levels;
      // the wrong crop (fill, or cropPct 0.8) is several times further
      const right = mad(want);
      expect(right, name).to.be.below(10);
      expect(right * 2, name).to.be.below(Math.min(mad(squashed), mad(wider)));
    }
  });
});
