/**
 * Draws from the distributions augmentation needs, made from the run's uniform generator alone so every
 * draw is part of the one-integer RNG state that checkpoints save and resume restores.
 */
import type { Rng } from './rng';

/** Uniform on [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.next();
}

/** Integer uniform on [lo, hi) (Python's randint(lo, hi − 1), torch.randint(lo, hi)). */
export function randint(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo);
}

/** Standard normal by Box–Muller (two uniforms per draw; the second value is not kept, so no hidden state). */
export function normal(rng: Rng): number {
  const u = 1 - rng.next(); // (0, 1]: log(0) is never taken
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 through the boost Gamma(a) = Gamma(a + 1)·U^(1/a). */
export function gamma(rng: Rng, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * (1 - rng.next()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** Beta(a, b) as X/(X + Y) with X ~ Gamma(a), Y ~ Gamma(b): MixUp's and CutMix's λ. */
export function beta(rng: Rng, a: number, b: number): number {
  const x = gamma(rng, a);
  const y = gamma(rng, b);
  // both can underflow to 0 at tiny shapes; the limit of X/(X+Y) is then symmetric about 1/2
  return x + y === 0 ? 0.5 : x / (x + y);
}
