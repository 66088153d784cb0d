import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend } from './wasm_setup';

describe('engine/wasm Identity shares buffers', () => {
  before(initWasm);

  it('a clone outlives its source, keeps its values, and frees the heap when the last one goes', async () => {
    await onBackend('wasm', () => {
      const base = tf.memory().numBytes;
      const x = tf.tensor1d([1, 2, 3, 4]);
      const y = x.clone();
      const b = tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } };
      expect(b.dataIdMap.get(y.dataId).memoryOffset).to.equal(b.dataIdMap.get(x.dataId).memoryOffset);
      x.dispose();
      expect(Array.from(y.dataSync())).to.deep.equal([1, 2, 3, 4]);
      // A variable assigned from the clone gets its own buffer: writes never alias.
      const v = tf.variable(y);
      const nines = tf.tensor1d([9, 9, 9, 9]);
      v.assign(nines);
      expect(Array.from(y.dataSync())).to.deep.equal([1, 2, 3, 4]);
      tf.dispose([y, v, nines]);
      expect(tf.memory().numBytes).to.equal(base);
    });
  });
});
