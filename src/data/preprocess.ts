import * as tf from '@tensorflow/tfjs';
import type { Preprocess } from '../models/types';

/** Maps a float tensor of pixel values in [0, 255] into the backbone's input range. */
export function preprocessTensor(x: tf.Tensor4D, p: Preprocess): tf.Tensor4D {
  return tf.tidy(() => {
    if (p.kind === 'scale') return x.mul((p.high - p.low) / 255).add(p.low) as tf.Tensor4D;
    const mean = tf.tensor1d(p.mean.map((m) => m * 255));
    const std = tf.tensor1d(p.std.map((s) => s * 255));
    return x.sub(mean).div(std) as tf.Tensor4D;
  });
}

/** Turns a stack of 8-bit HWC images into the backbone's input range. */
export function preprocessBatch(pixels: Uint8Array, n: number, size: number, p: Preprocess): tf.Tensor4D {
  return tf.tidy(() => preprocessTensor(tf.tensor4d(Float32Array.from(pixels), [n, size, size, 3]), p));
}
