/**
 * What an exact resume needs from the data stage: batches and flips that depend only on the RNG state and
 * the position in the epoch, never on which files a process has already found to be undecodable, and a way
 * to re-enter an epoch part-way (`skip`).
 */
import { expect } from 'chai';
import { rawBatches, type RawBatch } from '../../src/data/batches';
import { Rng } from '../../src/data/rng';
import { MemorySource } from '../helpers/memory-source';

const OPTS = { size: 8, batch: 3, shuffle: true, flip: true };

async function pass(source: MemorySource, rng: Rng, skip = 0): Promise<RawBatch[]> {
  const out: RawBatch[] = [];
  for await (const b of rawBatches(source, source.train, { ...OPTS, skip }, rng)) out.push(b);
  return out;
}

const summary = (bs: RawBatch[]) => bs.map((b) => ({ index: b.index, keys: b.keys, labels: b.labels }));

describe('reliability: batch order for exact resume', () => {
  it('a process that already knows the bad files makes the same batches and RNG draws as one that finds them', async () => {
    const fresh = new MemorySource(['a', 'b'], 5, 0, ['x.jpg', 'y.jpg']);
    const knowing = new MemorySource(['a', 'b'], 5, 0, ['x.jpg', 'y.jpg']);
    await pass(knowing, new Rng(99)); // first epoch: finds the bad files
    expect(knowing.skipped).to.have.length(2);
    const r1 = new Rng(4);
    const r2 = new Rng(4);
    const a = await pass(fresh, r1);
    const b = await pass(knowing, r2);
    expect(summary(b)).to.deep.equal(summary(a));
    expect(r2.getState()).to.equal(r1.getState());
    expect(a.map((x) => x.n).reduce((p, q) => p + q, 0)).to.equal(10); // the two bad ones left out
  });

  it('skip = k re-enters the epoch at batch k: the same remaining batches, pixels and final RNG state', async () => {
    const src = new MemorySource(['a', 'b', 'c'], 4, 0, ['bad.jpg']);
    const start = new Rng(21).getState();
    const full = await pass(src, new Rng(start));
    expect(full.length).to.equal(5); // 13 examples in batches of 3
    for (const k of [1, 3, 4]) {
      const rng = new Rng(start);
      const rest = await pass(src, rng, k);
      const want = full.filter((b) => b.index >= k);
      expect(summary(rest), `skip ${k}`).to.deep.equal(summary(want));
      rest.forEach((b, i) => expect(Buffer.from(b.pixels).equals(Buffer.from(want[i].pixels))).to.equal(true));
      const end = new Rng(start);
      await pass(src, end);
      expect(rng.getState()).to.equal(end.getState());
    }
    expect(src.skipped.map((s) => s.file)).to.deep.equal(['bad:bad.jpg']);
  });
});
