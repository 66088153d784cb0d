/**
 * The stateful end of the schedule: the pure warmup ∘ base factor times the plateau stage's multiplier.
 * This is what the trainer holds; its state is the plateau's, so a checkpoint of it resumes exactly.
 */
import { ConfigError } from '../errors';
import { ReduceOnPlateau, type PlateauState } from './plateau';
import type { ResolvedSchedule } from './resolve';
import type { Stateful } from '../stateful';

export interface EpochEndResult {
  /** True when the plateau rule says training ends after this epoch. */
  stop: boolean;
  reason?: string;
  /** True when the plateau stage lowered the rate for the next epoch. */
  reduced: boolean;
  /** The plateau multiplier now in force (1 without a plateau stage). */
  multiplier: number;
}

export interface LrScheduleState {
  plateau: PlateauState | null;
}

export class LrSchedule implements Stateful<LrScheduleState> {
  readonly stateKey = 'schedule';
  private readonly plateau: ReduceOnPlateau | null;

  constructor(readonly resolved: ResolvedSchedule) {
    this.plateau = resolved.plateau ? new ReduceOnPlateau(resolved.plateau, resolved.lr.peak) : null;
  }

  /** Multiplier for the configured rates at this step: pure factor × plateau multiplier. */
  factor(step: number, epoch: number): number {
    const pure = this.resolved.factor(step, epoch);
    return this.plateau ? pure * this.plateau.multiplier : pure;
  }

  /** The reference rate at this step: lr.base × factor. */
  lr(step: number, epoch: number): number {
    return this.resolved.lr.base * this.factor(step, epoch);
  }

  /** The metric name the plateau stage watches, or null. */
  get monitor(): string | null {
    return this.resolved.plateau?.monitor ?? null;
  }

  /** Feed the epoch's metrics; the plateau stage (if any) reads its monitored metric. */
  onEpochEnd(epoch: number, metrics: Readonly<Record<string, number>>): EpochEndResult {
    if (!this.plateau || !this.resolved.plateau) return { stop: false, reduced: false, multiplier: 1 };
    const name = this.resolved.plateau.monitor;
    const value = metrics[name];
    if (typeof value !== 'number') {
      throw new ConfigError('plateau.monitor', `no metric "${name}" at the end of epoch ${epoch} (have: ${Object.keys(metrics).join(', ') || 'none'})`);
    }
    const d = this.plateau.step(value, epoch);
    return { stop: d.stop, reason: d.reason, reduced: d.reduced, multiplier: d.multiplier };
  }

  getState(): LrScheduleState {
    return { plateau: this.plateau ? this.plateau.getState() : null };
  }

  setState(state: LrScheduleState): void {
    if ((state.plateau === null) !== (this.plateau === null)) {
      throw new ConfigError('plateau', 'the checkpoint and the config disagree on whether there is a plateau stage');
    }
    if (this.plateau && state.plateau) this.plateau.setState(state.plateau);
  }
}
