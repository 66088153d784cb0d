/**
 * The network input of a batch: preprocessed images, or, with a frozen prefix, its activations, served from the
 * feature cache (computed once per image and flip). An augmented batch is cached only when it is made of cached
 * views (data.augment.cachedViews, src/data/cached-views.ts), keyed by image and view; any other augmented view is
 * seen once, so the prefix runs on it instead of filling the cache.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchAugmenter } from '../../data/augment';
import type { RawBatch } from '../../data/batches';
import { preprocessBatch } from '../../data/preprocess';
import type { Preprocess } from '../../models/types';
import { FeatureCache } from '../feature-cache';

export interface FeatureInputsOptions {
  size: number;
  preprocess: Preprocess;
  augment?: BatchAugmenter | null;
  /** Bytes of cached prefix activations kept in memory before spilling to `spillDir`. */
  cacheBytes: number;
  spillDir: string | null;
  log: (line: string) => void;
}

export class FeatureInputs {
  readonly cache: FeatureCache | null;

  constructor(
    private readonly prefix: tf.LayersModel | null,
    private readonly opts: FeatureInputsOptions,
  ) {
    this.cache = prefix ? new FeatureCache(prefix.outputs[0].shape.slice(1) as number[], opts.cacheBytes, opts.spillDir, opts.log) : null;
  }

  /** The input tensor of `b`; the caller disposes it. */
  of(b: RawBatch): tf.Tensor {
    const { size, preprocess: pre, augment: aug } = this.opts;
    const prefix = this.prefix;
    const per = size * size * 3;
    if (b.draws && aug) {
      const draws = b.draws;
      if (!prefix) return aug.images(b.pixels, draws.rows, draws.batch, pre);
      if (b.view !== undefined && this.cache) {
        // a view's pixels depend only on its image and its draws (prefixCacheMode excludes the batch-wide mix and
        // noise), so the missing rows can be augmented and run as a batch of their own
        return this.cache.batch(b.keys, (rows) =>
          tf.tidy(
            () =>
              prefix.apply(
                aug.images(
                  subset(b.pixels, rows, per),
                  rows.map((r) => draws.rows[r]),
                  draws.batch,
                  pre,
                ),
                { training: false },
              ) as tf.Tensor,
          ),
        );
      }
      return tf.tidy(() => prefix.apply(aug.images(b.pixels, draws.rows, draws.batch, pre), { training: false }) as tf.Tensor);
    }
    if (!prefix || !this.cache) return preprocessBatch(b.pixels, b.n, size, pre);
    return this.cache.batch(b.keys, (rows) =>
      tf.tidy(() => prefix.apply(preprocessBatch(subset(b.pixels, rows, per), rows.length, size, pre), { training: false }) as tf.Tensor),
    );
  }
}

/** The pixels of the given rows of a batch, in that order. */
function subset(pixels: Uint8Array, rows: number[], per: number): Uint8Array {
  const px = new Uint8Array(rows.length * per);
  rows.forEach((r, j) => px.set(pixels.subarray(r * per, (r + 1) * per), j * per));
  return px;
}
