/**
 * Early stopping as a callback with Keras 3 semantics (keras/src/callbacks/early_stopping.py), including
 * restoreBestWeights, which tfjs documents but throws on (tfjs #8488): the best weights are kept as typed
 * arrays and written back at the end of training.
 */
import { ConfigError } from '../errors';
import type { EarlyStoppingConfig } from './schema';
import type { Stateful } from '../stateful';
import type { WeightSnapshot, WeightStore } from './weights';

export interface EarlyStopDecision {
  stop: boolean;
  reason?: string;
  /** This epoch set a new best (beyond minDelta). */
  isBest: boolean;
}

export interface EarlyStoppingState {
  /** null before the first monitored epoch */
  best: number | null;
  bestEpoch: number;
  wait: number;
  /** Epoch at which stop was signalled, or null. */
  stoppedEpoch: number | null;
}

export class EarlyStopping implements Stateful<EarlyStoppingState> {
  readonly stateKey = 'earlyStopping';
  private state: EarlyStoppingState = EarlyStopping.initialState();
  private bestWeights: WeightSnapshot | null = null;
  /** +1 for max, −1 for min: improvement means sign·(current − sign·minDelta − reference) > 0. */
  private readonly sign: 1 | -1;

  constructor(
    private readonly opts: EarlyStoppingConfig,
    private readonly weights?: WeightStore,
  ) {
    if (opts.restoreBestWeights && !weights) {
      throw new ConfigError('earlyStopping.restoreBestWeights', 'needs access to the model weights (no WeightStore given)');
    }
    this.sign = resolveMode(opts.mode, opts.monitor) === 'max' ? 1 : -1;
  }

  static initialState(): EarlyStoppingState {
    return { best: null, bestEpoch: 0, wait: 0, stoppedEpoch: null };
  }

  /** Reset for a new run (an instance can be reused, as in Keras). */
  onTrainBegin(): void {
    this.state = EarlyStopping.initialState();
    this.bestWeights = null;
  }

  onEpochEnd(epoch: number, metrics: Readonly<Record<string, number>>): EarlyStopDecision {
    const { monitor, patience, baseline, restoreBestWeights, startFromEpoch } = this.opts;
    const current = metrics[monitor];
    if (typeof current !== 'number') {
      throw new ConfigError(
        'earlyStopping.monitor',
        `no metric "${monitor}" at the end of epoch ${epoch} (have: ${Object.keys(metrics).join(', ') || 'none'})`,
      );
    }
    if (epoch < startFromEpoch) return { stop: false, isBest: false };
    const s = this.state;
    if (restoreBestWeights && this.bestWeights === null) {
      // If nothing ever improves, the first monitored epoch's weights are the best (Keras).
      this.bestWeights = this.readWeights();
      s.bestEpoch = epoch;
    }
    s.wait += 1;
    if (this.isImprovement(current, s.best)) {
      s.best = current;
      s.bestEpoch = epoch;
      if (restoreBestWeights) this.bestWeights = this.readWeights();
      // The wait only restarts once the baseline is beaten as well.
      if (baseline === null || this.isImprovement(current, baseline)) s.wait = 0;
      return { stop: false, isBest: true };
    }
    if (s.wait >= patience && epoch > 0) {
      s.stoppedEpoch = epoch;
      const since = s.best === null ? 'no improvement yet' : `best ${s.best} at epoch ${s.bestEpoch}`;
      const why =
        baseline !== null && (s.best === null || !this.isImprovement(s.best, baseline))
          ? `has not beaten the baseline ${baseline}`
          : `has not improved by more than ${this.opts.minDelta}`;
      return { stop: true, isBest: false, reason: `early stopping: ${monitor} ${why} for ${s.wait} epochs (${since})` };
    }
    return { stop: false, isBest: false };
  }

  /** End of training: with restoreBestWeights, write the best epoch's weights back. */
  onTrainEnd(): { restored: boolean; bestEpoch: number } {
    if (this.opts.restoreBestWeights && this.bestWeights !== null && this.weights) {
      this.weights.write(this.bestWeights);
      return { restored: true, bestEpoch: this.state.bestEpoch };
    }
    return { restored: false, bestEpoch: this.state.bestEpoch };
  }

  get bestEpoch(): number {
    return this.state.bestEpoch;
  }

  /** The counters; restoreBestWeights's copy is the separate part `bestWeightsState`, whose arrays go to the weights file. */
  getState(): EarlyStoppingState {
    return { ...this.state };
  }

  setState(state: EarlyStoppingState): void {
    this.state = { ...state };
  }

  /**
   * restoreBestWeights's copy as a checkpoint part (`earlyStoppingBest`), so a resumed run still puts the best
   * epoch back at the end. The snapshot is handed out as is: it is replaced, never written into.
   */
  readonly bestWeightsState: Stateful<WeightSnapshot | null> = {
    stateKey: 'earlyStoppingBest',
    getState: () => this.bestWeights,
    setState: (s) => {
      this.bestWeights = s;
    },
  };

  private readWeights(): WeightSnapshot {
    return (this.weights as WeightStore).read();
  }

  private isImprovement(value: number, reference: number | null): boolean {
    if (reference === null) return true;
    // Keras: monitor_op(value − minDelta, reference) with minDelta's sign flipped for `less`.
    return this.sign === 1 ? value - this.opts.minDelta > reference : value + this.opts.minDelta < reference;
  }
}

/** Keras 2's `auto`: maximise names containing "acc" (and fmeasure…, …auc), minimise everything else. */
export function resolveMode(mode: 'auto' | 'min' | 'max', monitor: string): 'min' | 'max' {
  if (mode !== 'auto') return mode;
  return monitor.includes('acc') || monitor.startsWith('fmeasure') || monitor.endsWith('auc') ? 'max' : 'min';
}
