import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { parseOrThrow } from '../../src/config/parse';
import { centreOf, inverseAffine, resampleAffine } from '../../src/data/affine';
import { RandAugmentSchema } from '../../src/data/augment-schema';
import * as ops from '../../src/data/color-ops';
import { applyOps, drawRandAugment, drawTrivialAugment, magnitudeAt, OPS, type OpDraw, opAffine, type OpName } from '../../src/data/rand-augment';
import { Rng } from '../../src/data/rng';

interface Fixture {
  shape: [number, number, number, number];
  images: number[];
  cases: Array<{ op: string; param: number; dtype: 'float' | 'uint8'; out: number[] }>;
  spaces: Record<'randAugment' | 'trivialAugmentWide', Record<string, { signed: boolean; bins: number[] }>>;
}
const fixture: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'augment-ops.json'), 'utf8'));
/** torchvision's op names → ours. */
const NAME: Record<string, OpName> = Object.fromEntries(OPS.map((o) => [o === 'autocontrast' ? 'AutoContrast' : o.charAt(0).toUpperCase() + o.slice(1), o]));
const images = () => tf.tensor4d(fixture.images, fixture.shape);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};

describe('RandAugment and TrivialAugmentWide (batched, per-image ops)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it("uses torchvision's op list, signs and magnitude bins (RandAugment at 224 px, TrivialAugmentWide)", () => {
    for (const [space, wide] of [
      ['randAugment', false],
      ['trivialAugmentWide', true],
    ] as const) {
      const tv = fixture.spaces[space];
      expect(Object.keys(tv).map((k) => NAME[k])).to.deep.equal([...OPS]);
      for (const [name, { bins }] of Object.entries(tv)) {
        if (bins.length === 1) continue; // no magnitude
        bins.forEach((b, k) => expect(magnitudeAt(NAME[name], k / 30, 224, wide), `${space} ${name} bin ${k}`).to.be.closeTo(b, 1e-5));
      }
    }
  });

  const geometric = fixture.cases.filter((c) => ['shearX', 'shearY', 'translateX', 'translateY', 'rotate', 'affine'].includes(c.op));
  for (const c of geometric) {
    it(`${c.op}(${c.param}) matches torchvision's F.affine/F.rotate (bilinear, zeros outside) within 1e-5`, () => {
      const x = tf.div(images(), 255) as tf.Tensor4D;
      const size = fixture.shape[1];
      const m =
        c.op === 'affine'
          ? inverseAffine(centreOf(size), { angle: 17, translate: [1, -2], scale: 1.1, shear: [8, 0] })
          : opAffine({ op: c.op as OpName, magnitude: c.param }, size);
      const out = resampleAffine(
        x,
        Array.from({ length: fixture.shape[0] }, () => m),
        { kind: 'constant', fill: [0, 0, 0] },
      );
      expect(maxDiff(out.dataSync(), c.out)).to.be.at.most(1e-5);
      tf.dispose([x, out]);
    });
  }

  it('a 90° rotate op turns counter-clockwise (F.rotate), a whole-pixel shift copies exactly and fills with the mean', () => {
    const size = 4;
    const v = (y: number, x: number) => 10 * y + x;
    const px = Array.from({ length: size * size * 3 }, (_, i) => v(Math.floor(i / 3 / size), Math.floor(i / 3) % size));
    const x = tf.tensor4d(px, [1, size, size, 3]);
    const rot = applyOps(x, [[{ op: 'rotate', magnitude: 90 }]], size);
    const r = rot.dataSync();
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) expect(r[(i * size + j) * 3]).to.equal(v(j, size - 1 - i)); // np.rot90
    const sh = applyOps(x, [[{ op: 'translateX', magnitude: 1.7 }]], size).dataSync(); // truncated to 1 px
    for (let i = 0; i < size; i++)
      for (let j = 0; j < size; j++) for (let c = 0; c < 3; c++) expect(sh[(i * size + j) * 3 + c]).to.equal(j === 0 ? [124, 116, 104][c] : v(i, j - 1));
    tf.dispose([x, rot]);
  });

  it('a batch where every image drew a different op gives each image what its op alone gives', () => {
    const size = 4;
    const base = fixture.images.slice(0, size * size * 3);
    const n = OPS.length;
    const draws: OpDraw[][] = OPS.map((op) => [{ op, magnitude: op === 'posterize' ? 3 : op === 'solarize' ? 128 : 0.4 }]);
    const x = tf.tensor4d(Array.from({ length: n }, () => base).flat(), [n, size, size, 3]);
    const n0 = tf.memory().numTensors;
    const out = applyOps(x, draws, size);
    expect(tf.memory().numTensors).to.equal(n0 + 1);
    const one = tf.tensor4d(base, [1, size, size, 3]);
    const alone = (d: OpDraw): tf.Tensor4D => {
      const f = [1 + d.magnitude];
      switch (d.op) {
        case 'brightness':
          return ops.brightness(one, f);
        case 'color':
          return ops.saturation(one, f);
        case 'contrast':
          return ops.contrast(one, f);
        case 'sharpness':
          return ops.sharpness(one, f);
        case 'posterize':
          return ops.posterize(one, [3]);
        case 'solarize':
          return ops.solarize(one, [128]);
        case 'autocontrast':
          return ops.autocontrast(one);
        case 'equalize':
          return ops.equalize(one);
        case 'identity':
          return one.clone();
        default:
          return resampleAffine(one, [opAffine(d, size)], { kind: 'constant', fill: [124, 116, 104] });
      }
    };
    const per = size * size * 3;
    const all = out.dataSync();
    draws.forEach((d, k) => {
      const ref = alone(d[0]);
      expect(maxDiff(all.subarray(k * per, (k + 1) * per), ref.dataSync()), d[0].op).to.equal(0);
      ref.dispose();
    });
    // two slots: the second op runs on the output of the first
    const two = applyOps(
      one,
      [
        [
          { op: 'brightness', magnitude: 0.5 },
          { op: 'solarize', magnitude: 200 },
        ],
      ],
      size,
    );
    const b = ops.brightness(one, [1.5]);
    const s = ops.solarize(b, [200]);
    expect(maxDiff(two.dataSync(), s.dataSync())).to.equal(0);
    tf.dispose([x, out, one, two, b, s]);
  });

  it("RandAugment draws n ops per image with timm's magnitude noise, reproducibly per seed", () => {
    const cfg = parseOrThrow(RandAugmentSchema, { n: 2, m: 9, mstd: 0.5 }, 'randAugment');
    const run = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 2000 }, () => drawRandAugment(rng, cfg, 224));
    };
    const a = run(1);
    expect(run(1)).to.deep.equal(a);
    expect(run(2)).to.not.deep.equal(a);
    expect(a.every((d) => d.length === 2)).to.equal(true);
    const flat = a.flat();
    const count = (op: OpName) => flat.filter((d) => d.op === op).length;
    for (const op of OPS) expect(count(op), op).to.be.within(200, 380); // 4000 / 14 ≈ 286
    // rotate: 30° × clip(9 + 0.5·N(0, 1), 0, 10)/10, either sign
    const rot = flat.filter((d) => d.op === 'rotate').map((d) => d.magnitude);
    expect(rot.some((r) => r < 0) && rot.some((r) => r > 0)).to.equal(true);
    for (const r of rot) expect(Math.abs(r)).to.be.within(0, 30);
    const mean = rot.reduce((s, r) => s + Math.abs(r), 0) / rot.length;
    expect(mean).to.be.closeTo(27, 0.6);
    // unsigned ops keep their sign; without mstd every magnitude is exactly m/10 of the range
    expect(flat.filter((d) => d.op === 'solarize').every((d) => d.magnitude >= 0)).to.equal(true);
    const fixed = drawRandAugment(new Rng(3), parseOrThrow(RandAugmentSchema, { n: 14, m: 5, mstd: 0 }, 'randAugment'), 224);
    for (const d of fixed) expect(Math.abs(d.magnitude)).to.be.closeTo(magnitudeAt(d.op, 0.5, 224, false), 1e-12);
  });

  it('TrivialAugmentWide draws one op at one of 31 magnitudes', () => {
    const rng = new Rng(9);
    const draws = Array.from({ length: 3000 }, () => drawTrivialAugment(rng, 224));
    expect(draws.every((d) => d.length === 1)).to.equal(true);
    const shears = new Set(draws.filter((d) => d[0].op === 'shearX').map((d) => Math.abs(d[0].magnitude).toFixed(6)));
    const bins = new Set(fixture.spaces.trivialAugmentWide.ShearX.bins.map((b) => b.toFixed(6)));
    for (const s of shears) expect(bins.has(s), s).to.equal(true);
    expect(shears.size).to.be.above(20);
    expect(draws.filter((d) => d[0].op === 'equalize').every((d) => d[0].magnitude === 0)).to.equal(true);
  });
});
