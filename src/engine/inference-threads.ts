import * as os from 'node:os';
import type { ThreadChoice } from './threads';

/**
 * Batches each inference worker must get before `auto` starts workers. A worker costs a start-up (its own tfjs, wasm
 * module and model copy: about a second on a 2-core EPYC, a guess from the training workers, not measured for
 * inference on a quiet machine) that a few batches of MobileNet or ResNet at 224 amortise; below this the run is
 * over before a second thread pays. To be re-measured with `layertune predict --threads 1|2 --json` on a quiet machine.
 */
export const MIN_BATCHES_PER_INFER_THREAD = 4;
/** Inference is memory-bound beyond two threads on the machines measured so far; each worker also holds a model copy. */
export const MAX_AUTO_INFER_THREADS = 2;

/**
 * How many threads run predict/evaluate forward passes. `auto`: one on non-wasm backends (the native ones spread
 * each kernel over the cores themselves, cpu is a fallback); on wasm min(cores, 2), but only when every thread gets
 * at least MIN_BATCHES_PER_INFER_THREAD batches, else one.
 */
export function resolveInferenceThreads(setting: 'auto' | number, tfBackend: string, batches: number, cores: number = os.availableParallelism()): ThreadChoice {
  const cap = (n: number) => Math.max(1, Math.min(n, batches));
  if (setting !== 'auto') {
    // an explicit count is honoured on any backend (the cpu backend runs it too: that is how tests compare paths)
    const threads = cap(setting);
    return { threads, reason: threads < setting ? `${threads} (--threads ${setting}, but ${batches} batch(es))` : `${threads} (--threads)` };
  }
  if (tfBackend !== 'wasm') return { threads: 1, reason: `1 (auto: the ${tfBackend} backend)` };
  const want = Math.min(cores, MAX_AUTO_INFER_THREADS);
  const threads = want >= 2 && batches >= want * MIN_BATCHES_PER_INFER_THREAD ? want : 1;
  const why =
    threads > 1
      ? `${cores} core(s), ${batches} batches`
      : want < 2
        ? 'one core'
        : `${batches} batch(es), under ${want * MIN_BATCHES_PER_INFER_THREAD} for ${want} threads`;
  return { threads, reason: `${threads} (auto: ${why})` };
}
