import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FeatureCache } from '../../src/train/feature-cache';
import { tmpDir } from '../helpers/images';

describe('frozen-prefix feature cache', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  // a stand-in prefix: row r of the batch maps to [r·10 + key number, ...]
  const prefixOf = (keys: string[]) => (rows: number[]) =>
    tf.tensor(
      rows.flatMap((r) => [Number(keys[r].slice(1)), -Number(keys[r].slice(1))]),
      [rows.length, 2],
    );

  it('computes only the rows it has not seen, and returns every row in batch order', () => {
    const cache = new FeatureCache([2], 1 << 20, null);
    const calls: number[][] = [];
    const run = (keys: string[]) => {
      const f = prefixOf(keys);
      const t = cache.batch(keys, (rows) => (calls.push(rows), f(rows)));
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    expect(run(['k1', 'k2'])).to.deep.equal([1, -1, 2, -2]);
    expect(run(['k2', 'k3', 'k1'])).to.deep.equal([2, -2, 3, -3, 1, -1]);
    expect(run(['k3', 'k1'])).to.deep.equal([3, -3, 1, -1]);
    expect(calls).to.deep.equal([[0, 1], [1]]); // the second batch computed only k3; the third nothing
    expect(cache.hits).to.equal(4);
    expect(cache.misses).to.equal(3);
  });

  it('spills past its memory budget to files and reads them back exactly', () => {
    const dir = tmpDir('lt-cache-');
    const cache = new FeatureCache([2], 8, dir); // room for one row of two float32s
    const keys = ['k1', 'k2', 'k3'];
    cache.batch(keys, prefixOf(keys)).dispose();
    expect(fs.readdirSync(dir)).to.have.length(2);
    const t = cache.batch(keys, () => {
      throw new Error('nothing should be recomputed');
    });
    expect(Array.from(t.dataSync())).to.deep.equal([1, -1, 2, -2, 3, -3]);
    t.dispose();
    expect(cache.bytesInMemory).to.equal(8);
  });

  it('a spilled entry that is damaged on disk (a flipped byte, a truncation) is computed again, with one line each', () => {
    const dir = tmpDir('lt-cache-bad-');
    const lines: string[] = [];
    const cache = new FeatureCache([2], 8, dir, (l) => lines.push(l)); // k1 in memory, k2 and k3 spilled
    const keys = ['k1', 'k2', 'k3'];
    cache.batch(keys, prefixOf(keys)).dispose();
    const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
    // which file is which key does not matter: both are damaged
    const flipped = fs.readFileSync(files[0]);
    flipped[1] ^= 0x40;
    fs.writeFileSync(files[0], flipped);
    fs.truncateSync(files[1], 3);
    const computed: number[][] = [];
    const f = prefixOf(keys);
    const t = cache.batch(keys, (rows) => (computed.push(rows), f(rows)));
    expect(Array.from(t.dataSync())).to.deep.equal([1, -1, 2, -2, 3, -3]);
    t.dispose();
    expect(computed).to.deep.equal([[1, 2]]);
    expect(cache.rebuilt).to.equal(2);
    expect(lines.sort()).to.deep.equal(
      [
        `warning: feature cache ${files[0]}: checksum mismatch; computing it again`,
        `warning: feature cache ${files[1]}: 3 bytes, expected 8; computing it again`,
      ].sort(),
    );
    // rewritten whole: the next read takes them from disk again without a word
    const again = cache.batch(keys, () => {
      throw new Error('nothing should be recomputed');
    });
    again.dispose();
    expect(lines).to.have.length(2);
  });

  it('leaks no tensors', () => {
    const cache = new FeatureCache([2], 1 << 20, null);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) cache.batch([`k${i}`, 'k0'], prefixOf([`k${i}`, 'k0'])).dispose();
    expect(tf.memory().numTensors).to.equal(before);
  });
});
