import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { parseOrThrow } from '../../src/config/parse';
import { BatchAugmenter, type ImageDraw } from '../../src/data/augment';
import { MEASURED_AUGMENT } from '../../src/data/augment-rule';
import { AugmentSchema } from '../../src/data/augment-schema';
import { type ColorDraw, jitterCoefficients, jitterHost, jitterReference, KEEP_VALUES, LUMA, preprocessMap } from '../../src/data/color-jitter';
import { preprocessTensor } from '../../src/data/preprocess';
import { Rng } from '../../src/data/rng';
import { augmentKernels } from '../../src/engine/wasm/augment';
import { initWasm, onBackend } from '../engine/wasm_setup';
import { firstBitDifference, withJs } from '../helpers/aug-kernels';

const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/**
 * The colour jitter as tfjs ops, as BatchAugmenter.images composed it before the kernel (commit b7f235f): float32
 * luma by a matrix product, its mean per image, x·A + luma·B + mean·C, one clip.
 */
function previousTfjsJitter(x: tf.Tensor4D, rows: ColorDraw[]): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, size] = x.shape;
    const lumaX = tf.matMul(x.reshape([n * size * size, 3]), tf.tensor2d([...LUMA], [3, 1])).reshape([n, size, size, 1]);
    const m0 = tf.mean(lumaX.reshape([n, size * size]), 1).reshape([n, 1, 1, 1]);
    const coef = rows.map((r) => jitterCoefficients(r));
    const col = (k: number) =>
      tf.tensor4d(
        coef.map((c) => c[k]),
        [n, 1, 1, 1],
      );
    return tf.clipByValue(tf.add(tf.add(tf.mul(x, col(0)), tf.mul(lumaX, col(1))), tf.mul(m0, col(2))), 0, 255) as tf.Tensor4D;
  });
}

describe('colour jitter as one linear map per image (src/data/color-jitter.ts, csrc jitter_u8 / jitter_f32)', () => {
  before(async () => {
    await initWasm();
    await tf.setBackend('cpu');
  });

  it('the coefficients are brightness·(contrast·(saturation blend) + contrast blend with the mean), grey as their luma', () => {
    // b 1.2, c 0.5, s 0.25: a = s·c·b, b = (1 − s)·c·b, c = (1 − c)·b
    expect(jitterCoefficients({ brightness: 1.2, contrast: 0.5, saturation: 0.25, gray: false })).to.deep.equal([
      0.25 * 0.5 * 1.2,
      0.75 * 0.5 * 1.2,
      0.5 * 1.2,
    ]);
    expect(jitterCoefficients({ brightness: 1.2, contrast: 0.5, saturation: 0.25, gray: true })).to.deep.equal([
      0,
      0.25 * 0.5 * 1.2 + 0.75 * 0.5 * 1.2,
      0.5 * 1.2,
    ]);
    // an image with a hue shift turns grey after the shift, so its map here keeps the colour
    expect(jitterCoefficients({ brightness: 1, contrast: 1, saturation: 1, gray: true, hue: 0.1 })).to.deep.equal([1, 0, 0]);
    expect(jitterCoefficients({ brightness: 1, contrast: 1, saturation: 1, gray: false })).to.deep.equal([1, 0, 0]);
  });

  it('the reference on a hand-computed 2-pixel image: the mean luma, the blend, and the clip on both sides', () => {
    // pixels (100, 50, 200) and (0, 0, 0): lumas 0.299·100 + 0.587·50 + 0.114·200 = 29.9 + 29.35 + 22.8 = 82.05
    // and 0, mean 41.025
    const px = Uint8Array.from([100, 50, 200, 0, 0, 0]);
    const close = (got: Float32Array, want: number[]) => want.forEach((w, i) => expect(got[i], `element ${i}`).to.be.closeTo(w, 1e-4));
    // a·x + b·L + c·m with (2, 0.5, 1): 200 + 41.025 + 41.025 = 282.05 → 255, 100 + 82.05 = 182.05, 400 + … → 255;
    // the black pixel is the mean's share alone
    close(jitterReference(px, [[2, 0.5, 1]], 2), [255, 182.05, 255, 41.025, 41.025, 41.025]);
    // (1, −2, 0): 100 − 164.1 and 50 − 164.1 clip to 0, 200 − 164.1 = 35.9; no mean is taken with c = 0
    close(jitterReference(px, [[1, -2, 0]], 2), [0, 0, 35.9, 0, 0, 0]);
  });

  it('kernel: bit for bit the reference on 8-bit and float pixels, odd sizes, grey, zero-contrast and clipping maps', () => {
    const rng = new Rng(11);
    // values kept, MobileNet's [-1, 1], torchvision's ImageNet normalisation: a different map per channel
    const posts = [
      KEEP_VALUES,
      preprocessMap({ kind: 'scale', low: -1, high: 1 }),
      preprocessMap({ kind: 'normalize', mean: IMAGENET_MEAN, std: IMAGENET_STD }),
    ];
    for (const per of [1, 2, 3, 7, 64, 225]) {
      const coef: Array<[number, number, number]> = [
        [1, 0, 0],
        [0, 1, 0.3],
        [1.3, -0.2, 0.1],
        [0.6, 0.3, 0],
        [2.5, 0.4, -0.7],
        ...Array.from({ length: 5 }, () => [0.5 + rng.next(), rng.next() - 0.5, rng.next() - 0.5] as [number, number, number]),
      ];
      const n = coef.length;
      const u8 = Uint8Array.from({ length: n * per * 3 }, () => rng.int(256));
      // fractions, out-of-range values and a signed zero: what cropAndResize or the affine can hand over
      const f32 = Float32Array.from({ length: n * per * 3 }, (_, i) => (i === 1 ? -0 : (rng.next() - 0.1) * 280));
      for (const src of [u8, f32]) {
        for (const post of posts) {
          const kernel = augmentKernels()!.jitter(src, coef, per, post);
          const reference = jitterReference(src, coef, per, post);
          const at = firstBitDifference(kernel, reference);
          expect(at, `${src.constructor.name} per ${per} post ${post.mul}: element ${at}: ${kernel[at]} vs ${reference[at]}`).to.equal(-1);
          expect(
            firstBitDifference(
              withJs(() => jitterHost(src, coef, per, post)),
              reference,
            ),
          ).to.equal(-1);
        }
      }
    }
  });

  it('kernel against the previous tfjs ops at 224 px with the default rule draws: within 1e-3 of 0..255, on cpu and wasm', async () => {
    const size = 224;
    const n = 8;
    const aug = new BatchAugmenter(parseOrThrow(AugmentSchema, { colorJitter: MEASURED_AUGMENT.colorJitter, grayscale: 0.3 }, 'augment'), size);
    const rng = new Rng(5);
    const rows: ImageDraw[] = Array.from({ length: n }, () => aug.drawImage(rng, false));
    expect(rows.some((r) => r.gray) && rows.some((r) => !r.gray)).to.equal(true);
    // smooth photo-like content, so the clip is reached only in places
    const px = Uint8Array.from({ length: n * size * size * 3 }, (_, i) => Math.min(255, Math.floor(((i % 672) / 672) * 200 + ((i / 672) % 56) + rng.int(8))));
    const kernel = jitterHost(
      px,
      rows.map((r) => jitterCoefficients(r)),
      size * size,
    );
    for (const backend of ['cpu', 'wasm'] as const) {
      const before = await onBackend(backend, () =>
        tf.tidy(() => previousTfjsJitter(tf.tensor4d(Float32Array.from(px), [n, size, size, 3]), rows).dataSync() as Float32Array),
      );
      let max = 0;
      for (let i = 0; i < kernel.length; i++) max = Math.max(max, Math.abs(kernel[i] - before[i]));
      expect(max, `${backend}: max |kernel − tfjs| ${max}`).to.be.below(1e-3);
    }
  });

  it('the normalisation folded into the pass: its maps by hand, and the batch within 1e-5 of normalising after it', () => {
    // scale: 0 → low, 255 → high; normalize: 255·mean → 0, 255·(mean + std) → 1
    const scale = preprocessMap({ kind: 'scale', low: -1, high: 1 });
    expect(0 * scale.mul[0] + scale.add[0]).to.equal(-1);
    expect(255 * scale.mul[0] + scale.add[0]).to.be.closeTo(1, 1e-12);
    const norm = preprocessMap({ kind: 'normalize', mean: IMAGENET_MEAN, std: IMAGENET_STD });
    for (let c = 0; c < 3; c++) {
      expect(255 * IMAGENET_MEAN[c] * norm.mul[c] + norm.add[c]).to.be.closeTo(0, 1e-12);
      expect(255 * (IMAGENET_MEAN[c] + IMAGENET_STD[c]) * norm.mul[c] + norm.add[c]).to.be.closeTo(1, 1e-12);
    }
    const size = 24;
    const aug = new BatchAugmenter(parseOrThrow(AugmentSchema, { ...MEASURED_AUGMENT, grayscale: 0.3 }, 'augment'), size);
    const rng = new Rng(12);
    const px = Uint8Array.from({ length: 6 * size * size * 3 }, () => rng.int(256));
    const rows = Array.from({ length: 6 }, () => aug.drawImage(rng, rng.next() < 0.5));
    // scale 0..255 is the identity map, so that batch is the colour pass's pixel values, normalised by tfjs after
    const keep = { kind: 'scale' as const, low: 0, high: 255 };
    for (const pre of [
      { kind: 'scale' as const, low: -1, high: 1 },
      { kind: 'normalize' as const, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    ]) {
      const [fused, after] = tf.tidy(() => [
        aug.images(px, rows, null, pre).dataSync() as Float32Array,
        preprocessTensor(aug.images(px, rows, null, keep), pre).dataSync() as Float32Array,
      ]);
      let max = 0;
      for (let i = 0; i < fused.length; i++) max = Math.max(max, Math.abs(fused[i] - after[i]));
      expect(max, pre.kind).to.be.below(1e-5);
    }
  });

  it('a left-right flip of the bytes is what cropAndResize gave for a flip box over the whole image, bit for bit', async () => {
    const size = 9;
    const aug = new BatchAugmenter(parseOrThrow(AugmentSchema, { vflip: 0 }, 'augment'), size);
    const rng = new Rng(2);
    const px = Uint8Array.from({ length: 4 * size * size * 3 }, () => rng.int(256));
    const rows = [true, false, true, true].map((flip) => aug.drawImage(rng, flip));
    expect(rows.map((r) => r.box)).to.deep.equal([
      [0, 1, 1, 0],
      [0, 0, 1, 1],
      [0, 1, 1, 0],
      [0, 1, 1, 0],
    ]);
    const pre = { kind: 'scale' as const, low: 0, high: 255 };
    for (const backend of ['cpu', 'wasm'] as const) {
      const [hostFlip, viaCrop] = await onBackend(backend, () =>
        tf.tidy(() => {
          const host = aug.images(px, rows, null, pre).dataSync() as Float32Array;
          const crop = tf.image
            .cropAndResize(
              tf.tensor4d(Float32Array.from(px), [4, size, size, 3]),
              tf.tensor2d(
                rows.flatMap((r) => r.box),
                [4, 4],
              ),
              tf.range(0, 4, 1, 'int32') as tf.Tensor1D,
              [size, size],
              'bilinear',
            )
            .dataSync() as Float32Array;
          return [host, crop];
        }),
      );
      expect(firstBitDifference(hostFlip, viaCrop), backend).to.equal(-1);
    }
  });

  it('leaves no tensors behind and its memory does not grow across batches of one size', () => {
    const size = 16;
    const aug = new BatchAugmenter(
      parseOrThrow(AugmentSchema, { colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 }, grayscale: 0.5 }, 'augment'),
      size,
    );
    const rng = new Rng(9);
    const px = Uint8Array.from({ length: 3 * size * size * 3 }, () => rng.int(256));
    const once = () => {
      const rows = [0, 1, 2].map(() => aug.drawImage(rng, rng.next() < 0.5));
      aug.images(px, rows, null, { kind: 'scale', low: -1, high: 1 }).dispose();
    };
    once();
    const n0 = tf.memory().numTensors;
    const bytes0 = augmentKernels()!.memoryBytes();
    for (let i = 0; i < 4; i++) once();
    expect(tf.memory().numTensors).to.equal(n0);
    expect(augmentKernels()!.memoryBytes()).to.equal(bytes0);
  });
});
