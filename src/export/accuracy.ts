import * as tf from '@tensorflow/tfjs';
import { rawBatches } from '../data/batches';
import { preprocessBatch } from '../data/preprocess';
import type { DataSource, Example } from '../data/source';
import type { Preprocess } from '../models/types';

/**
 * Top-1 accuracy of a whole-image classifier (raw pixels in, class scores out) on `examples`:
 * how an export is judged against its float32 original, so both go through the same decoding
 * and preprocessing. NaN when there is nothing to evaluate.
 */
export async function topOneAccuracy(
  model: tf.LayersModel,
  source: DataSource,
  examples: Example[],
  opts: { size: number; batch: number; preprocess: Preprocess },
): Promise<number> {
  let correct = 0;
  let n = 0;
  for await (const b of rawBatches(source, examples, { size: opts.size, batch: opts.batch, shuffle: false, flip: false }, null)) {
    const pred = tf.tidy(() => tf.argMax(model.predict(preprocessBatch(b.pixels, b.n, opts.size, opts.preprocess)) as tf.Tensor, -1));
    const p = await pred.data();
    pred.dispose();
    b.labels.forEach((t, i) => {
      if (p[i] === t) correct++;
    });
    n += b.n;
  }
  return n ? correct / n : Number.NaN;
}
