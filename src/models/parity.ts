import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';
import { readSafetensors, tensorAsFloat32 } from './safetensors';
import type { LoadedBackbone } from './torch-source';

export interface ParityResult {
  model: string;
  maxAbsErr: number;
  maxAbsLogit: number;
  argmaxAgree: boolean;
  ok: boolean;
}

/** Relative tolerance of the parity check: max |Δ| ≤ 1e-3 · max |reference logit|. */
export const PARITY_RTOL = 1e-3;

/** Pure comparison of two [batch, classes] logit arrays laid out row-major. */
export function compareLogits(model: string, got: ArrayLike<number>, want: ArrayLike<number>, classes: number, rtol = PARITY_RTOL): ParityResult {
  if (got.length !== want.length) throw new RangeError(`${model}: ${got.length} logits computed, ${want.length} expected`);
  let maxAbsErr = 0;
  let maxAbsLogit = 0;
  for (let i = 0; i < want.length; i++) {
    // NaN must fail, so compare with !(<=) rather than Math.max
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= maxAbsErr)) maxAbsErr = Number.isNaN(d) ? NaN : d;
    maxAbsLogit = Math.max(maxAbsLogit, Math.abs(want[i]));
  }
  let argmaxAgree = true;
  for (let r = 0; r < want.length / classes; r++) {
    if (argmax(got, r * classes, classes) !== argmax(want, r * classes, classes)) argmaxAgree = false;
  }
  const ok = argmaxAgree && maxAbsErr <= rtol * maxAbsLogit;
  return { model, maxAbsErr, maxAbsLogit, argmaxAgree, ok };
}

function argmax(a: ArrayLike<number>, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

/**
 * Runs a loaded classifier on the `input_nhwc` of an `.io.safetensors` file (input already in
 * the network's range) and compares with its `logits` (torchvision, eval mode).
 */
export function checkParity(name: string, loaded: LoadedBackbone, ioFile: string): ParityResult {
  if (!loaded.classifier) throw new ModelFormatError(loaded.source, 'has no classifier (fc / classifier.1) to compare logits with');
  const io = readSafetensors(ioFile);
  for (const k of ['input_nhwc', 'logits']) if (!io.tensors.has(k)) throw new ModelFormatError(ioFile, `tensor "${k}": missing`);
  const xShape = io.tensors.get('input_nhwc')!.shape;
  const want = tensorAsFloat32(io, 'logits');
  const got = tf.tidy(() => {
    const x = tf.tensor(tensorAsFloat32(io, 'input_nhwc'), xShape, 'float32');
    return (loaded.classifier!.predict(x) as tf.Tensor).dataSync().slice();
  });
  return compareLogits(name, got, want, io.tensors.get('logits')!.shape[1]);
}
