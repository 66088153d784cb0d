import * as os from 'node:os';

/** At least this many images per thread: BatchNorm in training mode normalises each thread's shard alone. */
export const MIN_IMAGES_PER_THREAD = 8;
/** Beyond 4 shards the per-thread GEMMs get small and each thread holds a model copy. */
export const MAX_AUTO_THREADS = 4;

/**
 * Below this many forward multiply-adds per image (of the layers that train), `auto` keeps one thread: each step
 * then spends more of its time copying weights to the workers and summing their gradients than the second core
 * saves. Chosen between the one model measured not to pay (issue 16, 2 AMD EPYC cores, batch 16 at 224:
 * mobilenet_v1_0.25, 41M multiply-adds, 14.5 ms/image on 1 thread against 15.4 on 2) and the smallest that did
 * (mobilenet_v2_1.0, 300M: 81.0 against 64.9), near their geometric mean (111M). A bracket, not a measured
 * crossover: re-measure with `npm run bench -- --backends wasm,wasm:2` on a quiet machine before tightening it.
 */
export const MIN_MULTIPLY_ADDS_FOR_THREADS = 100e6;

export interface ThreadChoice {
  threads: number;
  reason: string;
}

/**
 * How many threads compute each batch's gradients. `multiplyAddsPerImage` (of the layers that train; absent: not
 * considered) lets `auto` keep one thread for models too small to pay for a second. Only the wasm backend needs our worker threads: the
 * native TensorFlow backends spread every kernel over the cores themselves, and the cpu backend is a
 * fallback no one should train on.
 */
export function resolveThreads(
  setting: 'auto' | number,
  tfBackend: string,
  batch: number,
  cores: number = os.availableParallelism(),
  multiplyAddsPerImage?: number,
): ThreadChoice {
  if (tfBackend !== 'wasm') {
    return {
      threads: 1,
      reason:
        setting === 'auto' || setting === 1
          ? `one thread: the ${tfBackend} backend`
          : `one thread: train.threads applies to the wasm backend only, not ${tfBackend}`,
    };
  }
  if (setting !== 'auto') {
    const threads = Math.max(1, Math.min(setting, batch));
    return { threads, reason: threads < setting ? `${threads} (train.threads ${setting}, but a batch of ${batch})` : `${threads} (train.threads)` };
  }
  if (multiplyAddsPerImage !== undefined && multiplyAddsPerImage < MIN_MULTIPLY_ADDS_FOR_THREADS && cores >= 2) {
    const m = (v: number) => `${(v / 1e6).toFixed(0)}M`;
    return {
      threads: 1,
      reason: `1 (auto: ${m(multiplyAddsPerImage)} multiply-adds per image, under the ${m(MIN_MULTIPLY_ADDS_FOR_THREADS)} a second thread needs)`,
    };
  }
  const threads = Math.max(1, Math.min(cores, MAX_AUTO_THREADS, Math.floor(batch / MIN_IMAGES_PER_THREAD)));
  const why =
    threads === 1 ? (cores < 2 ? 'one core' : `a batch of ${batch} is under ${2 * MIN_IMAGES_PER_THREAD} images`) : `${cores} core(s), batch ${batch}`;
  return { threads, reason: `${threads} (auto: ${why})` };
}
