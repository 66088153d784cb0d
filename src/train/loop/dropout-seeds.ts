/**
 * Dropout masks as a function of the run's state, so a resumed run continues bit for bit. tfjs's Dropout with a
 * fixed seed draws the SAME mask on every call (its seed re-seeds a fresh generator each time), so each dropout
 * layer is re-seeded before every forward pass from (its seed, the forward pass's index, the shard).
 */
import type * as tf from '@tensorflow/tfjs';
import { Rng } from '../../data/rng';
import { flatLayers } from '../../optim/named';

/** A 31-bit seed from two integers (mulberry32 of a mix): dropout masks per forward pass. */
export function mixSeed(a: number, b: number): number {
  const r = new Rng((Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul((b + 1) >>> 0, 0x85ebca6b)) >>> 0);
  return Math.floor(r.next() * 2 ** 31);
}

export class DropoutSeeds {
  private readonly dropouts: Array<{ layer: tf.layers.Layer; base: number }>;

  constructor(model: tf.LayersModel, runSeed: number) {
    this.dropouts = flatLayers(model)
      .filter((l) => l.getClassName() === 'Dropout')
      .map((layer, i) => ({ layer, base: mixSeed((layer as unknown as { seed?: number }).seed ?? runSeed, i) }));
  }

  /** Seeds for one forward pass: shard 0 keeps the single-thread seeds, so one thread is unchanged. */
  seedsFor(forwardPass: number, shard: number): number[] {
    return this.dropouts.map((d) => (shard === 0 ? mixSeed(d.base, forwardPass) : mixSeed(mixSeed(d.base, forwardPass), shard)));
  }

  /** Re-seeds this thread's dropout layers for a forward pass. */
  apply(forwardPass: number): void {
    const seeds = this.seedsFor(forwardPass, 0);
    this.dropouts.forEach((d, i) => ((d.layer as unknown as { seed: number }).seed = seeds[i]));
  }
}
