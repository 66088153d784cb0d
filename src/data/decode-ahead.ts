import type { Example } from './source';

/**
 * Decodes started before their batch is asked for, keyed by position in the pass's order, so the next batch's images
 * are decoded (on sharp's threads) while the current batch trains. Decoding draws nothing from the RNG, so the
 * batches, their draws and the RNG state are the same with or without it; only when the pixels arrive changes.
 * A failed early decode is held until its batch takes it, where it is reported as a decode at that point would be.
 */
export class DecodeAhead<T> {
  private readonly started = new Map<number, Promise<T>>();

  constructor(
    private readonly order: readonly Example[],
    private readonly fetch: (ex: Example) => Promise<T>,
    /** Examples not to start (files already known to be undecodable). */
    private readonly known: (ex: Example) => boolean,
  ) {}

  /** Starts the decodes of positions [from, to) that are not started yet. */
  start(from: number, to: number): void {
    for (let p = Math.max(0, from); p < Math.min(to, this.order.length); p++) {
      const ex = this.order[p];
      if (this.started.has(p) || this.known(ex)) continue;
      const d = this.fetch(ex);
      // held for `take`; without a handler here a failure before its batch arrives would be an unhandled rejection
      d.catch(() => {});
      this.started.set(p, d);
    }
  }

  /** The decode of `order[p]`: the one started ahead, else one started now. */
  take(p: number): Promise<T> {
    const d = this.started.get(p);
    if (!d) return this.fetch(this.order[p]);
    this.started.delete(p);
    return d;
  }
}
