import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { initWasm, onBackend, randomArray } from './wasm_setup';

describe('engine/wasm Slice replacement vs cpu', () => {
  before(initWasm);
  const cases: Array<[number[], number[], number[]]> = [
    [
      [2, 9, 9, 5],
      [0, 1, 1, 0],
      [2, 8, 8, 5],
    ], // ZeroPadding2D gradient: whole rows of channels
    [
      [2, 9, 9, 5],
      [1, 2, 0, 1],
      [1, 3, 9, 3],
    ], // partial channels
    [
      [7, 6],
      [2, 1],
      [3, 4],
    ],
    [[11], [3], [5]],
    [
      [3, 4, 5],
      [0, 0, 0],
      [-1, 2, -1],
    ],
  ];
  for (const [shape, begin, size] of cases) {
    it(`${JSON.stringify(shape)} begin ${JSON.stringify(begin)} size ${JSON.stringify(size)} (float32 and int32)`, async () => {
      for (const dtype of ['float32', 'int32'] as const) {
        const n = shape.reduce((a, b) => a * b, 1);
        const vals = Array.from(randomArray(n, 51), (v) => Math.round(v * 1000));
        const run = (): number[] => tf.tidy(() => Array.from(tf.slice(tf.tensor(vals, shape, dtype), begin, size).dataSync()));
        const ref = await onBackend('cpu', run);
        const got = await onBackend('wasm', run);
        expect(got).to.deep.equal(ref);
      }
    });
  }
});

describe('engine/wasm Tile replacement vs cpu', () => {
  before(initWasm);
  const cases: Array<[number[], number[]]> = [
    [
      [1, 1, 1, 8],
      [2, 5, 7, 1],
    ], // BatchNorm-gradient broadcast
    [
      [2, 3, 1, 5],
      [1, 2, 4, 3],
    ],
    [
      [3, 2],
      [2, 3],
    ],
    [[4], [3]],
    [
      [2, 1, 3],
      [1, 0, 2],
    ],
  ];
  for (const [shape, reps] of cases) {
    it(`${JSON.stringify(shape)} reps ${JSON.stringify(reps)} (float32 and int32)`, async () => {
      for (const dtype of ['float32', 'int32'] as const) {
        const n = shape.reduce((a, b) => a * b, 1);
        const vals = Array.from(randomArray(n, 52), (v) => Math.round(v * 1000));
        const run = (): number[] => tf.tidy(() => Array.from(tf.tile(tf.tensor(vals, shape, dtype), reps).dataSync()));
        expect(await onBackend('wasm', run)).to.deep.equal(await onBackend('cpu', run));
      }
    });
  }
});
