import * as tf from '@tensorflow/tfjs';

/**
 * tfjs BatchNormalization ignores `trainable` and picks batch statistics whenever it is called
 * with `training: true`, so a "frozen" BN (stored statistics, as the Keras fine-tuning guide
 * recommends) cannot be expressed with the stock layer. We wrap `call` per instance instead of
 * subclassing so the exported model.json still names the stock class and loads anywhere.
 *
 *  - 'frozen': always normalise with the stored moving mean/variance; they never move.
 *  - 'batch':  stock behaviour: batch statistics in training, moving averages updated.
 */
export type BatchNormMode = 'frozen' | 'batch';

const ORIGINAL = Symbol('layertune.bn.originalCall');

export function isBatchNorm(layer: tf.layers.Layer): boolean {
  return layer.getClassName() === 'BatchNormalization';
}

export function setBatchNormMode(layer: tf.layers.Layer, mode: BatchNormMode): void {
  if (!isBatchNorm(layer)) return;
  const l = layer as any;
  if (!l[ORIGINAL]) l[ORIGINAL] = l.call.bind(l);
  const original = l[ORIGINAL];
  l.call =
    mode === 'batch'
      ? original
      : (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => original(inputs, { ...kwargs, training: false });
}
