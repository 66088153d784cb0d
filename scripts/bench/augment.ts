/**
 * The cost of the batched training transforms, per batch, against the flip-only input path, on one backend.
 * Run by `npm run bench -- --aug`, which adds the training step measured in the same run, so the epoch-time
 * ratio is (step + transforms) / (step + flip-only input). Pixels are synthetic: decoding is the same for both
 * paths and is not what is measured. A set with RandomResizedCrop cuts its crops from presized copies (4:3, short
 * side ⌈1.15 × size⌉) on the host as training does (src/data/batches.ts), so that row includes the crop and resize
 * of each image; flip-only flips the size×size squares it would read from the cache.
 * usage: tsx scripts/bench/augment.ts [--backend wasm] [--size 224] [--batch 16] [--repeats 10]
 */
import * as tf from '@tensorflow/tfjs';
import { parseOrThrow } from '../../src/config/parse';
import { BatchAugmenter } from '../../src/data/augment';
import { MEASURED_AUGMENT } from '../../src/data/augment-rule';
import { AugmentSchema } from '../../src/data/augment-schema';
import { type DecodedImage, flipHorizontal } from '../../src/data/decode';
import { defaultPresize, presizeDims } from '../../src/data/eval-crop';
import { cropPresized } from '../../src/data/presize';
import { preprocessBatch } from '../../src/data/preprocess';
import { Rng } from '../../src/data/rng';
import { selectBackend } from '../../src/engine/backend';
import type { Preprocess } from '../../src/models/types';
import { arg, median } from './stats';

export const AUG_CONFIGS: Record<string, Record<string, unknown>> = {
  rrc: { randomResizedCrop: {} },
  // what the default rule adds at 20 or fewer training images per class (src/data/augment-rule.ts)
  'default rule, small sets': { ...MEASURED_AUGMENT },
  jitter: { colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 } },
  affine: { affine: { degrees: 10, translate: [0.1, 0.1], scale: [0.9, 1.1], shear: 5 } },
  'jitter+hue': { colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 } },
  randaugment: { randAugment: { n: 2, m: 9, mstd: 0.5 } },
  trivialaugment: { trivialAugment: true },
  // the timm recipe's transforms
  'rrc+jitter': { randomResizedCrop: {}, colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 } },
  'rrc+jitter+gray+erasing+mix': {
    randomResizedCrop: {},
    colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
    grayscale: 0.1,
    randomErasing: { p: 0.25, value: 'random' },
    mix: { mixupAlpha: 0.8, cutmixAlpha: 1 },
  },
};

async function main(): Promise<void> {
  const backend = arg('backend', 'wasm');
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '16'));
  const repeats = Number(arg('repeats', '10'));
  await selectBackend(backend);
  const pre: Preprocess = { kind: 'scale', low: -1, high: 1 };
  const rng = new Rng(1);
  const pixels = Uint8Array.from({ length: batch * size * size * 3 }, () => rng.int(256));
  const per = size * size * 3;
  // a 4:3 photo's presized copy, as src/data/image-folder.ts caches it
  const dims = presizeDims(4, 3, defaultPresize(size));
  const copies: DecodedImage[] = Array.from({ length: batch }, () => ({
    ...dims,
    pixels: Uint8Array.from({ length: dims.width * dims.height * 3 }, () => rng.int(256)),
  }));
  const time = async (f: () => tf.Tensor | tf.Tensor[] | Promise<tf.Tensor | tf.Tensor[]>): Promise<number> => {
    const ms: number[] = [];
    for (let r = 0; r < repeats + 1; r++) {
      const t0 = performance.now();
      const out = await f();
      // wait for the values so asynchronous backends are timed to completion
      for (const t of Array.isArray(out) ? out : [out]) await t.data();
      const dt = performance.now() - t0;
      tf.dispose(out);
      if (r > 0) ms.push(dt);
    }
    return median(ms);
  };
  const result: Record<string, number> = {};
  result['flip-only'] = await time(() => {
    const px = new Uint8Array(pixels.length);
    for (let i = 0; i < batch; i++) {
      const img = pixels.subarray(i * per, (i + 1) * per);
      px.set(rng.next() < 0.5 ? flipHorizontal(img, size) : img, i * per);
    }
    return preprocessBatch(px, batch, size, pre);
  });
  for (const [name, cfg] of Object.entries(AUG_CONFIGS)) {
    const aug = new BatchAugmenter(parseOrThrow(AugmentSchema, cfg, 'augment'), size);
    result[name] = await time(async () => {
      const rows = Array.from({ length: batch }, (_, i) => aug.drawImage(rng, rng.next() < 0.5, aug.cropsPresized ? copies[i] : undefined));
      const b = aug.drawBatch(rng);
      let px = pixels;
      if (aug.cropsPresized) {
        // awaited: before the crop kernel this was sharp's asynchronous resize, and the bench times both alike
        const crops = await Promise.all(rows.map((d, i) => cropPresized(copies[i], d.source!, size)));
        px = new Uint8Array(batch * per);
        crops.forEach((c, i) => px.set(c, i * per));
      }
      return [
        aug.images(px, rows, b, pre),
        aug.targets(
          Array.from({ length: batch }, (_, i) => i % 5),
          5,
          b,
        ),
      ];
    });
  }
  console.log(JSON.stringify({ backend: tf.getBackend(), size, batch, repeats, ms_per_batch: result }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
