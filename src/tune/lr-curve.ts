/**
 * The maths of the LR range test, pure and separately testable: the exponential sweep, the smoothed loss,
 * the stop rule, and three readings of the curve (ours, fastai's `valley`, fastai's `minimum/10`).
 */

/** Rate at step i of an exponential sweep from `start` to `end` over `steps` steps (step 0 = start, step steps−1 = end). */
export function sweepRate(i: number, start: number, end: number, steps: number): number {
  if (steps <= 1) return start;
  return start * (end / start) ** (i / (steps - 1));
}

/**
 * Exponential moving average with bias correction (Adam's, as fastai's LR finder uses):
 *   avg_i = β·avg_{i−1} + (1−β)·x_i,  avg_{−1} = 0,   smoothed_i = avg_i / (1 − β^(i+1)).
 * So smoothed_0 = x_0 exactly, rather than (1−β)·x_0.
 */
export class SmoothedLoss {
  private avg = 0;
  private n = 0;
  constructor(readonly beta = 0.98) {}
  push(x: number): number {
    this.avg = this.beta * this.avg + (1 - this.beta) * x;
    this.n++;
    return this.value;
  }
  get value(): number {
    return this.n === 0 ? NaN : this.avg / (1 - this.beta ** this.n);
  }
}

export function smooth(xs: number[], beta = 0.98): number[] {
  const s = new SmoothedLoss(beta);
  return xs.map((x) => s.push(x));
}

/**
 * Centred moving mean over `k` points each side (fewer at the ends), non-finite values left out. Unlike the EMA it
 * does not lag: an EMA with β = 0.98 averages over ~50 steps, which in a 100-step sweep over 8 decades is about
 * 4 decades of rate, so slopes read off it sit decades too high (measured on the flowers sample: the EMA reading
 * was 3.8e-2, and training there diverged to a validation loss of 14).
 */
export function centredMean(xs: number[], k: number): number[] {
  return xs.map((_, i) => {
    let s = 0;
    let n = 0;
    for (let j = Math.max(0, i - k); j <= Math.min(xs.length - 1, i + k); j++) {
      if (Number.isFinite(xs[j])) {
        s += xs[j];
        n++;
      }
    }
    return n ? s / n : NaN;
  });
}

/** fastai's stop rule: the smoothed loss is NaN/∞ or above `factor` × the best smoothed loss so far. */
export function shouldStop(smoothed: number, best: number, factor = 4): boolean {
  return !Number.isFinite(smoothed) || smoothed > factor * best;
}

export interface CurveReading {
  /** The rate this reading suggests, or null. */
  lr: number | null;
  /** Index into the (trimmed) arrays it was read at. */
  index: number | null;
}

export interface SuggestOptions {
  /** Points on each side for the slope (central difference over 2h points). */
  halfWindow?: number;
  /** "Clearly decreasing": the slope per decade is at least this fraction of the steepest slope. */
  steepFraction?: number;
  /** The loss must fall by at least this fraction of its starting value for any suggestion at all. */
  minDrop?: number;
}

/**
 * Slope of `loss` against log10(lr) at every point: central differences over `h` points each side,
 * one-sided (shorter) at the ends. Units: loss per decade of learning rate.
 */
export function slopes(lrs: number[], losses: number[], h = 1): number[] {
  const n = lrs.length;
  return lrs.map((_, i) => {
    const a = Math.max(0, i - h);
    const b = Math.min(n - 1, i + h);
    if (b === a) return 0;
    return (losses[b] - losses[a]) / (Math.log10(lrs[b]) - Math.log10(lrs[a]));
  });
}

export interface Suggestion extends CurveReading {
  /** Why there is no suggestion (the loss never fell clearly), when lr is null. */
  reason?: string;
  /** The steepest slope found (loss per decade), for the report. */
  steepestSlope?: number;
}

/**
 * The highest learning rate at which the loss is still clearly decreasing:
 *   - m = index of the minimum smoothed loss; only points i ≤ m (before the loss turns up) count;
 *   - d_i = slope per decade (see `slopes`), d* = min over i ≤ m of d_i (the steepest descent, < 0);
 *   - the suggestion is the largest i ≤ m with d_i ≤ steepFraction · d* (default: still falling at
 *     least half as fast as at its steepest).
 * No suggestion when the loss's minimum is not at least `minDrop` (default 2%) below its first
 * value, or when no slope before the minimum is negative: then the finder could not decrease the loss.
 */
export function suggestLr(lrs: number[], losses: number[], opts: SuggestOptions = {}): Suggestion {
  const h = opts.halfWindow ?? 1;
  const frac = opts.steepFraction ?? 0.5;
  const minDrop = opts.minDrop ?? 0.02;
  const n = Math.min(lrs.length, losses.length);
  if (n < 3) return { lr: null, index: null, reason: `too few points (${n}) to read a slope` };
  let m = 0;
  for (let i = 1; i < n; i++) if (losses[i] < losses[m]) m = i;
  const first = losses[0];
  if (!(first - losses[m] >= minDrop * Math.abs(first))) {
    return {
      lr: null,
      index: null,
      reason: `the loss never fell by ${(minDrop * 100).toFixed(0)}% (from ${first.toPrecision(4)} to at best ${losses[m].toPrecision(4)}): no rate in the sweep decreases it`,
    };
  }
  const d = slopes(lrs.slice(0, n), losses.slice(0, n), h);
  let steepest = 0;
  for (let i = 0; i <= m; i++) steepest = Math.min(steepest, d[i]);
  if (!(steepest < 0)) return { lr: null, index: null, reason: 'no falling stretch before the minimum' };
  let best = -1;
  for (let i = 0; i <= m; i++) if (d[i] <= frac * steepest) best = i;
  return { lr: lrs[best], index: best, steepestSlope: steepest };
}

/**
 * fastai's `valley` (fastai.callback.schedule, 2.4+): the longest strictly-decreasing subsequence of the
 * losses marks the valley; the suggestion sits at (its start + ⌊len/3⌋ + ⌊len/6⌋). Ported as written.
 */
export function valley(lrs: number[], losses: number[]): CurveReading {
  const n = losses.length;
  if (n === 0) return { lr: null, index: null };
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
      if (lds[maxEnd] < lds[i]) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd];
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  const idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  return { lr: lrs[idx], index: idx };
}

/** fastai's `minimum`: the rate at the lowest loss, divided by 10. */
export function minimumOver10(lrs: number[], losses: number[]): CurveReading {
  if (!losses.length) return { lr: null, index: null };
  let m = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i] < losses[m]) m = i;
  return { lr: lrs[m] / 10, index: m };
}

/**
 * The stretch of the recorded curve the readings look at, as fastai does: skip the first 10% of the
 * planned steps (the smoothing has not settled) and the last 5 recorded points (the blow-up), and cut at the
 * first NaN.
 */
export function trimCurve(lrs: number[], losses: number[], plannedSteps: number): { lrs: number[]; losses: number[]; offset: number } {
  let end = losses.findIndex((l) => !Number.isFinite(l));
  if (end < 0) end = losses.length;
  const start = Math.floor(plannedSteps / 10);
  const stop = Math.max(start, Math.min(end, losses.length - 5));
  return { lrs: lrs.slice(start, stop), losses: losses.slice(start, stop), offset: start };
}
