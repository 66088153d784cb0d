import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { parseOrThrow } from '../../src/config/parse';
import { AugmentSchema } from '../../src/data/augment-schema';
import { BatchAugmenter, describeAugment, drawCutmixRect, drawErasing, drawResizedCrop, type ImageDraw, rectToBox } from '../../src/data/augment';
import { boxAffine, centreOf, composeAffine, inverseAffine } from '../../src/data/affine';
import { rawBatches } from '../../src/data/batches';
import { adjustHue } from '../../src/data/color-ops';
import { Rng } from '../../src/data/rng';
import type { Preprocess } from '../../src/models/types';
import { MemorySource } from '../helpers/memory-source';

/** Pixel values stay as they are, so outputs read in the same units as the hand computations. */
const IDENTITY: Preprocess = { kind: 'scale', low: 0, high: 255 };
const cfg = (a: Record<string, unknown> = {}) => parseOrThrow(AugmentSchema, a, 'augment');

/** A 4×4 image whose three channels are all p(y, x) = 4y + x + offset. */
function ramp(offset = 0, size = 4): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) px.fill(4 * y + x + offset, (y * size + x) * 3, (y * size + x) * 3 + 3);
  return px;
}
const plain = (box: ImageDraw['box'], over: Partial<ImageDraw> = {}): ImageDraw => ({
  box,
  brightness: 1,
  contrast: 1,
  saturation: 1,
  gray: false,
  erase: null,
  ...over,
});
/** Channel 0 of image k as rows. */
const channel0 = (t: tf.Tensor4D, k = 0) =>
  tf.tidy(
    () =>
      t
        .slice([k, 0, 0, 0], [1, -1, -1, 1])
        .reshape([t.shape[1] as number, t.shape[2] as number])
        .arraySync() as number[][],
  );
const full: ImageDraw['box'] = [0, 0, 1, 1];

describe('batched augmentation (tfjs ops)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('a known crop box gives the known pixels: rows 1–2, columns 1–2 of a ramp, resized to 4×4', () => {
    const a = new BatchAugmenter(cfg(), 4);
    const box = rectToBox([1, 1, 2, 2], 4, false, false);
    expect(box).to.deep.equal([1 / 3, 1 / 3, 2 / 3, 2 / 3]);
    const n0 = tf.memory().numTensors;
    const out = a.images(ramp(), [plain(box)], null, IDENTITY);
    // bilinear interpolation of a function linear in y and x is exact: out(i, j) = p(1 + i/3, 1 + j/3)
    const got = channel0(out);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(got[i][j]).to.be.closeTo(4 * (1 + i / 3) + (1 + j / 3), 1e-4);
    out.dispose();
    expect(tf.memory().numTensors).to.equal(n0);
  });

  it('flips fold into the box: x1 > x2 mirrors left-right, y1 > y2 up-down, exactly', () => {
    const a = new BatchAugmenter(cfg(), 4);
    const out = a.images(
      new Uint8Array([...ramp(), ...ramp()]),
      [plain(rectToBox([0, 0, 4, 4], 4, true, false)), plain(rectToBox([0, 0, 4, 4], 4, false, true))],
      null,
      IDENTITY,
    );
    expect(channel0(out, 0)).to.deep.equal([0, 1, 2, 3].map((y) => [3, 2, 1, 0].map((x) => 4 * y + x)));
    expect(channel0(out, 1)).to.deep.equal([3, 2, 1, 0].map((y) => [0, 1, 2, 3].map((x) => 4 * y + x)));
    out.dispose();
  });

  it('colour jitter: brightness scales and clips, contrast blends with the mean luma, saturation 0 is the luma', () => {
    const a = new BatchAugmenter(cfg(), 2);
    // one 2×2 image: pixels (R, G, B) = (100, 0, 0), (0, 100, 0), (0, 0, 100), (200, 200, 200)
    const px = new Uint8Array([100, 0, 0, 0, 100, 0, 0, 0, 100, 200, 200, 200]);
    const luma = [29.9, 58.7, 11.4, 200];
    const read = (d: Partial<ImageDraw>) => {
      const t = a.images(px, [plain(full, d)], null, IDENTITY);
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    const b = read({ brightness: 1.5 });
    expect(b[0]).to.be.closeTo(150, 1e-4);
    expect(b[9]).to.equal(255); // 300 clipped
    const mean = luma.reduce((s, v) => s + v, 0) / 4;
    const c = read({ contrast: 0.5 });
    expect(c[0]).to.be.closeTo(0.5 * 100 + 0.5 * mean, 1e-3);
    expect(c[1]).to.be.closeTo(0.5 * mean, 1e-3);
    const s = read({ saturation: 0 });
    for (let p = 0; p < 4; p++) for (let ch = 0; ch < 3; ch++) expect(s[p * 3 + ch]).to.be.closeTo(luma[p], 1e-3);
    const g = read({ gray: true });
    expect(g).to.deep.equal(s);
    // all three at once, computed step by step on the host (no value leaves [0, 255] on the way)
    const seq = (b: number, c: number, sat: number, gray: boolean) => {
      let v = Array.from(px, (p) => p * b);
      const l = (w: number[]) => [0, 1, 2, 3].map((p) => 0.299 * w[p * 3] + 0.587 * w[p * 3 + 1] + 0.114 * w[p * 3 + 2]);
      const m = l(v).reduce((a, q) => a + q, 0) / 4;
      v = v.map((q) => c * q + (1 - c) * m);
      const l2 = l(v);
      v = v.map((q, i) => sat * q + (1 - sat) * l2[Math.floor(i / 3)]);
      const l3 = l(v);
      return gray ? v.map((_, i) => l3[Math.floor(i / 3)]) : v;
    };
    for (const gray of [false, true]) {
      const all = read({ brightness: 1.2, contrast: 0.5, saturation: 0.5, gray });
      seq(1.2, 0.5, 0.5, gray).forEach((v, i) => expect(all[i]).to.be.closeTo(v, 1e-3));
    }
  });

  it('hue shifts only the images that drew one, after brightness/contrast/saturation and before grayscale', () => {
    const a = new BatchAugmenter(cfg({ colorJitter: { hue: 0.3 } }), 2);
    const px = new Uint8Array([100, 0, 0, 0, 100, 0, 0, 0, 100, 200, 150, 50]);
    const two = new Uint8Array([...px, ...px]);
    const out = a.images(two, [plain(full, { brightness: 1.2, hue: 0.25 }), plain(full, { brightness: 1.2 })], null, IDENTITY);
    const v = Array.from(out.dataSync());
    const bright = tf.tensor4d(
      Array.from(px, (p) => Math.min(255, p * 1.2)),
      [1, 2, 2, 3],
    );
    const hued = adjustHue(bright, [0.25]);
    Array.from(hued.dataSync()).forEach((h, i) => expect(v[i]).to.be.closeTo(h, 1e-3));
    // the image without a hue draw is exactly the brightness step
    Array.from(px, (p) => Math.fround(Math.min(255, p * 1.2))).forEach((b, i) => expect(v[12 + i]).to.be.closeTo(b, 1e-4));
    // grayscale after hue: the luma of the hue-shifted image, not of the unshifted one
    const g = a.images(px, [plain(full, { hue: 0.25, gray: true })], null, IDENTITY).dataSync();
    const h0 = adjustHue(tf.tensor4d(Array.from(px), [1, 2, 2, 3]), [0.25]).dataSync();
    for (let p = 0; p < 4; p++) {
      const l = 0.299 * h0[p * 3] + 0.587 * h0[p * 3 + 1] + 0.114 * h0[p * 3 + 2];
      for (let c = 0; c < 3; c++) expect(g[p * 3 + c]).to.be.closeTo(l, 1e-3);
    }
    tf.dispose([out, bright, hued]);
  });

  it('the affine composes with the crop and flip into one resample; no affine draw keeps the crop path', () => {
    const a = new BatchAugmenter(cfg({ affine: { degrees: 90 } }), 4);
    // a 90° clockwise turn of the left-right flipped ramp: the hand composition of the two arrays
    const flipped = rectToBox([0, 0, 4, 4], 4, true, false);
    const turn = composeAffine(boxAffine(flipped, 4), inverseAffine(centreOf(4), { angle: 90, translate: [0, 0], scale: 1, shear: [0, 0] }));
    const n0 = tf.memory().numTensors;
    const out = a.images(new Uint8Array([...ramp(), ...ramp()]), [plain(flipped, { affine: turn }), plain(flipped)], null, IDENTITY);
    const f = (y: number, x: number) => 4 * y + (3 - x);
    expect(channel0(out, 0)).to.deep.equal([0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => f(3 - j, i))));
    // the second image has no affine: its box alone, read through the same resample
    expect(channel0(out, 1)).to.deep.equal([0, 1, 2, 3].map((y) => [0, 1, 2, 3].map((x) => f(y, x))));
    out.dispose();
    expect(tf.memory().numTensors).to.equal(n0);
  });

  it('random erasing fills its rectangle with the value, after normalisation, and nothing else', () => {
    const a = new BatchAugmenter(cfg({ randomErasing: { value: -1 } }), 4);
    const out = a.images(ramp(), [plain(full, { erase: [1, 2, 2, 1] })], { mix: null, noiseSeed: 0 }, IDENTITY);
    const got = channel0(out);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(got[y][x]).to.equal(y >= 1 && y <= 2 && x === 2 ? -1 : 4 * y + x);
    out.dispose();
  });

  it('MixUp blends each image with the reversed batch by λ, images and targets alike', () => {
    const a = new BatchAugmenter(cfg({ mix: { mixupAlpha: 1 } }), 4);
    const mix = { mix: { kind: 'mixup' as const, lam: 0.25 }, noiseSeed: 0 };
    const n0 = tf.memory().numTensors;
    const x = a.images(new Uint8Array([...ramp(0), ...ramp(100)]), [plain(full), plain(full)], mix, IDENTITY);
    expect(channel0(x, 0)[0][0]).to.be.closeTo(0.25 * 0 + 0.75 * 100, 1e-4);
    expect(channel0(x, 1)[3][3]).to.be.closeTo(0.25 * 115 + 0.75 * 15, 1e-4);
    const y = a.targets([0, 2], 3, mix);
    expect(y.arraySync()).to.deep.equal([
      [0.25, 0, 0.75],
      [0.75, 0, 0.25],
    ]);
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).to.equal(n0);
  });

  it('CutMix pastes the partner inside the box; λ is the share left outside it', () => {
    const a = new BatchAugmenter(cfg({ mix: { cutmixAlpha: 1 } }), 4);
    const mix = { mix: { kind: 'cutmix' as const, lam: 0.75, rect: [0, 0, 2, 2] as [number, number, number, number] }, noiseSeed: 0 };
    const x = a.images(new Uint8Array([...ramp(0), ...ramp(100)]), [plain(full), plain(full)], mix, IDENTITY);
    const got = channel0(x, 0);
    for (let y = 0; y < 4; y++) for (let c = 0; c < 4; c++) expect(got[y][c]).to.equal(4 * y + c + (y < 2 && c < 2 ? 100 : 0));
    x.dispose();
    // timm's rand_bbox: λ = 0.75 on 8×8 → side ⌊8·√0.25⌋ = 4, a whole box when centred inside, so λ stays 0.75
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) {
      const { rect, lam } = drawCutmixRect(rng, 8, 0.75);
      expect(lam).to.equal(1 - (rect[2] * rect[3]) / 64);
      expect(rect[2]).to.be.at.most(4);
      expect(rect[0] + rect[2]).to.be.at.most(8);
    }
  });

  it("RandomResizedCrop and RandomErasing draw torchvision's rectangles: inside the image, area and aspect in range", () => {
    const rng = new Rng(5);
    for (let i = 0; i < 500; i++) {
      const [t, l, h, w] = drawResizedCrop(rng, 224, [0.35, 1], [3 / 4, 4 / 3]);
      expect(t).to.be.at.least(0);
      expect(l).to.be.at.least(0);
      expect(t + h).to.be.at.most(224);
      expect(l + w).to.be.at.most(224);
      // rounding of h and w moves the area and aspect by at most a pixel each
      expect((h * w) / 224 ** 2).to.be.within(0.35 - 0.01, 1);
      expect(w / h).to.be.within(3 / 4 - 0.02, 4 / 3 + 0.02);
      const e = drawErasing(rng, 224, [0.02, 0.33], [0.3, 3.3]);
      if (e) {
        expect(e[0] + e[2]).to.be.at.most(224);
        expect(e[1] + e[3]).to.be.at.most(224);
        expect((e[2] * e[3]) / 224 ** 2).to.be.within(0.015, 0.34);
      }
    }
    // scale and ratio pinned to 1: the whole image
    expect(drawResizedCrop(new Rng(1), 10, [1, 1], [1, 1])).to.deep.equal([0, 0, 10, 10]);
  });

  it('batch draws come from the run RNG with the data order: same seed, same views; a resumed pass replays them', async () => {
    const source = new MemorySource(['a', 'b'], 6, 0);
    const aug = new BatchAugmenter(
      cfg({
        randomResizedCrop: {},
        affine: { degrees: 10, translate: [0.1, 0.1], scale: [0.9, 1.1], shear: 5, p: 0.5 },
        colorJitter: { brightness: 0.4, hue: 0.1 },
        randAugment: { n: 2, m: 9, mstd: 0.5 },
        randomErasing: {},
        mix: { mixupAlpha: 0.8, cutmixAlpha: 1 },
      }),
      8,
    );
    const pass = async (seed: number, skip = 0) => {
      const out: unknown[] = [];
      for await (const b of rawBatches(source, source.train, { size: 8, batch: 4, shuffle: true, flip: true, augment: aug, skip }, new Rng(seed)))
        out.push({ keys: b.keys, draws: b.draws });
      return out;
    };
    const a1 = await pass(3);
    expect(a1).to.have.length(3);
    expect(await pass(3)).to.deep.equal(a1);
    expect(await pass(4)).to.not.deep.equal(a1);
    expect(await pass(3, 2)).to.deep.equal(a1.slice(2));
  });

  it('every transform at once, over several batches and epochs: tensors stay flat, and a TrivialAugment pass resumes exactly', async () => {
    const source = new MemorySource(['a', 'b', 'c'], 5, 0);
    const pre: Preprocess = { kind: 'scale', low: -1, high: 1 };
    const all = {
      randomResizedCrop: { scale: [0.5, 1] },
      vflip: 0.3,
      affine: { degrees: 20, translate: [0.1, 0.1], scale: [0.8, 1.2], shear: 10 },
      colorJitter: { brightness: 0.3, contrast: 0.3, saturation: 0.3, hue: 0.2 },
      grayscale: 0.2,
      randomErasing: { value: 'random' },
      mix: { mixupAlpha: 0.8, cutmixAlpha: 1 },
    };
    for (const policy of [{ randAugment: { n: 3 } }, { trivialAugment: true }]) {
      const aug = new BatchAugmenter(cfg({ ...all, ...policy }), 16);
      const rng = new Rng(11);
      let n0 = -1;
      for (let epoch = 0; epoch < 3; epoch++) {
        for await (const b of rawBatches(source, source.train, { size: 16, batch: 4, shuffle: true, flip: true, augment: aug }, rng)) {
          const d = b.draws as NonNullable<typeof b.draws>;
          const x = aug.images(b.pixels, d.rows, d.batch, pre);
          const y = aug.targets(b.labels, 3, d.batch);
          expect(x.shape).to.deep.equal([b.n, 16, 16, 3]);
          expect(Array.from(x.dataSync()).every(Number.isFinite)).to.equal(true);
          tf.dispose([x, y]);
        }
        if (n0 < 0) n0 = tf.memory().numTensors;
        expect(tf.memory().numTensors, `epoch ${epoch + 1}`).to.equal(n0);
      }
    }
    const aug = new BatchAugmenter(cfg({ ...all, trivialAugment: true }), 8);
    const pass = async (skip: number) => {
      const out: unknown[] = [];
      for await (const b of rawBatches(source, source.train, { size: 8, batch: 4, shuffle: true, flip: true, augment: aug, skip }, new Rng(5)))
        out.push({ keys: b.keys, draws: b.draws });
      return out;
    };
    const full = await pass(0);
    expect(full).to.have.length(4);
    expect(await pass(3)).to.deep.equal(full.slice(3));
  });

  it("plan's augment line names the affine, hue, RandAugment and TrivialAugmentWide with their parameters", () => {
    const line = (a: Record<string, unknown>) => describeAugment({ data: { flip: true, augment: cfg(a) }, loss: { labelSmoothing: 0 } });
    expect(line({ affine: { degrees: 10, translate: [0.1, 0.2] }, colorJitter: { brightness: 0.2, hue: 0.1 }, randAugment: { n: 3 } })).to.equal(
      'hflip 0.5, affine p 1 degrees 10 translate [0.1, 0.2] scale [1, 1] shear 0, colour jitter b 0.2 c 0 s 0 h 0.1, RandAugment n 3 m 9 mstd 0.5',
    );
    expect(line({ trivialAugment: true })).to.equal('hflip 0.5, TrivialAugmentWide');
  });
});
