/**
 * Batches through a model in input order, with loading (decode) kept ahead of compute: while batch i runs, batches
 * i+1 .. i+depth are already being loaded. sharp decodes on libuv's thread pool, so a load in flight overlaps the
 * forward pass without a thread of our own. Several lanes (one per inference worker) take batches as they free up;
 * each result lands at its batch's index, so the order never depends on which lane finished first.
 */

/** Starts loads ahead of use; `get` must be called with increasing indices (each once). */
export class Prefetch<T> {
  private readonly started = new Map<number, Promise<T>>();
  private nextToStart = 0;

  constructor(
    private readonly count: number,
    private readonly load: (i: number) => Promise<T>,
    private readonly depth: number,
  ) {}

  /** Batch i's value; starts every load up to i + depth first. */
  get(i: number): Promise<T> {
    const end = Math.min(this.count, i + 1 + this.depth);
    while (this.nextToStart < end) {
      const p = this.load(this.nextToStart);
      // a load that fails before anyone waits on it must not be an unhandled rejection: `get` rethrows it
      p.catch(() => {});
      this.started.set(this.nextToStart++, p);
    }
    const p = this.started.get(i);
    if (!p) throw new RangeError(`batch ${i} was already taken or is out of range (0..${this.count - 1})`);
    this.started.delete(i);
    return p;
  }

  /** Loads that were started and never taken (after a failure); awaited so none outlives the run. */
  async drain(): Promise<void> {
    await Promise.allSettled(this.started.values());
    this.started.clear();
  }
}

/**
 * Runs `count` batches over `lanes` concurrent lanes (`run` is told which, 0 .. lanes-1) and returns their results in batch order. The first failure
 * stops every lane from taking more batches and is rethrown once the batches in flight have settled.
 */
export async function runInOrder<T, R>(
  count: number,
  load: (i: number) => Promise<T>,
  run: (batch: T, i: number, lane: number) => Promise<R>,
  opts: { lanes: number; depth: number },
): Promise<R[]> {
  const prefetch = new Prefetch(count, load, opts.depth);
  const out = new Array<R>(count);
  let next = 0;
  let failure: unknown = null;
  const lane = async (_: unknown, id: number): Promise<void> => {
    while (failure === null && next < count) {
      const i = next++;
      try {
        out[i] = await run(await prefetch.get(i), i, id);
      } catch (e) {
        if (failure === null) failure = e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.lanes, count)) }, lane));
  await prefetch.drain();
  if (failure !== null) throw failure;
  return out;
}

/**
 * An index-based `load` for runInOrder over an async iterable whose items come in batch order (e.g. the trainer's
 * rawBatches): load(i) is the iterable's i-th item. Prefetch asks for indices in increasing order, and an async
 * generator queues overlapping next() calls in call order, so each index gets its own item.
 */
export function loadsFrom<T>(items: AsyncIterable<T>): (i: number) => Promise<T> {
  const it = items[Symbol.asyncIterator]();
  let asked = 0;
  return async (i: number) => {
    if (i !== asked++) throw new RangeError(`batch ${i} asked for out of order (expected ${asked - 1})`);
    const r = await it.next();
    if (r.done) throw new RangeError(`the batches ended before batch ${i}`);
    return r.value;
  };
}
