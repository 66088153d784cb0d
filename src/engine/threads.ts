import * as os from 'node:os';

/** At least this many images per thread: BatchNorm in training mode normalises each thread's shard alone. */
export const MIN_IMAGES_PER_THREAD = 8;
/** Beyond 4 shards the per-thread GEMMs get small and each thread holds a model copy. */
export const MAX_AUTO_THREADS = 4;

/**
 * Below this many forward multiply-adds per image (of the layers that train), `auto` keeps one thread: each step
 * then spends more of its time copying weights to the workers and summing their gradients than the second core
 * saves. Measured on 2 AMD EPYC cores (load about 2, `npm run bench -- --models mobilenet_v1_0.25 --backends
 * wasm,wasm:2 --repeats 3 --size S --no-peer`, batch 16, ms per image, medians of 3, 1 thread / 2 threads):
 * 96 px (7.5M) 8.30 / 9.46 and 128 px (13.4M) 8.52 / 10.4 do not pay; 160 px (20.9M) 15.8 / 12.9, 192 px (30.7M)
 * 21.1 / 18.0 and 224 px (41M) 28.0 / 21.4 do. The threshold sits between 13.4M and 20.9M, near their geometric
 * mean. (The one earlier reading, 14.5 / 15.4 at 224, did not reproduce.)
 */
export const MIN_MULTIPLY_ADDS_FOR_THREADS = 16e6;

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
