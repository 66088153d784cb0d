import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import * as ops from '../../src/data/color-ops';

/** torchvision's outputs on three 4×4 images (scripts/gen-augment-reference.py); the geometric cases are tested in rand-augment.test.ts. */
interface Fixture {
  shape: [number, number, number, number];
  images: number[];
  cases: Array<{ op: string; param: number; dtype: 'float' | 'uint8'; out: number[] }>;
}
const fixture: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'augment-ops.json'), 'utf8'));
const n = fixture.shape[0];
const each = (v: number) => Array.from({ length: n }, () => v);

/** Our op on the 0..255 images, read back in torchvision's units (float ops: [0, 1]; uint8 ops: 0..255). */
function ours(op: string, param: number, dtype: 'float' | 'uint8'): Float32Array {
  const x = tf.tensor4d(fixture.images, fixture.shape);
  const run: Record<string, () => tf.Tensor4D> = {
    hue: () => ops.adjustHue(x, each(param)),
    brightness: () => ops.brightness(x, each(param)),
    color: () => ops.saturation(x, each(param)),
    contrast: () => ops.contrast(x, each(param)),
    sharpness: () => ops.sharpness(x, each(param)),
    // torchvision's float threshold is in [0, 1]; ours is in pixel units
    solarize: () => ops.solarize(x, each(param * 255)),
    autocontrast: () => ops.autocontrast(x),
    posterize: () => ops.posterize(x, each(param)),
    equalize: () => ops.equalize(x),
  };
  const out = run[op]();
  const v = (dtype === 'float' ? tf.div(out, 255) : out).dataSync() as Float32Array;
  tf.dispose([x, out]);
  return Float32Array.from(v);
}

describe('colour and pixel ops match torchvision.transforms.functional (fixture from Debian torchvision)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  const pixelOps = new Set(['hue', 'brightness', 'color', 'contrast', 'sharpness', 'solarize', 'autocontrast', 'posterize', 'equalize']);
  for (const c of fixture.cases.filter((k) => pixelOps.has(k.op))) {
    it(`${c.op}(${c.param}) on ${c.dtype} images, ${c.dtype === 'uint8' ? 'exactly' : 'within 1e-5'}`, () => {
      const got = ours(c.op, c.param, c.dtype);
      expect(got.length).to.equal(c.out.length);
      let worst = 0;
      got.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - c.out[i]));
      });
      // uint8 ops are integer: exact
      expect(worst).to.be.at.most(c.dtype === 'uint8' ? 0 : 1e-5);
    });
  }

  it('hue 0 and a whole turn give the input back (to float32 rounding), and no tensors leak', () => {
    const x = tf.tensor4d(fixture.images, fixture.shape);
    const n0 = tf.memory().numTensors;
    for (const h of [0, 1]) {
      const y = ops.adjustHue(x, each(h));
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(y, x))));
      expect(d.dataSync()[0]).to.be.below(1e-3);
      tf.dispose([y, d]);
    }
    expect(tf.memory().numTensors).to.equal(n0);
    x.dispose();
  });

  it('each image gets its own parameter', () => {
    const x = tf.tensor4d(fixture.images, fixture.shape);
    const params = [0.5, 1, 1.5];
    const all = ops.brightness(x, params).dataSync();
    const per = fixture.shape[1] * fixture.shape[2] * 3;
    params.forEach((p, k) => {
      for (let i = 0; i < per; i++) expect(all[k * per + i]).to.be.closeTo(Math.min(255, fixture.images[k * per + i] * p), 1e-3);
    });
    x.dispose();
  });
});
