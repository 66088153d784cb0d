/**
 * A small seeded PRNG (mulberry32) whose whole state is one 32-bit integer, so data order can be
 * checkpointed and resumed exactly. The data order and the augmentation draws share the trainer's one Rng, whose
 * state the trainer's own state carries (`TrainerState.rng`), so it is not registered as a part of its own.
 */
import type { Stateful } from '../stateful';

export class Rng implements Stateful<number> {
  readonly stateKey = 'rng';
  constructor(private state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  shuffle<T>(xs: T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
  getState(): number {
    return this.state;
  }
  setState(s: number): void {
    this.state = s >>> 0;
  }
}
