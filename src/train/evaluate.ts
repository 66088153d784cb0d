/**
 * Evaluation as a free function: loss, accuracy and the confusion matrix of a model over examples, through the
 * same input path as training (feature cache included). BatchNorm is folded into the convolutions first, so
 * validation runs the graph an export runs.
 */
import * as tf from '@tensorflow/tfjs';
import { rawBatches, type RawBatch } from '../data/batches';
import type { DataSource, Example } from '../data/source';
import { FoldedModel } from '../models/fold-batchnorm';
import type { EpochMetrics } from './callbacks';

export interface Evaluation {
  metrics: EpochMetrics;
  /** Rows: true class, columns: predicted. */
  confusion: number[][];
}

export interface EvaluateOptions {
  size: number;
  batch: number;
  classes: number;
}

export async function evaluate(
  model: tf.LayersModel,
  data: DataSource,
  examples: Example[],
  inputs: (b: RawBatch) => tf.Tensor,
  opts: EvaluateOptions,
): Promise<Evaluation> {
  const k = opts.classes;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let lossSum = 0;
  let n = 0;
  for await (const b of rawBatches(data, examples, { size: opts.size, batch: opts.batch, shuffle: false, flip: false }, null)) {
    const x = inputs(b);
    const [lossT, predT] = tf.tidy(() => {
      // predict frees each layer's output once the layers after it have read it; apply inside a tidy would hold
      // every activation of the batch until the end (on wasm the heap keeps that high-water mark)
      const logits = model.predict(x, { batchSize: b.n }) as tf.Tensor2D;
      const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), k);
      return [tf.losses.softmaxCrossEntropy(y, logits, undefined, undefined, tf.Reduction.SUM), tf.argMax(logits, 1)];
    });
    lossSum += (await lossT.data())[0];
    const preds = await predT.data();
    tf.dispose([x, lossT, predT]);
    b.labels.forEach((t, i) => confusion[t][preds[i]]++);
    n += b.n;
  }
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  return { metrics: { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN }, confusion };
}

/**
 * The BatchNorm-folded copy validation runs on during a fit: built once and refreshed with the moved weights each
 * epoch, because building a new model every epoch grew the JS heap (about 0.2 MB an epoch in the 50-epoch soak).
 */
export class FoldedDuringFit {
  /** undefined: not built yet; null: nothing to fold. */
  private folded: FoldedModel | null | undefined = undefined;

  constructor(private readonly model: tf.LayersModel) {}

  current(): tf.LayersModel {
    if (this.folded === undefined) this.folded = FoldedModel.create(this.model);
    else this.folded?.refresh();
    return this.folded?.model ?? this.model;
  }

  dispose(): void {
    this.folded?.dispose();
    this.folded = undefined;
  }
}

/** Outside a fit: a folded copy for this one call. */
export async function evaluateFolded(
  model: tf.LayersModel,
  data: DataSource,
  examples: Example[],
  inputs: (b: RawBatch) => tf.Tensor,
  opts: EvaluateOptions,
): Promise<Evaluation> {
  const folded = FoldedModel.create(model);
  try {
    return await evaluate(folded?.model ?? model, data, examples, inputs, opts);
  } finally {
    folded?.dispose();
  }
}
