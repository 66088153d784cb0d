import { DataError } from '../errors';
import { flipHorizontal } from './decode';
import type { Rng } from './rng';
import type { DataSource, Example } from './source';

export interface RawBatch {
  /** n·size·size·3 bytes, HWC per image. */
  pixels: Uint8Array;
  labels: number[];
  /** Stable identity of each row (example key + augmentation), for the frozen-prefix cache. */
  keys: string[];
  n: number;
  /** Position of this batch in the pass, counting batches that yielded nothing (all undecodable). */
  index: number;
}

export interface BatchOptions {
  size: number;
  batch: number;
  shuffle: boolean;
  flip: boolean;
  /**
   * Leading batches to pass over: their RNG draws are made, nothing is decoded or yielded. Resuming mid-epoch
   * from (RNG state at the epoch's start, index of the last batch done + 1) gives exactly the rest of the epoch.
   */
  skip?: number;
}

/**
 * Yields raw batches one at a time, decoding only the images of the current batch (plus what the
 * source caches), so memory does not grow with the data set. Undecodable files are recorded on the
 * source once and not decoded again. Which examples share a batch, and the RNG draws, never depend
 * on which files are already known to be bad: a run resumed in a fresh process (which has to
 * rediscover them) sees the same batches and the same flips as the uninterrupted run.
 */
export async function* rawBatches(source: DataSource, examples: Example[], opts: BatchOptions, rng: Rng | null): AsyncGenerator<RawBatch> {
  const order = opts.shuffle && rng ? rng.shuffle(examples) : examples;
  const bad = new Set(source.skipped.map((s) => s.file));
  const per = opts.size * opts.size * 3;
  let pending: Array<{ ex: Example; flip: boolean }> = [];
  let index = 0;
  const emit = async (items: typeof pending): Promise<RawBatch | null> => {
    if (index++ < (opts.skip ?? 0)) return null;
    const decoded = await Promise.all(
      items.map(async ({ ex, flip }) => {
        if (bad.has(ex.key)) return null;
        try {
          const px = await source.pixels(ex, opts.size);
          return { ex, flip, px: flip ? flipHorizontal(px, opts.size) : px };
        } catch (e) {
          if (!(e instanceof DataError)) throw e;
          (source.skipped as Array<{ file: string; reason: string }>).push({ file: ex.key, reason: e.message });
          process.emitWarning(`skipping ${e.message}`, { code: 'LAYERTUNE_SKIPPED_IMAGE' });
          bad.add(ex.key);
          return null;
        }
      }),
    );
    const ok = decoded.filter((d): d is NonNullable<typeof d> => d !== null);
    if (ok.length === 0) return null;
    const pixels = new Uint8Array(ok.length * per);
    ok.forEach((d, i) => pixels.set(d.px, i * per));
    return {
      pixels,
      labels: ok.map((d) => d.ex.label),
      keys: ok.map((d) => `${d.ex.key}${d.flip ? '#flip' : ''}`),
      n: ok.length,
      index: index - 1,
    };
  };
  for (const ex of order) {
    // the flip draw happens for every example so the RNG stream does not depend on decode failures
    const flip = opts.flip && rng !== null && rng.next() < 0.5;
    pending.push({ ex, flip });
    if (pending.length === opts.batch) {
      const b = await emit(pending);
      pending = [];
      if (b) yield b;
    }
  }
  if (pending.length) {
    const b = await emit(pending);
    if (b) yield b;
  }
}
