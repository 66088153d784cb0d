import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { parseOrThrow } from '../../src/config/parse';
import { type Affine, boxAffine, centreOf, composeAffine, drawAffine, inverseAffine, reflectCoord, resampleAffine } from '../../src/data/affine';
import { rectToBox } from '../../src/data/augment';
import { AffineSchema } from '../../src/data/augment-schema';
import { Rng } from '../../src/data/rng';

const none = { angle: 0, translate: [0, 0] as [number, number], scale: 1, shear: [0, 0] as [number, number] };
/** A size×size one-channel image whose pixels are all different: v(y, x) = 10y + x + 1. */
const grid = (size: number) => Array.from({ length: size }, (_, y) => Array.from({ length: size }, (_, x) => 10 * y + x + 1));
const asTensor = (rows: number[][][]) => tf.tensor4d(rows.flat(2), [rows.length, rows[0].length, rows[0].length, 1]);
const read = (t: tf.Tensor4D, k = 0) => tf.tidy(() => t.slice([k, 0, 0, 0], [1, -1, -1, 1]).squeeze([0, 3]).arraySync() as number[][]);

describe('affine resampling (one bilinear read per pixel, reflect padding)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('identity parameters give the input exactly, for every image of a batch', () => {
    const imgs = [grid(5), grid(5).map((r) => r.map((v) => v * 3))];
    const x = asTensor(imgs);
    const m = inverseAffine(centreOf(5), none);
    expect(m.map((v) => v + 0)).to.deep.equal([1, 0, 0, 0, 1, 0]); // + 0 reads −0 as 0
    const out = resampleAffine(x, [m, m], { kind: 'reflect' });
    expect(read(out, 0)).to.deep.equal(imgs[0]);
    expect(read(out, 1)).to.deep.equal(imgs[1]);
    tf.dispose([x, out]);
  });

  it('a 90° turn (clockwise, as torchvision F.affine) equals the hand-rotated array, exactly', () => {
    const g = grid(4);
    const x = asTensor([g]);
    const out = resampleAffine(x, [inverseAffine(centreOf(4), { ...none, angle: 90 })], { kind: 'reflect' });
    // clockwise: the left column, read bottom to top, becomes the top row
    const hand = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => g[3 - j][i]));
    expect(read(out)).to.deep.equal(hand);
    tf.dispose([x, out]);
  });

  it('a shift by 1 px right reads the column left of each pixel; the first column reflects about pixel 0', () => {
    const g = grid(4);
    const x = asTensor([g]);
    const out = resampleAffine(x, [inverseAffine(centreOf(4), { ...none, translate: [1, 0] })], { kind: 'reflect' });
    // column −1 mirrors to column 1: [b, a, b, c] in every row
    expect(read(out)).to.deep.equal(g.map((r) => [r[1], r[0], r[1], r[2]]));
    // down by 2: row −1 → row 1, row −2 → row 2
    const down = resampleAffine(x, [inverseAffine(centreOf(4), { ...none, translate: [0, 2] })], { kind: 'reflect' });
    expect(read(down)).to.deep.equal([g[2], g[1], g[0], g[1]]);
    tf.dispose([x, out, down]);
  });

  it('constant padding fills what falls outside, weighting the fill by the share of the read that does', () => {
    const g = grid(3);
    const x = asTensor([g]);
    const out = resampleAffine(x, [[1, 0, -0.5, 0, 1, 0] as Affine], { kind: 'constant', fill: [100] });
    const got = read(out);
    // column 0 reads x = −0.5: half pixel 0, half the fill; the others read halfway between two pixels
    for (let y = 0; y < 3; y++) {
      expect(got[y][0]).to.be.closeTo(0.5 * g[y][0] + 50, 1e-4);
      expect(got[y][1]).to.be.closeTo((g[y][0] + g[y][1]) / 2, 1e-4);
      expect(got[y][2]).to.be.closeTo((g[y][1] + g[y][2]) / 2, 1e-4);
    }
    tf.dispose([x, out]);
  });

  it('bilinear is exact on a linear ramp: a 2× zoom about the centre reads p(c + (x − c)/2)', () => {
    const size = 6;
    const ramp = Array.from({ length: size }, (_, y) => Array.from({ length: size }, (_, x) => 7 * y + 3 * x));
    const x = asTensor([ramp]);
    const out = resampleAffine(x, [inverseAffine(centreOf(size), { ...none, scale: 2 })], { kind: 'reflect' });
    const c = (size - 1) / 2;
    const got = read(out);
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) expect(got[i][j]).to.be.closeTo(7 * (c + (i - c) / 2) + 3 * (c + (j - c) / 2), 1e-4);
    tf.dispose([x, out]);
  });

  it('a shear along x by s degrees about the origin: output (x, y) reads (x + tan(s)·y, y), as torchvision', () => {
    const m = inverseAffine([0, 0], { ...none, shear: [20, 0] });
    // output (x, y) reads (x + tan(20°)·y, y)
    expect(m[0]).to.be.closeTo(1, 1e-12);
    expect(m[1]).to.be.closeTo(Math.tan((20 * Math.PI) / 180), 1e-12);
    expect(m[3]).to.be.closeTo(0, 1e-12);
    expect(m[4]).to.be.closeTo(1, 1e-12);
  });

  it('a crop box composes with the affine: the box map matches cropAndResize', () => {
    const size = 5;
    const img = grid(size).map((r) => r.map((v) => v * 2));
    const x = asTensor([img]);
    const box = rectToBox([1, 0, 3, 4], size, true, false);
    const ours = resampleAffine(x, [composeAffine(boxAffine(box, size), inverseAffine(centreOf(size), none))], { kind: 'reflect' });
    const theirs = tf.image.cropAndResize(x, tf.tensor2d([box]), tf.tensor1d([0], 'int32'), [size, size], 'bilinear');
    const a = read(ours);
    const b = read(theirs as tf.Tensor4D);
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) expect(a[i][j]).to.be.closeTo(b[i][j], 1e-4);
    tf.dispose([x, ours, theirs]);
  });

  it('reflectCoord mirrors about the outer pixel centres', () => {
    expect([-1, -2, 4, 5, 7, 2.5, -0.5].map((c) => reflectCoord(c, 5))).to.deep.equal([1, 2, 4, 3, 1, 2.5, 0.5]);
    expect(reflectCoord(3, 1)).to.equal(0);
  });

  it("draws follow torchvision RandomAffine's ranges, reproducibly per seed", () => {
    const cfg = parseOrThrow(AffineSchema, { degrees: 15, translate: [0.1, 0.2], scale: [0.9, 1.1], shear: 5, p: 0.7 }, 'affine');
    const run = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 300 }, () => drawAffine(rng, cfg, 50));
    };
    const a = run(1);
    expect(run(1)).to.deep.equal(a);
    expect(run(2)).to.not.deep.equal(a);
    const applied = a.filter((d) => d !== null);
    expect(applied.length).to.be.within(180, 240); // p 0.7 of 300
    for (const d of applied) {
      expect(Math.abs(d.angle)).to.be.at.most(15);
      expect(Number.isInteger(d.translate[0]) && Math.abs(d.translate[0]) <= 5).to.equal(true);
      expect(Number.isInteger(d.translate[1]) && Math.abs(d.translate[1]) <= 10).to.equal(true);
      expect(d.scale).to.be.within(0.9, 1.1);
      expect(Math.abs(d.shear[0])).to.be.at.most(5);
      expect(d.shear[1]).to.equal(0);
    }
  });

  it('leaves no tensors behind', () => {
    const x = asTensor([grid(4)]);
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) resampleAffine(x, [inverseAffine(centreOf(4), { ...none, angle: 30 * i })], { kind: 'reflect' }).dispose();
    expect(tf.memory().numTensors).to.equal(n0);
    x.dispose();
  });
});
