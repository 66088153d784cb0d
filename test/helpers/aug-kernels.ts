import { expect } from 'chai';
import { AUG_KERNELS_ENV } from '../../src/engine/wasm/augment';

/** Index of the first element where a and b differ as float32 bit patterns (−0 ≠ 0), or −1. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).to.equal(b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

/** Runs f with the augmentation kernels off (their JavaScript reference loops), restoring the setting after. */
export function withJs<T>(f: () => T): T {
  const before = process.env[AUG_KERNELS_ENV];
  process.env[AUG_KERNELS_ENV] = 'js';
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env[AUG_KERNELS_ENV];
    else process.env[AUG_KERNELS_ENV] = before;
  }
}
