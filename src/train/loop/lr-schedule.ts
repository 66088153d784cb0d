/**
 * The learning-rate policy as a callback: before each step it multiplies the step's rate factor by the schedule's
 * (every group's rate is its configured rate × that factor, so group ratios hold and the divergence guard's cut and
 * the ratio monitor's per-group nudges compose with it), and after each epoch it feeds the plateau stage, whose
 * "stop" ends the fit after that epoch.
 */
import { CALLBACK_ORDER, CancelFit, type Callback, type EpochInfo, type StepControl } from '../callbacks';

export interface StopRequest {
  stop: boolean;
  reason?: string;
}

/** The learning-rate multiplier over time, shared by every group so their ratios hold. */
export interface LrPolicy {
  factor(step: number, epoch: number): number;
  /**
   * Fed the epoch's metrics (`loss`, `accuracy`, and `val_loss`, `val_accuracy` when there are validation images)
   * after each epoch: reduce-on-plateau lives here.
   */
  epochEnd?(epoch: number, metrics: Readonly<Record<string, number>>): StopRequest | void;
}

export class LrScheduleCallback implements Callback {
  readonly name = 'lr schedule';
  readonly order = CALLBACK_ORDER.lrSchedule;

  constructor(private readonly policy: LrPolicy) {}

  beforeStep(s: StepControl): void {
    s.lrFactor *= this.policy.factor(s.step, s.epoch);
  }

  afterEpoch(e: EpochInfo): void {
    if (!this.policy.epochEnd) return;
    const metrics: Record<string, number> = { loss: e.train.loss, accuracy: e.train.accuracy };
    if (e.val) Object.assign(metrics, { val_loss: e.val.loss, val_accuracy: e.val.accuracy });
    const r = this.policy.epochEnd(e.epoch, metrics);
    if (r?.stop) throw new CancelFit(r.reason ?? 'stopped by a callback');
  }
}
