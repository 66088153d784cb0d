/**
 * Which epoch is "best", for `checkpoints/best`: early stopping's verdict when it is on (so `best` holds what
 * restoreBestWeights puts back), else a plain tracker of one metric. The judge is a stateful part (`best`).
 */
import { ConfigError } from '../../errors';
import type { Stateful } from '../../stateful';
import type { EpochInfo } from '../callbacks';
import { epochMetrics, type EarlyStoppingCallback, type MetricsOf } from '../early-stopping';

export interface BestState {
  monitor: string;
  mode: 'min' | 'max';
  value: number | null;
  epoch: number;
}

/** Tracks the best value of one metric (strict improvement), for `checkpoints/best` without early stopping. */
export class BestTracker {
  constructor(private state: BestState) {}
  static initial(monitor: string, mode: 'min' | 'max'): BestState {
    return { monitor, mode, value: null, epoch: -1 };
  }
  /** True when `metrics[monitor]` beats the best so far (then it becomes the best). */
  update(epoch: number, metrics: Readonly<Record<string, number>>): boolean {
    const v = metrics[this.state.monitor];
    if (typeof v !== 'number') {
      throw new ConfigError(
        'checkpoint.monitor',
        `no metric "${this.state.monitor}" at the end of epoch ${epoch} (have: ${Object.keys(metrics).join(', ') || 'none'})`,
      );
    }
    if (!Number.isFinite(v)) return false;
    const b = this.state.value;
    const better = b === null || (this.state.mode === 'min' ? v < b : v > b);
    if (better) this.state = { ...this.state, value: v, epoch };
    return better;
  }
  getState(): BestState {
    return { ...this.state };
  }
  setState(s: BestState): void {
    this.state = { ...s };
  }
}

/** Decides after each epoch whether it is the best so far; its state is the checkpoint's `best`. */
export interface BestJudge extends Stateful<BestState> {
  isBest(info: EpochInfo): boolean;
}

export class TrackerJudge implements BestJudge {
  readonly stateKey = 'best';
  constructor(
    private readonly tracker: BestTracker,
    private readonly metricsOf: MetricsOf = epochMetrics,
  ) {}
  isBest(info: EpochInfo): boolean {
    return this.tracker.update(info.epoch, this.metricsOf(info));
  }
  getState(): BestState {
    return this.tracker.getState();
  }
  setState(s: BestState): void {
    this.tracker.setState(s);
  }
}

/** Follows early stopping: an epoch is best exactly when early stopping took it as its new best. */
export class EarlyStoppingJudge implements BestJudge {
  readonly stateKey = 'best';
  private last: BestState;
  constructor(
    private readonly cb: EarlyStoppingCallback,
    private readonly monitor: string,
    private readonly mode: 'min' | 'max',
    private readonly metricsOf: MetricsOf = epochMetrics,
  ) {
    this.last = { monitor, mode, value: null, epoch: -1 };
  }
  isBest(info: EpochInfo): boolean {
    if (this.cb.lastIsBest) this.last = { monitor: this.monitor, mode: this.mode, value: this.metricsOf(info)[this.monitor] ?? null, epoch: info.epoch };
    return this.cb.lastIsBest;
  }
  getState(): BestState {
    return { ...this.last };
  }
  setState(s: BestState): void {
    this.last = { ...s };
  }
}
