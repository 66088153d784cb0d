/**
 * Decoding ahead (src/data/decode-ahead.ts, rawBatches' `decodeAhead`): the next batch's images are asked for while
 * the current batch is with the consumer, and nothing the stream yields or draws changes because of it.
 */
import { expect } from 'chai';
import { rawBatches, type BatchOptions, type RawBatch } from '../../src/data/batches';
import { Rng } from '../../src/data/rng';
import type { Example } from '../../src/data/source';
import { MemorySource } from '../helpers/memory-source';

/** A MemorySource that logs which keys were asked for, in order. */
class LoggingSource extends MemorySource {
  readonly asked: string[] = [];
  override pixels(ex: Example, size: number): Promise<Uint8Array> {
    this.asked.push(ex.key);
    return super.pixels(ex, size);
  }
}

const OPTS: BatchOptions = { size: 8, batch: 3, shuffle: true, flip: true };

async function pass(source: MemorySource, rng: Rng, opts: Partial<BatchOptions> = {}): Promise<RawBatch[]> {
  const out: RawBatch[] = [];
  for await (const b of rawBatches(source, source.train, { ...OPTS, ...opts }, rng)) out.push(b);
  return out;
}

const summary = (bs: RawBatch[]) => bs.map((b) => ({ index: b.index, keys: b.keys, labels: b.labels, pixels: Buffer.from(b.pixels).toString('hex') }));

describe('decoding ahead in the batch stream', () => {
  it('asks for batch k+1 while batch k is with the consumer, and for nothing further', async () => {
    const src = new LoggingSource(['a', 'b'], 6, 0); // 12 images, 4 batches of 3
    const order = new Rng(5).shuffle(src.train).map((e) => e.key);
    const seen: string[][] = [];
    for await (const b of rawBatches(src, src.train, OPTS, new Rng(5))) {
      // the consumer holds batch b.index: its own 3 images and the next batch's 3 have been asked for
      seen.push([...src.asked]);
      expect(b.keys.map((k) => k.replace('#flip', ''))).to.deep.equal(order.slice(b.index * 3, b.index * 3 + 3));
    }
    expect(seen.map((s) => s.length)).to.deep.equal([6, 9, 12, 12]);
    // each image once, in the shuffled order
    expect(src.asked).to.deep.equal(order);
  });

  it('with decodeAhead 0 each batch asks only for its own images when it is asked for', async () => {
    const src = new LoggingSource(['a', 'b'], 6, 0);
    const counts: number[] = [];
    for await (const _ of rawBatches(src, src.train, { ...OPTS, decodeAhead: 0 }, new Rng(5))) counts.push(src.asked.length);
    expect(counts).to.deep.equal([3, 6, 9, 12]);
  });

  it('yields the same batches, pixels, flips and final RNG state as decoding on demand, bad files and a resume skip included', async () => {
    for (const skip of [0, 2]) {
      for (const ahead of [1, 2]) {
        const onDemand = new MemorySource(['a', 'b', 'c'], 4, 0, ['x.jpg', 'y.jpg']);
        const early = new MemorySource(['a', 'b', 'c'], 4, 0, ['x.jpg', 'y.jpg']);
        const r0 = new Rng(31);
        const r1 = new Rng(31);
        const a = await pass(onDemand, r0, { decodeAhead: 0, skip });
        const b = await pass(early, r1, { decodeAhead: ahead, skip });
        expect(summary(b), `skip ${skip}, ahead ${ahead}`).to.deep.equal(summary(a));
        expect(r1.getState()).to.equal(r0.getState());
        // each bad file recorded once, as on demand (a skip passes over batches without decoding them)
        expect(early.skipped).to.deep.equal(onDemand.skipped);
      }
    }
    const full = await pass(new MemorySource(['a', 'b', 'c'], 4, 0, ['x.jpg', 'y.jpg']), new Rng(31));
    expect(full.reduce((s, b) => s + b.n, 0)).to.equal(12); // 14 examples, the two bad ones left out
  });

  it('a stream left after its first batch leaves no unhandled rejection from an early decode that failed', async () => {
    const rejections: unknown[] = [];
    const spy = (e: unknown) => rejections.push(e);
    process.on('unhandledRejection', spy);
    try {
      // batch size 1 and the bad file second in a fixed order: it is decoded ahead while the first image is consumed
      const src = new MemorySource(['a'], 1, 0, ['z.jpg']);
      for await (const b of rawBatches(src, src.train, { size: 8, batch: 1, shuffle: false, flip: false }, null)) {
        expect(b.keys).to.deep.equal(['train:0:0']);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
      expect(rejections).to.deep.equal([]);
      // left unconsumed, the failure was never recorded as a skipped file
      expect(src.skipped).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', spy);
    }
  });
});
