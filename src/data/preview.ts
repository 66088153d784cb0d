/**
 * One augmented training batch as a picture: what the network is shown, mapped back from its input range to
 * pixels, tiled into a grid. Used by `layertune augment-preview` so a user can see what a config does.
 */
import * as tf from '@tensorflow/tfjs';
import type { Preprocess } from '../models/types';
import { BatchAugmenter } from './augment';
import type { AugmentConfig } from './augment-schema';
import { rawBatches } from './batches';
import { Rng } from './rng';
import type { DataSource } from './source';

/** The inverse of preprocessTensor: network inputs back to 0..255 pixel values, rounded and clipped. */
export function toPixels(x: tf.Tensor4D, p: Preprocess): Uint8Array {
  return tf.tidy(() => {
    const px =
      p.kind === 'scale'
        ? x.sub(p.low).mul(255 / (p.high - p.low))
        : x.mul(tf.tensor1d(p.std.map((s) => s * 255))).add(tf.tensor1d(p.mean.map((m) => m * 255)));
    return Uint8Array.from(tf.clipByValue(tf.round(px), 0, 255).dataSync());
  });
}

/** n size×size RGB images, row-major HWC each, tiled `cols` wide with a `gap`-pixel white border. */
export function tileGrid(pixels: Uint8Array, n: number, size: number, cols: number, gap = 2): { data: Uint8Array; width: number; height: number } {
  const rows = Math.ceil(n / cols);
  const width = cols * size + (cols + 1) * gap;
  const height = rows * size + (rows + 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let k = 0; k < n; k++) {
    const ox = gap + (k % cols) * (size + gap);
    const oy = gap + Math.floor(k / cols) * (size + gap);
    for (let y = 0; y < size; y++) {
      const src = (k * size * size + y * size) * 3;
      data.set(pixels.subarray(src, src + size * 3), ((oy + y) * width + ox) * 3);
    }
  }
  return { data, width, height };
}

/**
 * The first training batch of the first epoch, drawn exactly as training draws it for `seed`, back in pixels.
 * `views`: when a frozen prefix caches K augmented views per image (src/data/cached-views.ts), training shows view
 * `epoch mod K` of each image, drawn from that view's own seed; the preview then shows the same images as the
 * first batch, in the view `epoch` selects, so each of the K views a run will train on can be looked at.
 */
export async function previewBatch(
  source: DataSource,
  opts: {
    size: number;
    batch: number;
    seed: number;
    flip: boolean;
    augment: AugmentConfig;
    preprocess: Preprocess;
    balanced?: boolean;
    views?: { count: number; epoch: number };
  },
): Promise<{ pixels: Uint8Array; n: number; labels: number[]; view?: number }> {
  const aug = new BatchAugmenter(opts.augment, opts.size);
  const it = rawBatches(
    source,
    source.train,
    {
      size: opts.size,
      batch: opts.batch,
      shuffle: true,
      flip: opts.flip,
      hflip: opts.augment.hflip,
      augment: aug,
      balanced: opts.balanced,
      ...(opts.views ? { views: { ...opts.views, seed: opts.seed } } : {}),
    },
    new Rng(opts.seed),
  );
  const first = await it.next();
  await it.return(undefined);
  if (first.done || !first.value.draws) throw new Error('no decodable training image');
  const b = first.value;
  const draws = b.draws as NonNullable<typeof b.draws>;
  const x = aug.images(b.pixels, draws.rows, draws.batch, opts.preprocess);
  const pixels = toPixels(x, opts.preprocess);
  x.dispose();
  return { pixels, n: b.n, labels: b.labels, ...(b.view !== undefined ? { view: b.view } : {}) };
}
