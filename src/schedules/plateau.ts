/**
 * Reduce-on-plateau as a schedule stage: it owns one multiplier (starting at 1) that multiplies the pure
 * schedule's factor, so it composes with warmup and any base schedule instead of replacing them.
 *
 * Semantics follow PyTorch's ReduceLROnPlateau (1.13) step for step: best / num_bad_epochs / cooldown counter,
 * rel/abs thresholds, min_lr and eps. `minLr` and `eps` are absolute on the reference scale and are read against
 * `referenceLr` (the peak rate), which makes them exactly PyTorch's when the schedule around it is constant.
 *
 * One rule on top of PyTorch's: when a plateau is detected and either `maxReductions` reductions have been made or the
 * next rate would be ≤ stopAtFraction · referenceLr, the decision says stop (training ends after this epoch).
 */
import type { PlateauConfig } from './schema';

export interface PlateauState {
  /** Best metric so far; null before the first report (±Infinity does not survive JSON). */
  best: number | null;
  numBadEpochs: number;
  cooldownCounter: number;
  multiplier: number;
  reductions: number;
  /** Epoch at which the stop rule fired, or null. */
  stoppedAt: number | null;
  stopReason: string | null;
  lastEpoch: number;
}

export interface PlateauDecision {
  /** The multiplier to use from the next epoch on. */
  multiplier: number;
  reduced: boolean;
  improved: boolean;
  /** True when training should end after this epoch. */
  stop: boolean;
  reason?: string;
}

export type PlateauOptions = Omit<PlateauConfig, 'monitor'> & { monitor?: string };

export class ReduceOnPlateau {
  private state: PlateauState;

  constructor(
    private readonly opts: PlateauOptions,
    private readonly referenceLr: number,
  ) {
    if (!(referenceLr > 0)) throw new RangeError(`referenceLr must be > 0, got ${referenceLr}`);
    this.state = ReduceOnPlateau.initialState();
  }

  static initialState(): PlateauState {
    return {
      best: null,
      numBadEpochs: 0,
      cooldownCounter: 0,
      multiplier: 1,
      reductions: 0,
      stoppedAt: null,
      stopReason: null,
      lastEpoch: -1,
    };
  }

  /** The current multiplier (1 until the first reduction). */
  get multiplier(): number {
    return this.state.multiplier;
  }

  get reductions(): number {
    return this.state.reductions;
  }

  /** Report the metric measured after `epoch`; returns the multiplier for the following epochs. */
  step(metric: number, epoch: number = this.state.lastEpoch + 1): PlateauDecision {
    const s = this.state;
    s.lastEpoch = epoch;
    if (s.stoppedAt !== null) {
      return { multiplier: s.multiplier, reduced: false, improved: false, stop: true, reason: s.stopReason ?? undefined };
    }
    const improved = this.isBetter(metric);
    if (improved) {
      s.best = metric;
      s.numBadEpochs = 0;
    } else {
      s.numBadEpochs += 1;
    }
    if (s.cooldownCounter > 0) {
      s.cooldownCounter -= 1;
      s.numBadEpochs = 0; // bad epochs in cooldown do not count (PyTorch)
    }
    let reduced = false;
    if (s.numBadEpochs > this.opts.patience) {
      const stopReason = this.exhausted();
      if (stopReason !== null) {
        s.stoppedAt = epoch;
        s.stopReason = stopReason;
        return { multiplier: s.multiplier, reduced: false, improved, stop: true, reason: stopReason };
      }
      const next = this.nextMultiplier();
      if ((s.multiplier - next) * this.referenceLr > this.opts.eps) {
        s.multiplier = next;
        s.reductions += 1;
        reduced = true;
      }
      s.cooldownCounter = this.opts.cooldown;
      s.numBadEpochs = 0;
    }
    return { multiplier: s.multiplier, reduced, improved, stop: false };
  }

  getState(): PlateauState {
    return { ...this.state };
  }

  setState(state: PlateauState): void {
    this.state = { ...state };
  }

  private nextMultiplier(): number {
    return Math.max(this.state.multiplier * this.opts.factor, this.opts.minLr / this.referenceLr);
  }

  /** Why the stop rule fires on this plateau, or null when a reduction is still allowed. */
  private exhausted(): string | null {
    const { maxReductions, stopAtFraction, patience } = this.opts;
    const epochs = patience + 1 === 1 ? '1 epoch' : `${patience + 1} epochs`;
    const what = `${this.opts.monitor ?? 'metric'} has not improved for ${epochs}`;
    if (maxReductions !== null && this.state.reductions >= maxReductions) {
      return `plateau: ${what} and all ${maxReductions} reductions are used`;
    }
    const next = this.nextMultiplier();
    if (stopAtFraction !== null && next <= stopAtFraction) {
      return `plateau: ${what} and the next rate (${fmt(next)} of the peak) would be at or below ` + `stopAtFraction ${fmt(stopAtFraction)}`;
    }
    return null;
  }

  private isBetter(a: number): boolean {
    const { mode, thresholdMode, threshold } = this.opts;
    // PyTorch starts from best = ±inf; the same formulas then decide the first report too.
    const best = this.state.best ?? (mode === 'min' ? Infinity : -Infinity);
    if (mode === 'min') return thresholdMode === 'rel' ? a < best * (1 - threshold) : a < best - threshold;
    return thresholdMode === 'rel' ? a > best * (1 + threshold) : a > best + threshold;
  }
}

function fmt(x: number): string {
  return Number(x.toPrecision(6)).toString();
}
