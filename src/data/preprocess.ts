import * as tf from '@tensorflow/tfjs';
import type { Preprocess } from '../models/types';

/** Turns a stack of 8-bit HWC images into the backbone's input range. */
export function preprocessBatch(pixels: Uint8Array, n: number, size: number, p: Preprocess): tf.Tensor4D {
  return tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels), [n, size, size, 3]);
    if (p.kind === 'scale') return x.mul((p.high - p.low) / 255).add(p.low) as tf.Tensor4D;
    const mean = tf.tensor1d(p.mean.map((m) => m * 255));
    const std = tf.tensor1d(p.std.map((s) => s * 255));
    return x.sub(mean).div(std) as tf.Tensor4D;
  });
}
