import * as tf from '@tensorflow/tfjs';
import { BN_FROZEN, batchNormFrozen, withFollowingRelu } from '../engine/wasm/fused';

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
const MODE = Symbol('layertune.bn.mode');

export function isBatchNorm(layer: tf.layers.Layer): boolean {
  return layer.getClassName() === 'BatchNormalization';
}

/**
 * `momentum` is the Keras one (weight of the old moving average). Keras models ship with 0.99,
 * which lags far behind when fine-tuning for a few hundred steps; PyTorch's default (0.1 there,
 * 0.9 here) is what the peer uses.
 */
export function setBatchNormMode(layer: tf.layers.Layer, mode: BatchNormMode, momentum?: number): void {
  if (!isBatchNorm(layer)) return;
  const l = layer as any;
  if (momentum !== undefined) l.momentum = momentum;
  if (!l[ORIGINAL]) l[ORIGINAL] = l.call.bind(l);
  const original = l[ORIGINAL];
  l[MODE] = mode;
  l.call = mode === 'batch' ? original : (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => frozenCall(l, inputs, kwargs, original);
}

/** The mode set by setBatchNormMode, or null for a layer never set (stock behaviour = 'batch'). */
export function batchNormModeOf(layer: tf.layers.Layer): BatchNormMode | null {
  return isBatchNorm(layer) ? ((layer as any)[MODE] ?? null) : null;
}

/**
 * Stored-statistics BN. On wasm with the training kernels registered, one fused op whose gradient is a
 * single pass (src/engine/wasm/fused.ts). Elsewhere one per-channel affine map, y = x·scale + shift:
 * same values as the stock inference path, but its gradient is two broadcast reductions instead of
 * FusedBatchNorm's gradient, whose Tile-heavy broadcasting made a frozen-BN training step ~20x slower.
 */
function frozenCall(l: any, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>, original: (i: unknown, k: unknown) => tf.Tensor): tf.Tensor {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  const axis = l.axis < 0 ? l.axis + x.rank : l.axis;
  if (axis !== x.rank - 1) return original(inputs, { ...kwargs, training: false });
  if (l.gamma && l.beta && x.dtype === 'float32' && tf.getBackend() === 'wasm' && tf.getKernel(BN_FROZEN, 'wasm')) {
    // a ReLU that reads nothing else is applied in the same kernel (fused.ts followingRelu)
    return withFollowingRelu(l, (relu) => batchNormFrozen(x, l.gamma.read(), l.beta.read(), l.movingMean.read(), l.movingVariance.read(), l.epsilon, relu));
  }
  return tf.tidy(() => {
    const inv = tf.rsqrt(tf.add(l.movingVariance.read(), l.epsilon));
    const scale = l.gamma ? tf.mul(inv, l.gamma.read()) : inv;
    const shift = l.beta ? tf.sub(l.beta.read(), tf.mul(l.movingMean.read(), scale)) : tf.neg(tf.mul(l.movingMean.read(), scale));
    return tf.add(tf.mul(x, scale), shift);
  });
}
