import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { preprocessTensor } from '../../src/data/preprocess';
import { tileGrid, toPixels } from '../../src/data/preview';

describe('augment preview', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('maps network inputs back to the pixels they came from, for both preprocess kinds', () => {
    const px = Uint8Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => (i * 37) % 256);
    for (const p of [
      { kind: 'scale' as const, low: -1, high: 1 },
      { kind: 'normalize' as const, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    ]) {
      const n0 = tf.memory().numTensors;
      const x = tf.tidy(() => preprocessTensor(tf.tensor4d(Float32Array.from(px), [2, 2, 2, 3]), p as never));
      expect([...toPixels(x, p as never)]).to.deep.equal([...px]);
      x.dispose();
      expect(tf.memory().numTensors).to.equal(n0);
    }
  });

  it('tiles images row by row with a white gap', () => {
    // three 1×1 images (red, green, blue) two wide with a 1-pixel gap: a 5×5 canvas
    const g = tileGrid(new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255]), 3, 1, 2, 1);
    expect([g.width, g.height]).to.deep.equal([5, 5]);
    const at = (x: number, y: number) => [...g.data.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3)];
    expect(at(1, 1)).to.deep.equal([255, 0, 0]);
    expect(at(3, 1)).to.deep.equal([0, 255, 0]);
    expect(at(1, 3)).to.deep.equal([0, 0, 255]);
    expect(at(3, 3)).to.deep.equal([255, 255, 255]);
    expect(at(2, 1)).to.deep.equal([255, 255, 255]);
  });
});
