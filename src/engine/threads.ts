import * as os from 'node:os';

/** At least this many images per thread: BatchNorm in training mode normalises each thread's shard alone. */
export const MIN_IMAGES_PER_THREAD = 8;
/** Beyond 4 shards the per-thread GEMMs get small and each thread holds a model copy. */
export const MAX_AUTO_THREADS = 4;

export interface ThreadChoice {
  threads: number;
  reason: string;
}

/**
 * How many threads compute each batch's gradients. Only the wasm backend needs our worker threads: the
 * native TensorFlow backends spread every kernel over the cores themselves, and the cpu backend is a
 * fallback no one should train on.
 */
export function resolveThreads(setting: 'auto' | number, tfBackend: string, batch: number, cores: number = os.availableParallelism()): ThreadChoice {
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
  const threads = Math.max(1, Math.min(cores, MAX_AUTO_THREADS, Math.floor(batch / MIN_IMAGES_PER_THREAD)));
  const why =
    threads === 1 ? (cores < 2 ? 'one core' : `a batch of ${batch} is under ${2 * MIN_IMAGES_PER_THREAD} images`) : `${cores} core(s), batch ${batch}`;
  return { threads, reason: `${threads} (auto: ${why})` };
}
